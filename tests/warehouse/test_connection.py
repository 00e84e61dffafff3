"""The work database's memory limit: set when asked, refused when it is not a size, and always
room enough for the key index an insert into a raw table needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ByteSize, TypeAdapter, ValidationError

from flows.settings import Settings
from sources.records import RawRecord
from warehouse.connection import INDEX_BYTES_PER_RAW_ROW, open_work_db
from warehouse.raw import land_page, transaction


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


def test_a_page_lands_in_a_raw_table_whose_key_index_outgrows_the_limit(tmp_path: Path) -> None:
    """DuckDB holds a raw table's whole key index in memory to insert: at Hub scale (2.5 million repos, a
    155 MB index) a fixed 128 MB limit failed every landing. Here 300,000 repo-like keys outgrow 16 MB."""
    path = tmp_path / "census.work.duckdb"
    with open_work_db(path) as con:
        con.execute(
            "insert into raw_huggingface__models select 'organization-' || (i % 9973) || "
            "'/a-fairly-long-model-name-finetuned-' || i, 1, md5(i::varchar), json_object('id', i), now(), 'seed' "
            "from range(300000) as t(i)"
        )
    with open_work_db(path, memory_limit="16MB") as con:
        limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
        payload = json.dumps({"tags": ["transformers"] * 60, "cardData": {"license": "mit" * 100}})
        with transaction(con):
            counts = land_page(con, "raw_huggingface__models",
                               [RawRecord(f"night/model-{i}", payload) for i in range(1_000)], run_id="night")
    assert counts.new == 1_000
    # DuckDB keeps limits in whole blocks: within one of 16 MB plus the index's room
    assert abs(TypeAdapter(ByteSize).validate_python(limit) - (16_000_000 + 300_000 * INDEX_BYTES_PER_RAW_ROW)) < 2**18
