"""The small staging tables are rebuilt when a raw table they read grows, and kept, unchanged, otherwise.

Built from the real Epoch snapshots; whatever is kept must equal what the model's SQL gives over raw.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from sources import epoch
from sources.records import RawRecord
from transforms import whole_staging
from transforms.whole_staging import raw_inputs, stage_whole
from warehouse.raw import land_page, transaction
from warehouse.sql_files import read_sql

from .test_keyed_staging import from_scratch, table

FIXTURES = Path(__file__).parents[1] / "fixtures"
WHOLE = ("stg_epoch__models", "stg_paperswithcode__papers", "stg_paperswithcode__results",
         "stg_open_llm_leaderboard__results")


def epoch_records() -> list[RawRecord]:
    snapshot = sorted((FIXTURES / "epoch").glob("*.csv"))[-1]
    with snapshot.open("rb") as raw:
        return [item for item in epoch.read_csv(raw, snapshot.name) if isinstance(item, RawRecord)]


def land(con: duckdb.DuckDBPyConnection, records: list[RawRecord]) -> None:
    with transaction(con):
        land_page(con, "raw_epoch__models", records, run_id="test")


def stage(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The whole staging tables this rebuild replaced."""
    with transaction(con):
        return {name for name in WHOLE if stage_whole(con, name).rebuilt}


@pytest.fixture
def staged(fresh_db: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    land(fresh_db, epoch_records())
    assert stage(fresh_db) == set(WHOLE)
    return fresh_db


def test_a_table_is_rebuilt_only_when_a_raw_table_it_reads_grows(staged: duckdb.DuckDBPyConnection) -> None:
    assert stage(staged) == set()
    land(staged, epoch_records())  # the same snapshot again: nothing lands
    assert stage(staged) == set()
    first = epoch_records()[0]
    land(staged, [RawRecord(first.key, json.dumps({**json.loads(first.payload), "Parameters": "123456789"}))])
    assert stage(staged) == {"stg_epoch__models"}
    assert staged.execute("select count(*) from stg_epoch__models where parameters = 123456789").fetchone()[0] == 1
    for name in WHOLE:
        assert table(staged, name) == from_scratch(staged, name), name


def test_a_table_whose_rows_or_rules_changed_is_rebuilt(
    staged: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged.execute("delete from stg_epoch__models where epoch_name = (select min(epoch_name) from stg_epoch__models)")
    assert stage(staged) == {"stg_epoch__models"}
    assert table(staged, "stg_epoch__models") == from_scratch(staged, "stg_epoch__models")
    edited = read_sql("staging", "stg_paperswithcode__papers") + "\n-- an edit of the model\n"
    monkeypatch.setattr(whole_staging, "read_sql",
                        lambda layer, name: edited if name == "stg_paperswithcode__papers" else read_sql(layer, name))
    assert stage(staged) == {"stg_paperswithcode__papers"}
    staged.execute("drop table stg_open_llm_leaderboard__results")
    assert stage(staged) == {"stg_open_llm_leaderboard__results"}


def test_the_raw_tables_a_model_reads_come_from_its_parsed_sql() -> None:
    assert raw_inputs(read_sql("staging", "stg_paperswithcode__results")) == [
        "raw_paperswithcode__papers", "raw_paperswithcode__results"]
    assert raw_inputs("with raw_epoch__models as (select 1) select * from raw_arxiv__papers_latest, "
                      "raw_epoch__models") == ["raw_arxiv__papers"]
    for reads_more, what in [(read_sql("staging", "stg_arxiv__papers"), "_arxiv_paper_facts"),
                             ("select * from raw_epoch__models, read_csv('models.csv')", "a table function"),
                             ("select 1", "none")]:
        with pytest.raises(ValueError, match=f"reads {what}"):
            raw_inputs(reads_more)
