"""Papers With Code ingest end to end over real HTTP: windows past the page cap, results, archive, outages."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from flows.demo_open_llm_leaderboard import DatasetReplay
from flows.demo_paperswithcode import CatalogReplay
from flows.ingest import IngestRun, Window
from flows.ingest_paperswithcode import RAW_PAPERS, RAW_RESULTS, ingest_paperswithcode, scan_range
from flows.cli import main
from flows.replay_server import ReplayServer
from flows.replay_server import Request as ReplayRequest
from flows.settings import Settings
from sources import paperswithcode
from sources.records import SourceUnavailable
from transforms.rebuild import rebuild

FIXTURES = Path(__file__).parents[1] / "fixtures" / "paperswithcode"
PAPERS = json.loads((FIXTURES / "revived_papers_from_v1_page1.json").read_text(encoding="utf-8"))
EVALUATIONS = [
    row
    for number in (1, 2)
    for row in json.loads((FIXTURES / f"revived_evaluations_paper9_page{number}.json").read_text(encoding="utf-8"))["results"]
]
BULK = 10_250
"""More papers than 100 pages of 100 can list: the window must be split to reach them all."""


def big_catalog() -> CatalogReplay:
    """The 50 papers built from the real v1 page, plus bulk copies without arXiv ids or Hub links.

    Paper 1003 carries code and Hub links; the real evaluation rows are re-pointed at it.
    """
    bulk = []
    for index in range(BULK):
        template = PAPERS[index % len(PAPERS)]
        day = date(1990, 1, 1) + timedelta(days=index % 3_000)
        bulk.append({**template, "id": str(100_000 + index), "arxiv_id": None, "hf_models": [], "route_identifier": str(100_000 + index),
                     "published": day.isoformat(), "title": f"{template['title']} ({index})"})
    evaluations = [{**row, "paper_id": "1003"} for row in EVALUATIONS]
    return CatalogReplay(PAPERS + bulk, evaluations, prefix="/api/v1")


def serve(httpserver: HTTPServer, replay: CatalogReplay) -> str:
    """The catalog replay behind pytest-httpserver; returns the API base URL."""

    def handle(request: Request) -> Response:
        reply = replay(ReplayRequest(request.path, parse_qs(request.query_string.decode()), {}, ""))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    httpserver.expect_request(re.compile("^/api/v1/")).respond_with_handler(handle)
    return httpserver.url_for("/api/v1")


def settings_for(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"db": tmp_path / "census.duckdb", "pwc_url": url, "pwc_max_per_minute": 1_000_000,
                                 "pwc_import_archive": False}
    return Settings(**{**values, **overrides})


def ingest(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window, run_id: str) -> IngestRun:
    run = IngestRun(con, "paperswithcode", run_id)
    ingest_paperswithcode(run, settings, window)
    return run


def test_a_backfill_past_the_page_cap_loads_every_paper_once_and_a_rerun_nothing_new(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    window = Window(since=date(1980, 1, 1), until=date(2000, 1, 1))
    settings = settings_for(serve(httpserver, big_catalog()), tmp_path)
    first = ingest(fresh_db, settings, window, "r1")
    second = ingest(fresh_db, settings, window, "r2")

    total = len(PAPERS) + BULK
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_PAPERS}").fetchone() == (total, total)
    assert (first.counts.new, first.counts.rejected) == (total + len(EVALUATIONS), 0)
    assert (second.counts.new, second.counts.changed, second.counts.unchanged) == (0, 0, total)
    # 44 of the 50 real papers have an arXiv id: their results are asked for once, not again on the rerun
    assert first.detail["results_for"] == 44 and second.detail["results_for"] == 0
    assert second.requests < first.requests - 40
    assert first.requests > 103, "more than 100 pages were read, so the window was split"

    paper = json.loads(fresh_db.execute(f"select payload from {RAW_PAPERS} where source_key = 'api:1003'").fetchone()[0])
    assert [repo["url"] for repo in paper["repositories"]] == [
        "https://github.com/example/implementation", "https://github.com/example/official"]
    assert paper["hf_models"] == ["https://huggingface.co/example/model"]
    assert fresh_db.execute(f"select list(source_key order by source_key) from {RAW_RESULTS}").fetchone()[0] == [
        "api:1003#1", "api:1003#2"]

    rebuild(fresh_db)
    staged = fresh_db.execute(
        "select arxiv_id, published_on, repositories, hf_model_ids, origin from stg_paperswithcode__papers where pwc_id = '1003'"
    ).fetchone()
    assert staged == (PAPERS[3]["arxiv_id"], date.fromisoformat(PAPERS[3]["published"]),
                      ["https://github.com/example/implementation", "https://github.com/example/official"],
                      ["example/model"], "api")
    assert fresh_db.execute("select count(*) from stg_paperswithcode__papers").fetchone()[0] == total
    results = fresh_db.execute(
        "select pwc_paper_id, arxiv_id, model_name, task_name, dataset_name, metric_name, metric_value, best_rank, "
        "is_open, source_url, origin from stg_paperswithcode__results order by metric_name"
    ).fetchall()
    assert results[0] == ("1003", PAPERS[3]["arxiv_id"], "hrnet-ocr (hierarchical multi-scale attention)",
                          "Semantic Segmentation", "Cityscapes test", "mean iou (class)", 85.1, 1, True,
                          "https://paperswithcode.co/paper/2005.10821", "api")
    assert [row[5:7] for row in results] == [("mean iou (class)", 85.1), ("pq", 17.6)]


def test_a_listing_without_resources_is_completed_from_the_detail_object(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    bare = {key: value for key, value in PAPERS[3].items() if key not in ("repositories", "hf_models")}
    httpserver.expect_request("/api/v1/papers/").respond_with_json(
        {"count": 1, "results": [bare], "applied_filters": {"start_date": "1980-01-01", "end_date": "1999-12-31"}})
    httpserver.expect_request("/api/v1/papers/1003").respond_with_json(PAPERS[3])
    httpserver.expect_request("/api/v1/evaluations/").respond_with_json({"count": 0, "results": []})
    settings = settings_for(httpserver.url_for("/api/v1"), tmp_path)
    ingest(fresh_db, settings, Window(since=date(1980, 1, 1), until=date(2000, 1, 1)), "r1")
    payload = json.loads(fresh_db.execute(f"select payload from {RAW_PAPERS}").fetchone()[0])
    assert payload["hf_models"] == ["https://huggingface.co/example/model"]


def test_an_html_answer_makes_the_source_unavailable_and_lands_nothing(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(re.compile("^/api/v1/")).respond_with_data(
        (FIXTURES / "retired_site.html").read_bytes(), content_type="text/html")
    settings = settings_for(httpserver.url_for("/api/v1"), tmp_path)
    with pytest.raises(SourceUnavailable, match="text/html instead of JSON"):
        ingest(fresh_db, settings, Window(), "r1")
    assert fresh_db.execute(f"select count(*) from {RAW_PAPERS}").fetchone()[0] == 0
    assert fresh_db.execute("select count(*) from ingestion_state").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("window", "cursor", "expected"),
    [
        (Window(), {}, (date(2026, 10, 27), date(2026, 11, 26))),
        (Window(), {"through": "2026-11-25"}, (date(2026, 11, 12), date(2026, 11, 26))),
        (Window(), {"through": "2026-09-01"}, (date(2026, 9, 2), date(2026, 11, 26))),
        (Window(since=date(2019, 1, 1)), {"through": "2026-11-25"}, (date(2019, 1, 1), date(2026, 11, 26))),
        (Window(since=date(2019, 1, 1), until=date(2020, 1, 1)), {}, (date(2019, 1, 1), date(2019, 12, 31))),
    ],
    ids=["first-run", "rescan-trailing-14-days", "gap-since-last-run", "backfill-to-today", "backfill-until-exclusive"],
)
def test_scan_range_rescans_the_trailing_days_and_covers_gaps(window: Window, cursor: dict, expected: tuple) -> None:
    assert scan_range(window, cursor, today=date(2026, 11, 26), rescan_days=14, lookback_days=30) == expected


def test_a_nightly_run_moves_its_date_and_a_backfill_does_not(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_handler(
        lambda request: Response(json.dumps({"count": 0, "results": [], "applied_filters": {
            "start_date": request.args["start_date"], "end_date": request.args["end_date"]}}),
            content_type="application/json"))
    settings = settings_for(httpserver.url_for("/api/v1"), tmp_path)
    ingest(fresh_db, settings, Window(), "r1")
    through = json.loads(fresh_db.execute("select cursor from ingestion_state").fetchone()[0])["through"]
    assert through == httpserver.log[-1][0].args["end_date"]
    ingest(fresh_db, settings, Window(since=date(2019, 1, 1), until=date(2019, 2, 1)), "r2")
    assert json.loads(fresh_db.execute("select cursor from ingestion_state").fetchone()[0])["through"] == through


def state(con: duckdb.DuckDBPyConnection) -> dict:
    row = con.execute("select cursor from ingestion_state where source = 'paperswithcode'").fetchone()
    return json.loads(row[0]) if row else {}


def test_a_backfill_stops_at_its_request_budget_and_the_next_runs_continue_where_it_stopped(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    window = Window(since=date(1980, 1, 1), until=date(2000, 1, 1))
    settings = settings_for(serve(httpserver, big_catalog()), tmp_path, pwc_max_requests=40)
    runs = []
    while not runs or runs[-1].detail["stopped_at_budget"]:
        assert len(runs) < 12, "every run must make progress"
        runs.append(ingest(fresh_db, settings, window, f"r{len(runs) + 1}"))
        if runs[-1].detail["stopped_at_budget"]:
            saved = state(fresh_db)["backfill"]
            assert saved["window"] == "1980-01-01..2000-01-01" and (saved["through"] or saved["at"])

    total = len(PAPERS) + BULK
    assert len(runs) > 3 and all(run.requests <= 40 for run in runs)
    assert [run.requests for run in runs[:-1]] == [40] * (len(runs) - 1), "each stopped run used its whole budget"
    assert any("resumed_at" in run.detail for run in runs), "a run continued inside a window, not from its start"
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_PAPERS}").fetchone() == (total, total)
    assert fresh_db.execute(f"select list(source_key order by source_key) from {RAW_RESULTS}").fetchone()[0] == [
        "api:1003#1", "api:1003#2"]
    assert sum(run.counts.new for run in runs) == total + len(EVALUATIONS)
    assert all(run.counts.fetched == run.counts.new + run.counts.changed + run.counts.unchanged + run.counts.rejected
               for run in runs)
    assert "backfill" not in state(fresh_db), "finished: the same backfill again reads it all afresh"


def test_the_budget_holds_per_run_across_its_parts_and_retried_attempts(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    window = Window(since=date(1980, 1, 1), until=date(2000, 1, 1))
    settings = settings_for(serve(httpserver, big_catalog()), tmp_path, pwc_max_requests=40)
    first = ingest(fresh_db, settings, window, "night-1")
    again = ingest(fresh_db, settings, window, "night-1")
    next_night = ingest(fresh_db, settings, window, "night-2")
    assert (first.requests, again.requests, next_night.requests) == (40, 0, 40)
    assert again.detail["stopped_at_budget"] and again.detail["spent_by_earlier_parts"] == 40
    assert state(fresh_db)["spent"] == {"run_id": "night-2", "requests": 40}


def generated(count: int, published: date, first_id: int = 500_000) -> list[dict]:
    """Papers in the revived API's shape (the real v1 page's fields), none with results to ask for."""
    return [{**PAPERS[index % len(PAPERS)], "id": str(first_id + index), "route_identifier": str(first_id + index),
             "arxiv_id": None, "hf_models": [], "published": published.isoformat()} for index in range(count)]


def serve_pages(httpserver: HTTPServer, pages: dict[int, list[dict]], count: int) -> str:
    """A `papers/` listing answering each page number from `pages` (empty when absent), echoing the filters."""

    def handle(request: Request) -> Response:
        body = {"count": count, "results": pages.get(int(request.args["page"]), []),
                "applied_filters": {"start_date": request.args["start_date"], "end_date": request.args["end_date"]}}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/api/v1/papers/").respond_with_handler(handle)
    return httpserver.url_for("/api/v1")


def test_a_page_that_stays_empty_mid_window_is_reported_and_the_next_night_reads_the_window_again(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    papers = generated(250, datetime.now(timezone.utc).date() - timedelta(days=5))
    pages = {1: papers[:100], 3: papers[200:]}
    settings = settings_for(serve_pages(httpserver, pages, count=250), tmp_path)
    first = ingest(fresh_db, settings, Window(), "r1")

    assert (first.counts.fetched, first.counts.new, first.counts.rejected) == (101, 100, 1)
    (reason,) = fresh_db.execute("select reason from rejects").fetchone()
    assert reason.startswith(paperswithcode.GAP_REASON) and "page 2 of the papers published" in reason
    assert len(first.detail["incomplete"]) == 1
    assert "through" not in state(fresh_db), "the cursor stays before the incomplete window"

    pages[2] = papers[100:200]
    second = ingest(fresh_db, settings, Window(), "r2")
    assert (second.counts.new, second.counts.unchanged, second.counts.rejected) == (150, 100, 0)
    assert fresh_db.execute(f"select count(distinct source_key) from {RAW_PAPERS}").fetchone()[0] == 250
    assert state(fresh_db)["through"] == datetime.now(timezone.utc).date().isoformat()


def test_the_same_paper_on_two_pages_lands_once_and_the_counts_reconcile(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    papers = generated(150, datetime.now(timezone.utc).date() - timedelta(days=3))
    settings = settings_for(serve_pages(httpserver, {1: papers[:100], 2: papers[99:]}, count=151), tmp_path)
    run = ingest(fresh_db, settings, Window(), "r1")
    counts = run.counts
    assert run.detail["repeated"] == 1
    assert (counts.fetched, counts.new, counts.changed, counts.unchanged, counts.rejected) == (150, 150, 0, 0, 0)
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_PAPERS}").fetchone() == (150, 150)


# --- the archive, served the way the Hub serves dataset repos -------------------------------------

PAPER_SHARDS = 3
"""The papers dataset split over more shards than the others: the files are found, not assumed."""
PAPER_COLUMNS = ("{paper_url: 'VARCHAR', arxiv_id: 'VARCHAR', title: 'VARCHAR', abstract: 'VARCHAR', url_abs: 'VARCHAR', "
                 "url_pdf: 'VARCHAR', proceeding: 'VARCHAR', authors: 'VARCHAR[]', tasks: 'VARCHAR[]', date: 'VARCHAR', "
                 "methods: 'STRUCT(name VARCHAR, full_name VARCHAR)[]'}")


def build_archive(root: Path, *, drop_column: str | None = None) -> dict[str, int]:
    """The three dataset repos as folders under `root`, parquet written by DuckDB from genuine rows.

    Papers are the original site's v1 records in the archive's columns, split over `PAPER_SHARDS`
    shards; one link row in the dump's columns; the evaluation table is sota-extractor's SQuAD
    file, the dump's own schema. Each repo also holds a README and .gitattributes, as Hub repos do.
    Returns the number of parquet files per dataset.
    """
    v1 = json.loads((FIXTURES / "api_v1_papers_list_page1_items50.json").read_text(encoding="utf-8"))["results"]
    papers = [
        {
            "paper_url": paperswithcode.PAPER_URL_PREFIX + old["id"], "arxiv_id": old["arxiv_id"],
            "title": old["title"], "abstract": old["abstract"], "url_abs": old["url_abs"], "url_pdf": old["url_pdf"],
            "proceeding": old["proceeding"], "authors": old["authors"], "tasks": [], "date": old["published"], "methods": [],
        }
        for old in v1[:10]
    ]
    linked = papers[4]
    links = [{
        "paper_url": linked["paper_url"], "paper_title": linked["title"], "paper_arxiv_id": linked["arxiv_id"],
        "paper_url_abs": linked["url_abs"], "paper_url_pdf": None, "repo_url": "https://github.com/example/archived",
        "is_official": True, "mentioned_in_paper": False, "mentioned_in_github": True, "framework": "pytorch",
    }]
    built = root / "_built"
    built.mkdir(parents=True, exist_ok=True)
    (built / "papers.json").write_text(json.dumps(papers), encoding="utf-8")
    (built / "links.json").write_text(json.dumps(links), encoding="utf-8")
    sources = {
        "papers": f"read_json('{built / 'papers.json'}', columns={PAPER_COLUMNS})",
        "links": f"read_json('{built / 'links.json'}')",
        "evaluations": f"read_json('{FIXTURES / 'evaluation_tables_format_squad.json'}')",
    }
    shards = {"papers": PAPER_SHARDS, "links": 1, "evaluations": 1}
    with duckdb.connect() as con:
        for name, repo in paperswithcode.ARCHIVE_REPOS.items():
            folder = root / repo / "data"
            folder.mkdir(parents=True, exist_ok=True)
            (root / repo / "README.md").write_text(f"# {repo}\n", encoding="utf-8")
            (root / repo / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n", encoding="utf-8")
            dropped = f", {drop_column}" if drop_column and name == "papers" else ""
            for index in range(shards[name]):
                rows = (f"select * exclude (n{dropped}) from (select *, row_number() over () as n from {sources[name]}) "
                        f"where n % {shards[name]} = {index}")
                target = folder / f"train-{index:05d}-of-{shards[name]:05d}.parquet"
                con.execute(f"copy ({rows}) to '{target}' (format parquet)")
    return shards


def serve_hub(httpserver: HTTPServer, root: Path) -> str:
    """The Hub's dataset API and file protocol (the Open LLM Leaderboard's replay) behind pytest-httpserver."""
    repos = tuple(paperswithcode.ARCHIVE_REPOS.values())

    def handle(request: Request) -> Response:
        replay = DatasetReplay(root, prefix="", repos=repos)  # read afresh: a test may republish between runs
        route = replay.info if request.path.startswith("/api/datasets/") else replay.resolve
        reply = route(ReplayRequest(request.path, parse_qs(request.query_string.decode()), {}, ""))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    httpserver.expect_request(re.compile("^/(api/)?datasets/")).respond_with_handler(handle)
    httpserver.expect_request("/api/v1/papers/").respond_with_handler(
        lambda request: Response(json.dumps({"count": 0, "results": [], "applied_filters": {
            "start_date": request.args["start_date"], "end_date": request.args["end_date"]}}),
            content_type="application/json"))
    return httpserver.url_for("").rstrip("/")


def hub_gets(httpserver: HTTPServer, kind: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.method == "GET" and kind in request.path)


def test_a_backfill_imports_the_archive_once_finding_its_files_through_the_hub_api(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    shards = build_archive(tmp_path / "datasets")
    endpoint = serve_hub(httpserver, tmp_path / "datasets")
    settings = settings_for(f"{endpoint}/api/v1", tmp_path, pwc_import_archive=True, hf_url=endpoint)
    window = Window(since=date(2019, 1, 1), until=date(2019, 1, 3))
    first = ingest(fresh_db, settings, window, "r1")
    downloads = hub_gets(httpserver, "/resolve/")
    second = ingest(fresh_db, settings, window, "r2")

    assert downloads == sum(shards.values()) == PAPER_SHARDS + 2, "every parquet file the Hub lists, once; no README"
    assert first.detail["archive_files"] == shards
    assert hub_gets(httpserver, "/resolve/") == downloads, "an unchanged revision downloads nothing"
    assert hub_gets(httpserver, "/api/datasets/") == 2 * 3, "one dataset_info per dataset and run"
    assert second.detail["archive"] == "already imported" and second.counts.fetched == 0
    assert first.counts.new == 10 + 386 and first.counts.rejected == 65, "65 real rows name no model"
    assert fresh_db.execute(f"select count(*) from {RAW_PAPERS} where source_key like 'archive:%'").fetchone()[0] == 10
    replay = DatasetReplay(tmp_path / "datasets", prefix="", repos=tuple(paperswithcode.ARCHIVE_REPOS.values()))
    assert json.loads(fresh_db.execute("select cursor from ingestion_state").fetchone()[0])["archive"] == ",".join(
        f"{name}@{replay.commits[repo]}" for name, repo in sorted(paperswithcode.ARCHIVE_REPOS.items()))

    rebuild(fresh_db)
    linked = fresh_db.execute(
        "select repositories, origin from stg_paperswithcode__papers where 'https://github.com/example/archived' in repositories"
    ).fetchall()
    assert linked == [(["https://github.com/example/archived"], "archive")]
    by_origin = dict(fresh_db.execute("select origin, count(*) from stg_paperswithcode__results group by origin").fetchall())
    assert by_origin == {"archive": 386 * 2}, "EM and F1 for each kept row"
    arxiv_linked = fresh_db.execute(
        "select count(*) from stg_paperswithcode__results where arxiv_id = '2001.09694'").fetchone()[0]
    assert arxiv_linked > 0, "leaderboard rows that link arXiv keep its id"


def test_a_republished_archive_is_imported_again_and_only_its_changes_land(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    root = tmp_path / "datasets"
    build_archive(root)
    endpoint = serve_hub(httpserver, root)
    settings = settings_for(f"{endpoint}/api/v1", tmp_path, pwc_import_archive=True, hf_url=endpoint)
    window = Window(since=date(2019, 1, 1), until=date(2019, 1, 3))
    ingest(fresh_db, settings, window, "r1")
    links = root / paperswithcode.ARCHIVE_REPOS["links"] / "data" / "train-00000-of-00001.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select * replace ('https://github.com/example/moved' as repo_url) from read_parquet('{links}')) "
                    f"to '{tmp_path / 'links.parquet'}' (format parquet)")
    links.write_bytes((tmp_path / "links.parquet").read_bytes())
    again = ingest(fresh_db, settings, window, "r2")

    assert again.detail["archive"] != "already imported"
    assert (again.counts.new, again.counts.changed) == (0, 1), "the one paper whose code link moved"


def test_shards_that_differ_in_columns_land_every_column_of_every_shard(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A dataset's shards written at different times need not share a schema: read by the first shard's
    columns, a column only the last shard has would vanish from its payloads without a word."""
    root = tmp_path / "datasets"
    build_archive(root)
    last = root / paperswithcode.ARCHIVE_REPOS["papers"] / "data" / f"train-{PAPER_SHARDS - 1:05d}-of-{PAPER_SHARDS:05d}.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select *, 'added later' as published_venue_note from read_parquet('{last}')) "
                    f"to '{tmp_path / 'widened.parquet'}' (format parquet)")
    last.write_bytes((tmp_path / "widened.parquet").read_bytes())
    endpoint = serve_hub(httpserver, root)
    settings = settings_for(f"{endpoint}/api/v1", tmp_path, pwc_import_archive=True, hf_url=endpoint)

    ingest(fresh_db, settings, Window(since=date(2019, 1, 1), until=date(2019, 1, 3)), "r1")

    payloads = [json.loads(row[0]) for row in fresh_db.execute(
        f"select payload from {RAW_PAPERS} where source_key like 'archive:%'").fetchall()]
    widened = [payload for payload in payloads if payload["paper"].get("published_venue_note") == "added later"]
    assert len(payloads) == 10 and 0 < len(widened) < 10
    assert all("published_venue_note" in payload["paper"] for payload in payloads), "the other shards' rows carry it as null"


def test_an_archive_that_lost_a_column_it_needs_is_unavailable_and_lands_nothing(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    build_archive(tmp_path / "datasets", drop_column="paper_url")
    endpoint = serve_hub(httpserver, tmp_path / "datasets")
    settings = settings_for(f"{endpoint}/api/v1", tmp_path, pwc_import_archive=True, hf_url=endpoint)
    with pytest.raises(SourceUnavailable, match="lacks column.s. paper_url"):
        ingest(fresh_db, settings, Window(since=date(2019, 1, 1), until=date(2019, 1, 3)), "r1")
    assert fresh_db.execute(f"select count(*) from {RAW_PAPERS}").fetchone()[0] == 0


def test_an_archive_gone_from_the_hub_is_unavailable(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    build_archive(tmp_path / "datasets")
    shutil.rmtree(tmp_path / "datasets" / paperswithcode.ARCHIVE_REPOS["evaluations"])
    endpoint = serve_hub(httpserver, tmp_path / "datasets")
    settings = settings_for(f"{endpoint}/api/v1", tmp_path, pwc_import_archive=True, hf_url=endpoint)
    with pytest.raises(SourceUnavailable, match="evaluation-tables: not on the Hub any more"):
        ingest(fresh_db, settings, Window(since=date(2019, 1, 1), until=date(2019, 1, 3)), "r1")
    assert hub_gets(httpserver, "/resolve/") == 0, "nothing downloaded before every dataset was found"


@pytest.mark.usefixtures("prefect_api")
def test_a_nightly_run_against_an_html_page_reports_the_source_unavailable_and_loads_the_others(
    census_env: Path, tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request(re.compile("^/api/v1/")).respond_with_data(
        (FIXTURES / "retired_site.html").read_bytes(), content_type="text/html; charset=utf-8")
    served = tmp_path / "served"
    served.mkdir()
    epoch_csv = Path(__file__).parents[1] / "fixtures" / "epoch" / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv"
    (served / "notable_ai_models.csv").write_bytes(epoch_csv.read_bytes())
    monkeypatch.setenv("MODEL_CENSUS_PWC_URL", httpserver.url_for("/api/v1"))
    with ReplayServer(served) as server:
        monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", f"{server.url}/notable_ai_models.csv")
        assert main(["run", "--source", "epoch", "--source", "paperswithcode"]) == 1

    assert "census: paperswithcode: unavailable at" in capsys.readouterr().err
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        statuses = dict(con.execute("select source, status from ingestion_runs").fetchall())
        loaded = con.execute("select (select count(*) from raw_epoch__models), (select count(*) from raw_paperswithcode__papers)").fetchone()
    assert statuses["epoch"] == "success"
    assert statuses["paperswithcode"].startswith("unavailable: papers/ answered text/html; charset=utf-8 instead of JSON")
    assert loaded == (150, 0)
    assert census_env.exists(), "the run still rebuilt and published"


def test_the_demo_snapshot_loads_its_papers_and_their_real_benchmark_rows(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, httpserver: HTTPServer
) -> None:
    replay = CatalogReplay.from_snapshot()
    replay.prefix = "/api/v1"
    settings = settings_for(serve(httpserver, replay), tmp_path)
    run = ingest(fresh_db, settings, Window(since=date(2015, 1, 1)), "demo")
    assert run.counts.rejected == 0
    assert fresh_db.execute(f"select count(*) from {RAW_PAPERS}").fetchone()[0] == len(replay.papers)
    rebuild(fresh_db)
    rows = fresh_db.execute(
        "select arxiv_id, dataset_name, count(*) from stg_paperswithcode__results group by all order by all").fetchall()
    # Retro-Reader's four SQuAD2.0 rows (EM and F1 each); the hrnet-ocr rows of the v1 results sample
    assert rows == [("2001.09694", "SQuAD2.0", 8), ("2005.10821", "Cityscapes test", 1), ("2005.10821", "Mapillary val", 1)]
