"""`census run` and `census status` end to end on Epoch, over real HTTP, under a real Prefect API."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.replay_server import ReplayServer
from warehouse.connection import open_work_db

EPOCH = Path(__file__).parents[1] / "fixtures" / "epoch"
pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def epoch_server(tmp_path: Path, census_env: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(EPOCH / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv", root / "notable_ai_models.csv")
    with ReplayServer(root) as server:
        monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", f"{server.url}/notable_ai_models.csv")
        yield root


def raw_counts(published: Path) -> tuple[int, int]:
    work = published.with_name("census.work.duckdb")
    with duckdb.connect(str(work), read_only=True) as con:
        return con.execute("select count(distinct source_key), count(*) from raw_epoch__models").fetchone()


def test_run_twice_then_change_one_row_adds_exactly_one_version(
    epoch_server: Path, census_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--source", "epoch"]) == 0
    assert raw_counts(census_env) == (150, 150)

    assert main(["run", "--source", "epoch"]) == 0
    assert raw_counts(census_env) == (150, 150)

    served = epoch_server / "notable_ai_models.csv"
    served.write_bytes(served.read_bytes().replace(b"2025-02-17", b"2025-02-16", 1))
    assert main(["run", "--source", "epoch"]) == 0
    assert raw_counts(census_env) == (150, 151)

    capsys.readouterr()
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    epoch_line = next(line for line in status.splitlines() if line.startswith("epoch"))
    assert "150" in epoch_line and "151" in epoch_line and "success" in epoch_line

    with duckdb.connect(str(census_env), read_only=True) as con:
        quarters = con.execute("select quarter, releases from release_cadence_quarterly order by quarter").fetchall()
        notable = con.execute("select count(*) from releases where is_notable").fetchone()[0]
        published_tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert quarters and quarters[0][0] == "2023-Q1"
    assert sum(count for _, count in quarters) == notable
    assert 100 < notable < 150, "150 notable rows, some of them variants of one release"
    assert not any(name.startswith("raw_") for name in published_tables)


def test_the_ingest_and_the_rebuild_run_under_their_memory_limits(
    epoch_server: Path, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings reach DuckDB: each opening of the work database says what limit it then ran under."""
    import flows.pipeline

    seen: list[str] = []

    def recording(path: Path, **options: object) -> duckdb.DuckDBPyConnection:
        con = open_work_db(path, **options)
        seen.append(con.execute("select current_setting('memory_limit')").fetchone()[0])
        return con

    monkeypatch.setenv("MODEL_CENSUS_INGEST_MEMORY_LIMIT", "96MiB")
    monkeypatch.setenv("MODEL_CENSUS_REBUILD_MEMORY_LIMIT", "1GiB")
    monkeypatch.setattr(flows.pipeline, "open_work_db", recording)
    assert main(["run", "--source", "epoch"]) == 0
    assert seen.count("96.0 MiB") == 2, "the source's connection and its one part's"
    assert seen.count("1.0 GiB") == 1, "the rebuild's"


def test_unreachable_source_exits_non_zero_with_one_line_and_still_publishes(
    census_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", f"http://127.0.0.1:{closed_port}/ai_models.zip")
    assert main(["run", "--source", "epoch"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("census:")]
    assert lines == [f"census: epoch: failed at http://127.0.0.1:{closed_port}/ai_models.zip: ConnectionError: "
                     + lines[0].split("ConnectionError: ", 1)[1]]
    assert "after 4 attempts" in lines[0]
    assert census_env.exists(), "the transforms and publishing ran despite the failure"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--source", "nope"], "unknown source(s) nope"),
        (["run", "--since", "2024-02-01", "--until", "2024-01-01"], "must be before until"),
        (["run", "--since", "2999-01-01"], "is in the future"),
        (["run", "--until", "2024-01-01"], "--until needs --since"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    argv: list[str], message: str, census_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not census_env.exists()


def test_status_before_any_run_says_what_to_do(census_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 1
    assert "run `census run`" in capsys.readouterr().err
