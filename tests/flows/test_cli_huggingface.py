"""`census run --source huggingface` end to end over real HTTP, under a real Prefect API."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.demo_huggingface import HubReplay
from flows.replay_server import ReplayServer

pytestmark = pytest.mark.usefixtures("prefect_api")
DEMO_MODELS = Path(__file__).parents[2] / "demo" / "snapshot" / "huggingface" / "models.json"


def test_run_loads_the_hub_stages_it_and_reports_it(census_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    replay = HubReplay.from_file(DEMO_MODELS, prefix="/hub")
    with ReplayServer(Path("/nonexistent"), replay.routes()) as server:
        monkeypatch.setenv("MODEL_CENSUS_HF_URL", f"{server.url}/hub")
        assert main(["run", "--source", "huggingface", "--since", "2026-09-01"]) == 0

    work = census_env.with_name("census.work.duckdb")
    with duckdb.connect(str(work), read_only=True) as con:
        assert con.execute("select count(*) from stg_huggingface__models").fetchone()[0] == 43
        # September is a month of its own read from hub-stats (not served here: one request, then one
        # page of the listing); October and November, too recent for hub-stats, are one walk (one page).
        assert con.execute("select requests, status from ingestion_runs where source = 'huggingface'").fetchone() == (
            3, "success")
    capsys.readouterr()
    assert main(["status"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("huggingface"))
    assert "43" in line and "success" in line
