"""The Open LLM Leaderboard archives through a Hub that misbehaves: `dataset_info` (one JSON GET per
archive) and `hf_hub_download` (HEAD then GET of each parquet file), through the real `huggingface_hub`
client, against the fixture archives replayed as the Hub serves them.

Each case fails the first answers of one kind with a fault, then answers well, and names the outcome:
`retried` (every row landed, counts reconcile, the cursor moved) or `failed` (SourceError with its reason:
the cursor stays, and the next run reads the archive again). The table is in docs/RELIABILITY.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from faulty_server import Fault, FaultyServer, Seen, ok, redirect
from flows.demo_open_llm_leaderboard import DatasetReplay
from flows.ingest import IngestRun, Window
from flows.ingest_open_llm_leaderboard import RAW_TABLE, ingest_open_llm_leaderboard
from flows.replay_server import Request
from flows.settings import Settings
from sources.open_llm_leaderboard import ARCHIVES
from sources.records import SourceError
from warehouse import runs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "open_llm_leaderboard"
sys.path.insert(0, str(FIXTURES))
from build_parquet import FILES  # noqa: E402

ROWS, REJECTED = 14, 1
"""The fixture archives: 8 v2 rows and 7 v1 rows, one of which names no repo."""
HTML = b"<!DOCTYPE html>\n<html><head><title>Moved</title></head><body>This dataset has moved.</body></html>"
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")

Make = Callable[[Fault], Fault]
"""A fault made from the good answer it replaces."""


def cut(good: Fault) -> Fault:
    return Fault(good.status, good.body[: len(good.body) * 2 // 3], good.headers, content_length=False)


def reset(good: Fault) -> Fault:
    return Fault(good.status, good.body, good.headers, reset_after_bytes=len(good.body) // 3)


def garbage(good: Fault) -> Fault:
    return Fault(200, b"PAR1" + b"\0" * 300, good.headers)


FAULTS: dict[str, tuple[str, list[Make]]] = {
    # target "info": GET /api/datasets/<repo>; "file": GET of a parquet file; "file+head": its HEAD and GET.
    "info: 429 + Retry-After": ("info", [lambda good: Fault(429, b"slow down", {"Retry-After": "0"})]),
    "info: 500, 502, 503 burst": ("info", [lambda good: Fault(status, headers={"Retry-After": "0"})
                                           for status in (500, 502, 503)]),
    "info: reset mid-body": ("info", [reset]),
    "info: truncated JSON": ("info", [cut]),
    "info: HTML instead": ("info", [lambda good: ok(HTML, "text/html; charset=utf-8")]),
    "info: wrong content type": ("info", [lambda good: Fault(good.status, good.body, {"Content-Type": "text/plain"})]),
    "info: redirect to another host": ("info", [lambda good: redirect("http://elsewhere.invalid/api/datasets/x")]),
    "file: 503 burst": ("file", [lambda good: Fault(503, headers={"Retry-After": "0"})] * 3),
    "file: reset mid-body": ("file", [reset]),
    "file: truncated parquet": ("file", [cut]),
    "file: HTML instead": ("file", [lambda good: ok(HTML, "text/html")]),
    "file: wrong content type": ("file", [lambda good: Fault(good.status, good.body, {**good.headers,
                                                                                       "Content-Type": "text/html"})]),
    "file: redirect to another host": ("file", [lambda good: redirect("http://elsewhere.invalid/x.parquet")]),
    "file: corrupt parquet, every time": ("file+head", [garbage] * 100),
    "file: invalid UTF-8, every time": ("file+head", [lambda good: Fault(good.status, good.body.replace(
        b"Yi-1.5-9B-Chat", b"Yi-1.5-9B-Ch\xff\xfe"), good.headers)] * 100),
    "info: 429, every time": ("info", [lambda good: Fault(429, b"slow down", {"Retry-After": "0"})] * 100),
}
EXPECTED = {name: "retried" for name in FAULTS} | {
    "info: redirect to another host": "failed",
    "file: corrupt parquet, every time": "failed",
    "file: invalid UTF-8, every time": "failed",
    "info: 429, every time": "failed",
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two dataset repos as folders, written uncompressed so one cell's bytes can be edited in place."""
    root = tmp_path_factory.mktemp("datasets")
    for version, repo in ARCHIVES.items():
        target = root / repo / FILES[version]
        target.parent.mkdir(parents=True)
        with duckdb.connect() as con:
            con.execute(f"copy (select * from read_parquet('{FIXTURES / f'contents_{version}.parquet'}')) "
                        f"to '{target}' (format parquet, compression uncompressed)")
    return root


def serve(server: FaultyServer, root: Path, target: str, faults: list[Make]) -> None:
    """The Hub's replies for the archives, with `faults` in place of the first answers of `target`."""
    replay = DatasetReplay(root, prefix="")
    left = list(faults)

    def route(seen: Seen) -> Fault:
        info = seen.path.startswith("/api/datasets/")
        answer = replay.info if info else replay.resolve
        reply = answer(Request(seen.path, seen.query, seen.headers, server.url))
        good = Fault(int(reply.status), reply.body, dict(reply.headers))
        hit = info if target == "info" else (not info and (seen.method == "GET" or target == "file+head"))
        if hit and left:
            return left.pop(0)(good)
        return good

    server.route("/api/datasets/", route)
    server.route("/datasets/", route)
    server.route("/api/agent-harnesses", lambda seen: Fault(404))  # the client's daily question: nothing here


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_ends_as_expected(fault: str, archives: Path, fresh_db: duckdb.DuckDBPyConnection) -> None:
    target, faults = FAULTS[fault]
    run = IngestRun(fresh_db, "open_llm_leaderboard", "run-1")
    with FaultyServer() as server:
        serve(server, archives, target, faults)
        try:
            ingest_open_llm_leaderboard(run, Settings(hf_url=server.url), Window())
            outcome, reason = "retried", run.counts.summary()
        except SourceError as exc:
            outcome, reason = "failed", str(exc)
    assert (outcome, fault) == (EXPECTED[fault], fault), reason
    counts = run.counts
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected
    landed = fresh_db.execute(f"select count(*) from {RAW_TABLE}").fetchone()[0]
    cursor = runs.get_cursor(fresh_db, "open_llm_leaderboard") or {}
    if outcome == "retried":
        assert (landed, counts.rejected) == (ROWS, REJECTED) and set(cursor) == set(ARCHIVES)
    else:
        assert set(cursor) < set(ARCHIVES), "a failed archive keeps its cursor: the next run reads it again"
        assert reason


def test_retries_that_run_out_say_so_and_the_pipeline_retries_the_task_later(
    archives: Path, fresh_db: duckdb.DuckDBPyConnection
) -> None:
    from flows.pipeline import is_transient

    run = IngestRun(fresh_db, "open_llm_leaderboard", "run-1")
    with FaultyServer() as server:
        serve(server, archives, *FAULTS["info: 429, every time"])
        with pytest.raises(SourceError, match=r"429 .* after 4 attempts$") as raised:
            ingest_open_llm_leaderboard(run, Settings(hf_url=server.url), Window())
        assert server.requests_to("/api/datasets/open-llm-leaderboard-old/contents") == 4
    assert is_transient(raised.value)


def test_a_parquet_that_is_not_utf8_names_the_reason(archives: Path, fresh_db: duckdb.DuckDBPyConnection) -> None:
    run = IngestRun(fresh_db, "open_llm_leaderboard", "run-1")
    target, faults = FAULTS["file: invalid UTF-8, every time"]
    with FaultyServer() as server:
        serve(server, archives, target, faults)
        with pytest.raises(SourceError, match=r"unreadable parquet \(.*not valid UTF8"):
            ingest_open_llm_leaderboard(run, Settings(hf_url=server.url), Window())
