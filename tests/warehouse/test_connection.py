"""The work database's memory limit: set when asked, refused when it is not a size, and always
room enough for the key index an insert into a raw table needs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
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


def test_pages_land_side_by_side_in_raw_tables_whose_key_indexes_outgrow_the_limit_together(tmp_path: Path) -> None:
    """A run lands its sources at once (`flows.pipeline.ingest_sources`), each inserting into its own raw
    table, so each table's key index is in memory at the same time: the limit makes room for all of them.
    Here two tables of 300,000 keys under 4 MB: with room for the larger index alone, a landing ran out of memory."""
    path = tmp_path / "census.work.duckdb"
    tables = ("raw_huggingface__models", "raw_arxiv__papers")
    with open_work_db(path) as con:
        for table in tables:
            con.execute(
                f"insert into {table} select 'organization-' || (i % 9973) || "
                "'/a-fairly-long-model-name-finetuned-' || i, 1, md5(i::varchar), json_object('id', i), now(), 'seed' "
                "from range(300000) as t(i)"
            )
    payload = json.dumps({"tags": ["transformers"] * 60, "cardData": {"license": "mit" * 100}})
    outcomes: dict[str, object] = {}
    ready = threading.Barrier(len(tables))

    def land(table: str) -> None:
        with open_work_db(path, memory_limit="4MB") as con:
            ready.wait()
            try:
                for page in range(5):
                    with transaction(con):
                        outcomes[table] = land_page(con, table, [RawRecord(f"night/{page}-{i}", payload)
                                                                 for i in range(1_000)], run_id="night").new
            except duckdb.Error as exc:
                outcomes[table] = exc

    threads = [threading.Thread(target=land, args=(table,)) for table in tables]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {table: 1_000 for table in tables}
