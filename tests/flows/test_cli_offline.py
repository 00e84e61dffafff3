"""`census run` on a machine with no route to any source: one line per source, exit 1, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from flows.pipeline import ALL_SOURCES

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_every_unreachable_source_gets_one_line_and_the_run_still_publishes(
    census_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = "http://model-census-test.invalid"  # never resolves (RFC 6761)
    for setting, path in {
        "EPOCH_URL": "/data/ai_models.zip", "HF_URL": "", "ARXIV_URL": "/api/query",
        "ARXIV_RSS_URL": "/rss/", "PWC_URL": "/api/v1",
    }.items():
        monkeypatch.setenv(f"MODEL_CENSUS_{setting}", nowhere + path)
    # Transient failures would be retried after this delay: an unresolvable host must not be one.
    monkeypatch.setenv("MODEL_CENSUS_TASK_RETRIES", "1")
    monkeypatch.setenv("MODEL_CENSUS_TASK_RETRY_DELAY_SECONDS", "600")

    assert main(["run"]) == 1

    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("census:")]
    assert sorted(line.split(":")[1].strip() for line in lines) == sorted(ALL_SOURCES)
    assert all("host name does not resolve" in line and "model-census-test.invalid" in line for line in lines), lines
    assert census_env.exists(), "the transforms and publishing ran despite every failure"
