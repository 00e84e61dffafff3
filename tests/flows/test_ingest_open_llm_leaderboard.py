"""Open LLM Leaderboard ingest over real HTTP, through the Hub client: each row once, nothing refetched unchanged."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from flows.demo_open_llm_leaderboard import DatasetReplay
from flows.ingest import IngestRun, Window
from flows.ingest_open_llm_leaderboard import RAW_TABLE, ingest_open_llm_leaderboard
from flows.replay_server import ReplayServer
from flows.replay_server import Request as ReplayRequest
from flows.settings import Settings
from transforms.rebuild import rebuild
from warehouse.raw import land_page
from sources.records import RawRecord

FIXTURES = Path(__file__).parents[1] / "fixtures" / "open_llm_leaderboard"
sys.path.insert(0, str(FIXTURES))
from build_parquet import FILES, fixture_rows, write_archive  # noqa: E402

REPOS = {"v1": "open-llm-leaderboard-old/contents", "v2": "open-llm-leaderboard/contents"}


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    """The two dataset repos as folders: the fixture parquet under each archive's real file name."""
    root = tmp_path / "datasets"
    for version, repo in REPOS.items():
        target = root / repo / FILES[version]
        target.parent.mkdir(parents=True)
        shutil.copyfile(FIXTURES / f"contents_{version}.parquet", target)
    return root


def serve(httpserver: HTTPServer, root: Path) -> str:
    """The Hub's dataset API and file protocol (HEAD + GET on resolve) behind pytest-httpserver; the endpoint."""

    def handle(request: Request) -> Response:
        replay = DatasetReplay(root, prefix="")  # read afresh: a test may republish a file between runs
        route = replay.info if request.path.startswith("/api/datasets/") else replay.resolve
        reply = route(ReplayRequest(request.path, parse_qs(request.query_string.decode()), {}, ""))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    httpserver.expect_request("/api/agent-harnesses").respond_with_data("", status=404)
    httpserver.expect_request(re.compile("^/(api/)?datasets/")).respond_with_handler(handle)
    return httpserver.url_for("").rstrip("/")


def ingest(con: duckdb.DuckDBPyConnection, url: str, run_id: str, window: Window = Window()) -> IngestRun:
    run = IngestRun(con, "open_llm_leaderboard", run_id)
    ingest_open_llm_leaderboard(run, Settings(hf_url=url), window)
    return run


def parquet_gets(httpserver: HTTPServer) -> int:
    return sum(1 for request, _ in httpserver.log if request.method == "GET" and "/resolve/" in request.path)


def test_every_row_lands_once_and_an_unchanged_revision_downloads_nothing(
    fresh_db: duckdb.DuckDBPyConnection, httpserver: HTTPServer, archives: Path
) -> None:
    url = serve(httpserver, archives)
    first = ingest(fresh_db, url, "r1")
    gets_after_first = parquet_gets(httpserver)
    second = ingest(fresh_db, url, "r2")

    assert (first.counts.new, first.counts.rejected) == (8 + 6, 1)
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_TABLE}").fetchone() == (14, 14)
    assert gets_after_first == 2, "one parquet file per archive"
    assert parquet_gets(httpserver) == 2, "the second run downloaded no parquet"
    assert second.counts.fetched == 0 and second.requests == 2, "one dataset_info per archive"
    assert all(state.startswith("unchanged at ") for state in second.detail["archives"].values())
    cursor = json.loads(fresh_db.execute("select cursor from ingestion_state where source = 'open_llm_leaderboard'").fetchone()[0])
    assert set(cursor) == {"v1", "v2"} and all(len(commit) == 40 for commit in cursor.values())


def test_a_republished_archive_is_downloaded_again_and_only_its_changes_land(
    fresh_db: duckdb.DuckDBPyConnection, httpserver: HTTPServer, archives: Path
) -> None:
    url = serve(httpserver, archives)
    ingest(fresh_db, url, "r1")
    rows = fixture_rows("v2")
    rows[0] = {**rows[0], "Hub ❤️": rows[0]["Hub ❤️"] + 1}
    write_archive("v2", rows, archives / REPOS["v2"] / FILES["v2"])

    again = ingest(fresh_db, url, "r2")

    assert (again.counts.changed, again.counts.unchanged, again.counts.new) == (1, 7, 0)
    assert again.detail["archives"]["v1"].startswith("unchanged") and again.detail["archives"]["v2"].startswith("loaded")
    assert parquet_gets(httpserver) == 3


def test_a_backfill_reads_both_archives_again_and_adds_nothing(
    fresh_db: duckdb.DuckDBPyConnection, httpserver: HTTPServer, archives: Path
) -> None:
    url = serve(httpserver, archives)
    ingest(fresh_db, url, "r1")

    repair = ingest(fresh_db, url, "r2", Window(since=date(2023, 1, 1)))

    assert repair.counts.unchanged == 14 and repair.counts.new == 0 and parquet_gets(httpserver) == 4


def hub_record(repo: str, created: str, likes: int = 10) -> RawRecord:
    return RawRecord(repo, json.dumps({"id": repo, "author": repo.split("/")[0], "createdAt": created, "likes": likes,
                                       "tags": ["transformers", "text-generation"], "pipeline_tag": "text-generation"}))


def test_hub_repos_on_the_leaderboard_give_their_release_evidence_and_best_averages(
    fresh_db: duckdb.DuckDBPyConnection, httpserver: HTTPServer, archives: Path
) -> None:
    ingest(fresh_db, serve(httpserver, archives), "r1")
    land_page(fresh_db, "raw_huggingface__models", [
        hub_record("01-ai/Yi-1.5-9B", "2024-05-11T00:00:00.000Z"),
        hub_record("01-ai/Yi-1.5-9B-Chat", "2024-05-10T00:00:00.000Z"),
        hub_record("example-org/merge-7b", "2024-01-09T00:00:00.000Z"),
        hub_record("example-org/never-evaluated", "2024-03-01T00:00:00.000Z"),
    ], run_id="hub")

    rebuild(fresh_db)

    staged = dict(fresh_db.execute("select model_type, count(*) from stg_open_llm_leaderboard__results group by 1").fetchall())
    assert staged == {"pretrained": 4, "chat": 6, "merge": 2, "fine_tuned": 2}
    releases = {row[0]: row[1:] for row in fresh_db.execute(
        "select hf_repo_ids[1], has_evaluation, evaluation_evidence, open_llm_v1_average, open_llm_v2_average "
        "from releases order by 1").fetchall()}
    assert releases["01-ai/Yi-1.5-9B"] == (True, ["open_llm_leaderboard_v2"], None, 29.530872220260978), \
        "one release (same family, a day apart): the chat variant's average is the best"
    assert releases["example-org/merge-7b"] == (
        True, ["open_llm_leaderboard_v1", "open_llm_leaderboard_v1_merged_or_flagged"], 76.0, None)
    assert releases["example-org/never-evaluated"] == (False, [], None, None)


def test_a_release_evaluated_only_through_its_chat_variant_counts_as_evaluated(
    fresh_db: duckdb.DuckDBPyConnection, httpserver: HTTPServer, archives: Path
) -> None:
    """Through staging, the members' SQL and the release building: the main repo has no entry, its chat variant has."""
    ingest(fresh_db, serve(httpserver, archives), "r1")
    land_page(fresh_db, "raw_huggingface__models", [
        hub_record("01-ai/Yi-1.5-6B", "2024-05-11T00:00:00.000Z", likes=300),
        hub_record("01-ai/Yi-1.5-6B-Chat", "2024-05-11T00:00:00.000Z", likes=50),
    ], run_id="hub")

    rebuild(fresh_db)

    entries = dict(fresh_db.execute("select repo_id, count(*) from stg_open_llm_leaderboard__results "
                                    "where repo_id like '01-ai/Yi-1.5-6B%' group by 1").fetchall())
    assert entries == {"01-ai/Yi-1.5-6B-Chat": 1}, "the real v2 archive has the chat variant only"
    roles = dict(fresh_db.execute("select source_key, role from release_members").fetchall())
    assert roles == {"01-ai/Yi-1.5-6B": "main", "01-ai/Yi-1.5-6B-Chat": "variant"}, "one release, named by its base"
    (has_evaluation, evidence, v2_average, reason), = fresh_db.execute(
        "select has_evaluation, evaluation_evidence, open_llm_v2_average, label_reasons ->> 'has_evaluation' "
        "from releases").fetchall()
    assert (has_evaluation, evidence, v2_average) == (True, ["open_llm_leaderboard_v2"], 22.784006289829847)
    assert reason == "open_llm_leaderboard_v2"
    assert fresh_db.execute("select sum(releases), sum(with_evaluation) from evaluation_coverage").fetchone() == (1, 1), \
        "notable (350 likes) and counted as evaluated by the view"


def test_the_demo_snapshot_serves_both_archives_through_the_replay_server(fresh_db: duckdb.DuckDBPyConnection) -> None:
    """The replay server answers the client's HEAD and GET, as `census demo` needs."""
    with ReplayServer(routes=DatasetReplay().routes()) as server:
        run = ingest(fresh_db, f"{server.url}/huggingface", "demo")

    assert run.counts.new == 12 + 8 and run.requests == 2 + 2 * 2, "v1: 12 rows from the 2023 scrape, v2: 8 real rows"
    assert set(run.detail["archives"]) == {"v1", "v2"}
