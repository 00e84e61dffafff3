"""Test isolation: a private Prefect home and API, no developer settings, one Prefect server per session."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from flows import OUR_LOGGERS  # imports nothing else

# Before anything imports Prefect or huggingface_hub: nothing of the developer's set-up leaks in.
_HOME = Path(tempfile.mkdtemp(prefix="census-tests-"))
for _name in list(os.environ):
    if _name.startswith(("MODEL_CENSUS_", "PREFECT_")) or _name in {"HF_TOKEN", "HF_ENDPOINT"}:
        del os.environ[_name]
os.environ.update(
    {
        "PREFECT_HOME": str(_HOME / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(OUR_LOGGERS),
        "DO_NOT_TRACK": "1",
        # sources log through stdlib loggers, also when a test calls them outside a flow run
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "HF_HOME": str(_HOME / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
)

import duckdb  # noqa: E402
import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def our_loggers_as_found() -> Iterator[None]:
    """A flow run raises our loggers to Prefect's level for the rest of the process
    (`flows.pipeline.our_loggers_at_prefect_level`): each test leaves them as it found them, so what a
    later test's `caplog` sees does not depend on the order the tests ran in."""
    loggers = [logging.getLogger(name) for name in OUR_LOGGERS]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One temporary Prefect server for the whole session: starting one costs 12 to 14 seconds."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new, migrated work database per test."""
    from warehouse.connection import open_work_db

    con = open_work_db(tmp_path / "census.work.duckdb")
    yield con
    con.close()


@pytest.fixture
def census_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing the warehouse into the test's folder; returns the published file's path."""
    db = tmp_path / "census.duckdb"
    monkeypatch.setenv("MODEL_CENSUS_DB", str(db))
    monkeypatch.setenv("MODEL_CENSUS_LOCK_WAIT_SECONDS", "5")
    monkeypatch.setenv("MODEL_CENSUS_TASK_RETRIES", "0")  # a transient failure would retry after a minute
    return db
