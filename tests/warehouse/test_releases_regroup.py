"""A rebuild that regroups only the clusters a night touches ends exactly as a rebuild of every member.

Each case lands one or two nights of real-format records over the real Epoch snapshots and Hub page,
rebuilds after each (the partial build: `transforms.build_releases._regroup`), and compares every
release table and the stored state with a copy of the same warehouse built from nothing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from sources import arxiv, epoch, open_llm_leaderboard, paperswithcode
from sources.records import RawRecord
from transforms.build_releases import CLAIMS_TABLE, LINEAGE_TABLE, STATE_TABLE, TWINS_TABLE
from transforms.rebuild import rebuild
from warehouse.connection import open_work_db
from warehouse.raw import land_page, transaction

from .test_releases_table import FIXTURES, HUB_PAGE, UNIQUE_KEYS, land_fixtures, repeated_keys

TABLES = ("releases", "release_members", "release_exclusions", "_release_digests", STATE_TABLE, CLAIMS_TABLE, LINEAGE_TABLE, TWINS_TABLE)
PAPERS = FIXTURES / "arxiv" / "api_query_search-testing_start0_max100.xml"
CATALOG_PAPER = FIXTURES / "paperswithcode" / "revived_paper_detail_1406.2661.json"
LINKED_LATER = "lab-q/linked-later"


def hub(repo_id: str) -> dict:
    return next(model for model in json.loads(HUB_PAGE.read_text("utf-8")) if model["id"] == repo_id)


def land_hub(con: duckdb.DuckDBPyConnection, models: list[dict]) -> None:
    with transaction(con):
        land_page(con, "raw_huggingface__models", [RawRecord(m["id"], json.dumps(m)) for m in models], run_id="night")


def new_repo(template: str, repo_id: str, **fields: object) -> dict:
    """A repo uploaded tonight, in the Hub's format, made from a real one."""
    return {**hub(template), "id": repo_id, "author": repo_id.split("/")[0], **fields}


def base_arrives(con: duckdb.DuckDBPyConnection) -> None:
    """A fine-tune's base, not in the warehouse so far, is uploaded: the child (unchanged) gets a parent."""
    child = hub("Ricardo-H/alfworld-global2-1p5b-to-14b")
    land_hub(con, [new_repo(child["id"], "Qwen/Qwen2.5-1.5B-Instruct", createdAt="2024-09-17T08:00:00.000Z",
                            tags=[tag for tag in child["tags"] if not tag.startswith("base_model:")])])


def family_grows(con: duckdb.DuckDBPyConnection) -> None:
    """A release of the family a repo's base was found by: the unchanged child's parent becomes it."""
    child = hub("minjaechoi/qwen3p6-35b-a3b-2p00bit-r52")
    land_hub(con, [new_repo(child["id"], "Qwen/Qwen3.6-9B", createdAt="2026-01-05T08:00:00.000Z",
                            tags=[tag for tag in child["tags"] if not tag.startswith("base_model:")])])


def family_grows_before_a_child(con: duckdb.DuckDBPyConnection) -> None:
    """A repo of the family a child's base was found in, dated between its parent and it: its new parent."""
    child = hub("scienceverse/datacheck-concepts")  # names (by family) FacebookAI/xlm-roberta-large, 2026-09-28
    land_hub(con, [new_repo(child["id"], "FacebookAI/xlm-roberta-base", createdAt="2025-06-02T08:00:00.000Z", tags=["pytorch"])])


def family_grows_after_a_child(con: duckdb.DuckDBPyConnection) -> None:
    """The same family grows after the child's date: its parent stays."""
    child = hub("scienceverse/datacheck-concepts")
    land_hub(con, [new_repo(child["id"], "FacebookAI/xlm-roberta-xl", createdAt="2026-10-15T08:00:00.000Z", tags=["pytorch"])])


def parent_renamed(con: duckdb.DuckDBPyConnection) -> None:
    """Night 2: the child's new parent gains a variant, so its name becomes the family's (same release id)."""
    child = hub("scienceverse/datacheck-concepts")
    land_hub(con, [new_repo(child["id"], "FacebookAI/xlm-roberta-base-chat", createdAt="2025-06-02T09:00:00.000Z", tags=["pytorch"])])


def family_starts_after_a_child(con: duckdb.DuckDBPyConnection) -> None:
    """A family with no release before a child gets its first one after it: the child's parent, as the oldest."""
    child = hub("minjaechoi/qwen3p6-35b-a3b-2p00bit-r52")  # 2026-09-28; names (by family) Qwen/Qwen3.6-35B-A3B
    land_hub(con, [new_repo(child["id"], "Qwen/Qwen3.6-72B", createdAt="2026-10-20T08:00:00.000Z",
                            tags=[tag for tag in child["tags"] if not tag.startswith("base_model:")])])


def paper_cited_by_more_authors(con: duckdb.DuckDBPyConnection) -> None:
    """Two more authors' repos cite the paper one repo linked by: now it is only cited, by all three."""
    cited = "arxiv:2304.13705"  # k-chan-l/test2_act's own paper so far
    land_hub(con, [new_repo("k-chan-l/test2_act", f"author-{index}/cites-it", tags=["pytorch", cited])
                   for index in (1, 2)])


def a_citing_author_drops_the_paper(con: duckdb.DuckDBPyConnection) -> None:
    """Night 2: one of the three authors' repos no longer cites the paper: two are left, so it is theirs again
    (the dropping repo's stored author must not be counted)."""
    land_hub(con, [new_repo("k-chan-l/test2_act", "author-1/cites-it", tags=["pytorch"])])


def becomes_a_quantized_upload(con: duckdb.DuckDBPyConnection) -> None:
    """A kept repo turns out to be a re-upload: it leaves its release for the exclusions."""
    repo = hub("Ricardo-H/alfworld-global2-1p5b-to-14b")
    land_hub(con, [{**repo, "tags": [*repo["tags"], "base_model:quantized:Qwen/Qwen2.5-1.5B-Instruct"]}])


def variant_joins(con: duckdb.DuckDBPyConnection) -> None:
    """A size variant published beside a repo joins its release (two records, one release)."""
    repo = hub("Ricardo-H/alfworld-global2-1p5b-to-14b")
    land_hub(con, [new_repo(repo["id"], "Ricardo-H/alfworld-global2-7b-to-14b")])


def paper_cited_then_dropped(con: duckdb.DuckDBPyConnection) -> None:
    """Night 1: a repo cites a paper (the paper becomes a member); night 2: it no longer does (the member is gone)."""
    body = PAPERS.read_bytes()
    papers = [item for item in arxiv.parse_feed(body, "http://test/api/query").items if isinstance(item, RawRecord)]
    with transaction(con):
        land_page(con, "raw_arxiv__papers", papers, run_id="night")
    land_hub(con, [new_repo("k-chan-l/test2_act", "lab-z/model-of-the-paper", tags=["pytorch", f"arxiv:{papers[0].key}"])])


def paper_dropped(con: duckdb.DuckDBPyConnection) -> None:
    land_hub(con, [new_repo("k-chan-l/test2_act", "lab-z/model-of-the-paper", tags=["pytorch"])])


def land_catalog_entry(con: duckdb.DuckDBPyConnection, linked_repo: str) -> None:
    """A Papers With Code entry (the real detail answer) for a paper no other record cites, linking a Hub repo.
    (The GAN paper's own Epoch row has a compute figure, so its cluster is regrouped every night anyway.)"""
    detail = json.loads(CATALOG_PAPER.read_text("utf-8"))
    record = paperswithcode.paper_record({**detail, "arxiv_id": "2611.00042", "route_identifier": "2611.00042",
                                          "hf_models": [f"https://huggingface.co/{linked_repo}"]})
    with transaction(con):
        land_page(con, "raw_paperswithcode__papers", [record], run_id="night")


def catalog_links_a_repo(con: duckdb.DuckDBPyConnection) -> None:
    """A new catalog entry links a repo of the warehouse (unchanged): it joins that repo's release."""
    land_catalog_entry(con, "k-chan-l/test2_act")


def catalog_links_a_repo_not_yet_uploaded(con: duckdb.DuckDBPyConnection) -> None:
    """Night 1 of two: the entry links a repo the warehouse does not hold yet."""
    land_catalog_entry(con, LINKED_LATER)


def linked_repo_arrives(con: duckdb.DuckDBPyConnection) -> None:
    """Night 2: the repo arrives, and the entry (unchanged) joins its release."""
    land_hub(con, [new_repo("k-chan-l/test2_act", LINKED_LATER, tags=["pytorch"])])


EPOCH_SNAPSHOT = FIXTURES / "epoch" / "all_ai_models_snapshot_2025-04-23.csv"


def land_epoch_rows(con: duckdb.DuckDBPyConnection, rows: list[dict[str, str]]) -> None:
    """Rows added to the real snapshot, with its header, as Epoch's CSV gives them."""
    header = next(csv.reader(io.StringIO(EPOCH_SNAPSHOT.read_text("utf-8-sig"))))
    text = io.StringIO()
    csv.writer(text).writerows([header, *([row.get(column, "") for column in header] for row in rows)])
    records = [item for item in epoch.read_csv(io.BytesIO(text.getvalue().encode("utf-8")), EPOCH_SNAPSHOT.name)
               if isinstance(item, RawRecord)]
    with transaction(con):
        land_page(con, "raw_epoch__models", records, run_id="night")


def names_equal_but_for_case(con: duckdb.DuckDBPyConnection) -> None:
    """Night 1 of two: Epoch lists two models whose names are equal but for case (as its `CALM` and `CaLM`),
    neither with a compute figure (such releases are regrouped every night anyway)."""
    land_epoch_rows(con, [
        {"Model": "Orca-Q", "Domain": "Language", "Organization": "Lab Q", "Publication date": "2023-05-01"},
        {"Model": "ORCA-Q", "Domain": "Biology", "Organization": "Lab R", "Publication date": "2023-06-01"},
    ])


def derivative_of_either(con: duckdb.DuckDBPyConnection) -> None:
    """Night 2: a model based on `orca-q`, and an edit of `ORCA-Q`. Lineage looks a base up in lower case, where a
    build of every member meets `Orca-Q` last: the night's build must meet both, in that order, although only
    `ORCA-Q` changed."""
    land_epoch_rows(con, [
        {"Model": "ORCA-Q", "Domain": "Biology", "Organization": "Lab R", "Publication date": "2023-06-01",
         "Notability criteria": "Highly cited"},
        {"Model": "Orca-Q-Tuned", "Domain": "Language", "Organization": "Lab S", "Publication date": "2023-09-01",
         "Base model": "orca-q"},
    ])


def leaderboard_scores_a_repo(con: duckdb.DuckDBPyConnection) -> None:
    """The Open LLM Leaderboard's archive gains an entry for a stored repo (the real v2 row, re-aimed at it): the
    repo's evidence changes although its own staging row did not."""
    row = next(item for item in open_llm_leaderboard.read_rows("v2", [FIXTURES / "open_llm_leaderboard" / "contents_v2.parquet"])
               if isinstance(item, RawRecord))
    repo = "Ricardo-H/alfworld-global2-1p5b-to-14b"
    payload = {**json.loads(row.payload), "fullname": repo}
    with transaction(con):
        land_page(con, "raw_open_llm_leaderboard__results",
                  [RawRecord(f"v2:{repo}:{payload['Precision']}:{payload['Model sha']}", json.dumps(payload))], run_id="night")


def one_of_two_names(con: duckdb.DuckDBPyConnection) -> None:
    """Night 1 of two: the first of two models whose names are equal but for case."""
    land_epoch_rows(con, [{"Model": "Orca-Q", "Domain": "Language", "Organization": "Lab Q", "Publication date": "2023-05-01"}])


def the_other_name_and_a_derivative(con: duckdb.DuckDBPyConnection) -> None:
    """Night 2: the second name, which only the stored one equals but for case, and a model based on `orca-q`: the
    night's build must meet the stored `Orca-Q` too, although it did not change."""
    land_epoch_rows(con, [
        {"Model": "ORCA-Q", "Domain": "Biology", "Organization": "Lab R", "Publication date": "2023-06-01"},
        {"Model": "Orca-Q-Tuned", "Domain": "Language", "Organization": "Lab S", "Publication date": "2023-09-01",
         "Base model": "orca-q"},
    ])


NIGHTS: dict[str, list[Callable[[duckdb.DuckDBPyConnection], None]]] = {
    "a base arrives": [base_arrives],
    "a family grows": [family_grows],
    "a family grows before a child": [family_grows_before_a_child],
    "a family grows after a child": [family_grows_after_a_child],
    "a family starts after a child": [family_starts_after_a_child],
    "a child's parent is renamed": [family_grows_before_a_child, parent_renamed],
    "a paper gets more citing authors": [paper_cited_by_more_authors],
    "a paper gets more citing authors, then one fewer": [paper_cited_by_more_authors, a_citing_author_drops_the_paper],
    "a repo becomes a quantized upload": [becomes_a_quantized_upload],
    "a variant joins": [variant_joins],
    "a paper is cited, then no longer": [paper_cited_then_dropped, paper_dropped],
    "a catalog entry links a repo": [catalog_links_a_repo],
    "a catalog entry's repo arrives": [catalog_links_a_repo_not_yet_uploaded, linked_repo_arrives],
    "a derivative of a name two models share but for case": [names_equal_but_for_case, derivative_of_either],
    "the leaderboard scores a stored repo": [leaderboard_scores_a_repo],
    "a name equal but for case to a stored one, and a derivative": [one_of_two_names, the_other_name_and_a_derivative],
}


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("regroup") / "census.work.duckdb"
    con = open_work_db(path)
    land_fixtures(con)
    rebuild(con)
    con.close()
    return path


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {table: con.execute(f"select * from {table} order by all").fetchall() for table in TABLES}


@pytest.mark.parametrize("case", NIGHTS, ids=list(NIGHTS))
def test_a_night_regrouped_in_part_equals_a_build_of_every_member(
    built_once: Path, tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "census.work.duckdb"
    shutil.copy(built_once, work)
    for night in NIGHTS[case]:
        con = open_work_db(work)
        night(con)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="transforms.build_releases"):
            rebuild(con)
        assert "clusters to regroup" in caplog.text, "the night took the partial build"
        assert repeated_keys(con) == {table: [] for table in UNIQUE_KEYS}
        partial = tables(con)
        con.close()
        scratch_path = tmp_path / "scratch.work.duckdb"
        shutil.copy(work, scratch_path)
        scratch = open_work_db(scratch_path)
        scratch.execute("drop table _release_rules")  # nothing stored is reused: every member grouped
        rebuild(scratch)
        whole = tables(scratch)
        scratch.close()
        for table in TABLES:
            assert partial[table] == whole[table], table


def test_a_night_of_hub_repos_compares_the_hubs_members_by_their_restaged_keys(
    built_once: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Hub's members are compared only where their staging rows changed; a source whose staging tables all
    stayed as they were is not compared at all, and one reading a changed table is compared whole."""
    work = tmp_path / "census.work.duckdb"
    shutil.copy(built_once, work)
    con = open_work_db(work)
    variant_joins(con)
    with caplog.at_level(logging.INFO, logger="transforms.build_releases"):
        rebuild(con)
    con.close()
    assert ("1 members changed, 0 gone (compared epoch: whole; huggingface: 1 restaged keys; arxiv: whole; "
            "paperswithcode: unchanged)") in caplog.text
