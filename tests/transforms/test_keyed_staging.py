"""The Hub and arXiv staging tables restage only the keys with a new raw version, and end as if staged whole.

Built from the real Hub page and a real arXiv API answer; a night adds new versions of some records
and new records, and each table must then hold exactly the rows its SQL gives over the whole of raw.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pytest

from sources import arxiv
from sources.records import RawRecord
from transforms.arxiv_facts import build_paper_facts
from transforms.keyed_staging import KEYED_MODELS, RULES_TABLE, VERSIONS_TABLE, Staged, stage_keyed
from warehouse.raw import land_page, transaction
from warehouse.sql_files import read_sql

FIXTURES = Path(__file__).parents[1] / "fixtures"
HUB = KEYED_MODELS["stg_huggingface__models"]
ARXIV = KEYED_MODELS["stg_arxiv__papers"]


def hub_page() -> list[dict[str, object]]:
    return json.loads((FIXTURES / "huggingface" / "api_models_page_2026-09-28_from_slice.json").read_text("utf-8"))


def arxiv_records() -> list[RawRecord]:
    body = (FIXTURES / "arxiv" / "api_query_search-testing_start0_max100.xml").read_bytes()
    return [item for item in arxiv.parse_feed(body, "http://test/api/query").items if isinstance(item, RawRecord)]


def land(con: duckdb.DuckDBPyConnection, table: str, records: list[RawRecord]) -> None:
    with transaction(con):
        land_page(con, table, records, run_id="test")


def stage(con: duckdb.DuckDBPyConnection) -> dict[str, Staged]:
    with transaction(con):
        build_paper_facts(con)
        return {model.name: stage_keyed(con, model) for model in (HUB, ARXIV)}


def from_scratch(con: duckdb.DuckDBPyConnection, model_name: str) -> list[tuple]:
    return con.execute(f"select * from ({read_sql('staging', model_name)}) order by all").fetchall()


def table(con: duckdb.DuckDBPyConnection, model_name: str) -> list[tuple]:
    return con.execute(f"select * from {model_name} order by all").fetchall()


@pytest.fixture
def staged(fresh_db: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    land(fresh_db, "raw_huggingface__models", [RawRecord(m["id"], json.dumps(m)) for m in hub_page()])
    land(fresh_db, "raw_arxiv__papers", arxiv_records())
    first = stage(fresh_db)
    assert first[HUB.name].rows == first[HUB.name].restaged == len(hub_page())
    assert first[ARXIV.name].rows == first[ARXIV.name].restaged == len(arxiv_records()) > 50
    return fresh_db


def test_a_night_restages_only_its_new_versions_and_ends_as_staged_whole(
    staged: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    models = hub_page()
    night = [{**model, "likes": 5_000 + index} for index, model in enumerate(models[:2])]  # a popularity refresh
    night.append({**models[2], "id": models[2]["id"] + "-chat", "_id": "0" * 24})  # a new repo
    land(staged, "raw_huggingface__models", [RawRecord(m["id"], json.dumps(m)) for m in night])
    papers = arxiv_records()
    revised = json.loads(papers[0].payload)
    revised["title"] = ["A revised title of the same paper"]
    new_paper = json.loads(papers[1].payload)
    new_paper["id"] = ["http://arxiv.org/abs/2611.99999v1"]
    land(staged, "raw_arxiv__papers", [RawRecord(papers[0].key, json.dumps(revised)), RawRecord("2611.99999", json.dumps(new_paper))])

    with caplog.at_level(logging.WARNING, logger="transforms.keyed_staging"):
        night_staged = stage(staged)

    assert night_staged == {HUB.name: Staged(len(models) + 1, 3), ARXIV.name: Staged(len(papers) + 1, 2)}
    assert "found only by reading every key" not in caplog.text, "the night's rows are found by their row ids"
    for model in (HUB, ARXIV):
        assert table(staged, model.name) == from_scratch(staged, model.name), model.name
    title, likes = staged.execute(
        "select (select title from stg_arxiv__papers where arxiv_id = ?), "
        "(select likes from stg_huggingface__models where repo_id = ?)", [papers[0].key, models[0]["id"]]
    ).fetchone()
    assert (title, likes) == ("A revised title of the same paper", 5_000)
    # a new version restages its key, which keeps the time its first version was landed
    hub_first, hub_landed, paper_first, paper_last, paper_landed = staged.execute(
        "select (select first_seen_at from stg_huggingface__models where repo_id = $repo), "
        "(select list(fetched_at order by version) from raw_huggingface__models where source_key = $repo), "
        "(select first_seen_at from stg_arxiv__papers where arxiv_id = $paper), "
        "(select last_seen_at from stg_arxiv__papers where arxiv_id = $paper), "
        "(select list(fetched_at order by version) from raw_arxiv__papers where source_key = $paper)",
        {"repo": models[0]["id"], "paper": papers[0].key},
    ).fetchone()
    assert len(hub_landed) == len(paper_landed) == 2 and hub_landed[0] < hub_landed[1]
    assert (hub_first, paper_first, paper_last) == (hub_landed[0], paper_landed[0], paper_landed[1])


def test_nothing_new_restages_nothing(staged: duckdb.DuckDBPyConnection) -> None:
    assert {name: result.restaged for name, result in stage(staged).items()} == {HUB.name: 0, ARXIV.name: 0}


def test_a_lost_record_of_a_staged_version_restages_that_key_alone(
    staged: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    staged.execute(f"delete from {VERSIONS_TABLE} where source_key = (select min(repo_id) from stg_huggingface__models)")

    with caplog.at_level(logging.WARNING, logger="transforms.keyed_staging"):
        assert stage(staged)[HUB.name] == Staged(len(hub_page()), 1)
    assert "stg_huggingface__models: 1 keys with a new raw version were found only by reading every key" in caplog.text
    assert table(staged, HUB.name) == from_scratch(staged, HUB.name)


@pytest.mark.parametrize(
    "edit",
    [
        f"update {RULES_TABLE} set rules = 'rules of another release' where model = 'stg_huggingface__models'",
        "delete from stg_huggingface__models where repo_id = (select min(repo_id) from stg_huggingface__models)",
        "drop table stg_huggingface__models",
    ],
    ids=["other rules", "a row deleted by hand", "the table dropped"],
)
def test_a_table_out_of_step_with_its_record_is_staged_whole(staged: duckdb.DuckDBPyConnection, edit: str) -> None:
    staged.execute(edit)

    again = stage(staged)

    assert again[HUB.name] == Staged(len(hub_page()), len(hub_page()), whole=True)
    assert again[ARXIV.name].restaged == 0
    assert table(staged, HUB.name) == from_scratch(staged, HUB.name)
