"""Papers With Code ingest end to end over real HTTP: windows past the page cap, results, archive, outages."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

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
COMMIT = "0123456789abcdef0123456789abcdef01234567"
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


# --- the archive, served the way the Hub serves files ---------------------------------------------

def build_archive_parquet(folder: Path) -> dict[str, bytes]:
    """Parquet shards in the archive's schema, written by DuckDB from genuine rows; served path → bytes."""
    v1 = json.loads((FIXTURES / "api_v1_papers_list_page1_items50.json").read_text(encoding="utf-8"))["results"]
    papers = [
        {
            "paper_url": paperswithcode.PAPER_URL_PREFIX + old["id"], "arxiv_id": old["arxiv_id"],
            "title": old["title"], "abstract": old["abstract"], "url_abs": old["url_abs"], "url_pdf": old["url_pdf"],
            "proceeding": old["proceeding"], "authors": old["authors"], "tasks": [], "date": old["published"],
        }
        for old in v1[:10]
    ]
    linked = papers[4]
    links = [{
        "paper_url": linked["paper_url"], "paper_title": linked["title"], "paper_arxiv_id": linked["arxiv_id"],
        "paper_url_abs": linked["url_abs"], "paper_url_pdf": None, "repo_url": "https://github.com/example/archived",
        "is_official": True, "mentioned_in_paper": False, "mentioned_in_github": True, "framework": "pytorch",
    }]
    (folder / "papers.json").write_text(json.dumps(papers), encoding="utf-8")
    (folder / "links.json").write_text(json.dumps(links), encoding="utf-8")
    selects = {
        "papers": f"read_json('{folder / 'papers.json'}', columns={{paper_url: 'VARCHAR', arxiv_id: 'VARCHAR', "
                  "title: 'VARCHAR', abstract: 'VARCHAR', url_abs: 'VARCHAR', url_pdf: 'VARCHAR', proceeding: 'VARCHAR', "
                  "authors: 'VARCHAR[]', tasks: 'VARCHAR[]', date: 'VARCHAR'})",
        "links": f"read_json('{folder / 'links.json'}')",
        "evaluations": f"read_json('{FIXTURES / 'evaluation_tables_format_squad.json'}')",
    }
    served: dict[str, bytes] = {}
    with duckdb.connect() as con:
        for name, (repo, shards) in paperswithcode.ARCHIVE_FILES.items():
            for index, shard in enumerate(shards):
                target = folder / f"{name}-{index}.parquet"
                where = "" if index == 0 else " where false"
                con.execute(f"copy (select * from {selects[name]}{where}) to '{target}' (format parquet)")
                served[f"/datasets/{repo}/resolve/{{revision}}/{shard}"] = target.read_bytes()
    return served


@pytest.fixture
def hub(httpserver: HTTPServer, tmp_path: Path) -> HTTPServer:
    """A local server speaking the Hub's file protocol: HEAD and GET on `/datasets/<repo>/resolve/<rev>/<file>`."""
    (tmp_path / "built").mkdir()
    files = build_archive_parquet(tmp_path / "built")

    def resolve(request: Request) -> Response:
        for revision in ("main", COMMIT):
            for pattern, body in files.items():
                if request.path == pattern.format(revision=revision):
                    # werkzeug sends no body to a HEAD but keeps its length, as the Hub does
                    headers = {"X-Repo-Commit": COMMIT, "ETag": '"' + hashlib.sha256(body).hexdigest() + '"'}
                    return Response(body, status=200, headers=headers, content_type="application/octet-stream")
        return Response(json.dumps({"error": "Entry not found"}), status=404, content_type="application/json",
                        headers={"X-Error-Code": "EntryNotFound"})

    httpserver.expect_request(re.compile("^/datasets/")).respond_with_handler(resolve)
    httpserver.expect_request("/api/v1/papers/").respond_with_handler(
        lambda request: Response(json.dumps({"count": 0, "results": [], "applied_filters": {
            "start_date": request.args["start_date"], "end_date": request.args["end_date"]}}),
            content_type="application/json"))
    return httpserver


def test_a_backfill_imports_the_archive_once_through_the_hub_client(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path, hub: HTTPServer
) -> None:
    settings = settings_for(hub.url_for("/api/v1"), tmp_path, pwc_import_archive=True,
                            hf_url=hub.url_for("/").rstrip("/"))
    window = Window(since=date(2019, 1, 1), until=date(2019, 1, 3))
    first = ingest(fresh_db, settings, window, "r1")
    downloads = sum(1 for request, _ in hub.log if request.method == "GET" and "/resolve/" in request.path)
    second = ingest(fresh_db, settings, window, "r2")

    assert downloads == 9, "every shard of the three datasets, once"
    assert second.detail["archive"] == "already imported" and second.counts.fetched == 0
    assert first.counts.new == 10 + 386 and first.counts.rejected == 65, "65 real rows name no model"
    assert fresh_db.execute(f"select count(*) from {RAW_PAPERS} where source_key like 'archive:%'").fetchone()[0] == 10
    assert json.loads(fresh_db.execute("select cursor from ingestion_state").fetchone()[0])["archive"] == (
        f"evaluations@{COMMIT},links@{COMMIT},papers@{COMMIT}")

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
