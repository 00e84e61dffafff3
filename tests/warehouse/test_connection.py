"""The work database's memory limit: set when asked, refused when it is not a size."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.settings import Settings
from warehouse.connection import open_work_db


def test_memory_limit_is_set_on_the_database(tmp_path: Path) -> None:
    with open_work_db(tmp_path / "census.work.duckdb", memory_limit="128MB") as con:
        # 128 MB, in the binary units DuckDB reports
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "122.0 MiB"


def test_without_a_limit_duckdb_keeps_its_default(tmp_path: Path) -> None:
    with open_work_db(tmp_path / "a.work.duckdb", memory_limit="64MB") as con:
        limited = con.execute("select current_setting('memory_limit')").fetchone()[0]
    with open_work_db(tmp_path / "b.work.duckdb") as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] != limited


@pytest.mark.parametrize("value", ["lots", "128", "-1GB", "1 GB; drop table rejects"])
def test_a_memory_limit_that_is_not_a_size_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MODEL_CENSUS_INGEST_MEMORY_LIMIT", value)
    with pytest.raises(ValidationError, match="ingest_memory_limit"):
        Settings()


def test_sizes_duckdb_reads_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL_CENSUS_REBUILD_MEMORY_LIMIT", "1.5GiB")
    limit = Settings().rebuild_memory_limit
    with open_work_db(tmp_path / "census.work.duckdb", memory_limit=limit) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "1.5 GiB"
