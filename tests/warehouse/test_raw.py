"""Raw landing: idempotent, versioned, and honest in its counts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sources import arxiv
from sources.records import RawRecord, Rejected
from warehouse import runs
from warehouse.raw import RAW_TABLES, content_hash, land_page, transaction

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"


def latest(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    rows = con.execute("select source_key, version, payload from raw_epoch__models_latest").fetchall()
    return {key: (version, payload) for key, version, payload in rows}


def test_landing_the_same_page_twice_adds_nothing(fresh_db: duckdb.DuckDBPyConnection) -> None:
    page = [RawRecord("f#A", '{"x": 1}'), RawRecord("f#B", '{"x": 2}')]
    first = land_page(fresh_db, "raw_epoch__models", page, run_id="r1")
    second = land_page(fresh_db, "raw_epoch__models", page, run_id="r2")
    assert (first.new, first.changed, first.unchanged) == (2, 0, 0)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 2)
    assert fresh_db.execute("select count(*) from raw_epoch__models").fetchone()[0] == 2


def test_a_changed_record_adds_one_version_and_keeps_the_old(fresh_db: duckdb.DuckDBPyConnection) -> None:
    land_page(fresh_db, "raw_epoch__models", [RawRecord("f#A", '{"x": 1}')], run_id="r1")
    counts = land_page(fresh_db, "raw_epoch__models", [RawRecord("f#A", '{"x": 9}')], run_id="r2")
    assert counts.changed == 1
    assert latest(fresh_db) == {"f#A": (2, '{"x": 9}')}
    assert fresh_db.execute("select count(*) from raw_epoch__models").fetchone()[0] == 2


def test_a_record_that_changes_back_is_a_new_version(fresh_db: duckdb.DuckDBPyConnection) -> None:
    for run, value in enumerate(["1", "2", "1"]):
        land_page(fresh_db, "raw_epoch__models", [RawRecord("f#A", value)], run_id=f"r{run}")
    assert latest(fresh_db) == {"f#A": (3, "1")}


@pytest.mark.parametrize("raw_table", sorted(RAW_TABLES))
def test_each_latest_view_holds_every_key_at_its_highest_version(fresh_db: duckdb.DuckDBPyConnection, raw_table: str) -> None:
    pages = [
        [RawRecord("a", '{"n": 1}'), RawRecord("b", '{"n": 1}'), RawRecord("c", '{"n": 1}')],
        [RawRecord("b", '{"n": 2}'), RawRecord("d", '{"n": 1}')],
        [RawRecord("a", '{"n": 1}'), RawRecord("b", '{"n": 3}'), RawRecord("c", '{"n": 2}')],
    ]
    for run, page in enumerate(pages):
        with transaction(fresh_db):
            land_page(fresh_db, raw_table, page, run_id=f"r{run}")
    rows = fresh_db.execute(f"select source_key, version, payload from {raw_table}_latest order by source_key").fetchall()
    assert rows == [("a", 1, '{"n": 1}'), ("b", 3, '{"n": 3}'), ("c", 2, '{"n": 2}'), ("d", 1, '{"n": 1}')]


def test_a_key_twice_in_one_page_keeps_the_last_and_counts_reconcile(fresh_db: duckdb.DuckDBPyConnection) -> None:
    counts = land_page(
        fresh_db, "raw_epoch__models", [RawRecord("f#A", "1"), RawRecord("f#A", "2")], run_id="r1"
    )
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected == 2
    assert latest(fresh_db) == {"f#A": (1, "2")}


def test_rejects_are_kept_once_with_reason_and_raw_text(fresh_db: duckdb.DuckDBPyConnection) -> None:
    bad = [Rejected(None, "Bad \udcff,2023", "invalid UTF-8"), Rejected("f#X", "X,20XX", "unparseable date")]
    with transaction(fresh_db):
        runs.record_rejects(fresh_db, "epoch", bad, run_id="r1")
    with transaction(fresh_db):
        runs.record_rejects(fresh_db, "epoch", bad, run_id="r2")
    rows = fresh_db.execute("select raw_text, reason, first_run_id, last_run_id from rejects order by reason").fetchall()
    assert rows == [("Bad \ufffd,2023", "invalid UTF-8", "r1", "r2"), ("X,20XX", "unparseable date", "r1", "r2")]


def test_a_failed_page_leaves_neither_records_nor_cursor(fresh_db: duckdb.DuckDBPyConnection) -> None:
    try:
        with transaction(fresh_db):
            land_page(fresh_db, "raw_epoch__models", [RawRecord("f#A", "1")], run_id="r1")
            runs.set_cursor(fresh_db, "epoch", {"page": 2}, watermark="page 2", run_id="r1")
            raise RuntimeError("killed between landing and commit")
    except RuntimeError:
        pass
    assert fresh_db.execute("select count(*) from raw_epoch__models").fetchone()[0] == 0
    assert runs.get_cursor(fresh_db, "epoch") is None


def test_the_stored_digest_is_content_hash_of_the_payload_in_any_script(fresh_db: duckdb.DuckDBPyConnection) -> None:
    """Landing hashes in DuckDB; Papers With Code's ingest compares `content_hash` with what is stored, and rows
    landed when Python computed the digest must still read as unchanged: both must give the same digest."""
    feed = (ARXIV / "api_query_idlist-1707.08567_mojibake-author.xml").read_bytes()
    records = [record for record in arxiv.parse_feed(feed, "fixture").items if isinstance(record, RawRecord)]
    records += [RawRecord("cjk", '{"name": "通义千问"}'), RawRecord("emoji", '{"name": "🤗 \\t"}')]
    assert any(not record.payload.isascii() for record in records)
    with transaction(fresh_db):
        land_page(fresh_db, "raw_arxiv__papers", records, run_id="r1")
    stored = fresh_db.execute("select source_key, content_hash, payload from raw_arxiv__papers").fetchall()
    assert len(stored) == len(records)
    assert all(digest == content_hash(payload) for _, digest, payload in stored)
