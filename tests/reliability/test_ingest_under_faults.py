"""Every source's whole ingest through a server that keeps failing: nothing is lost.

The bundled demo snapshot is served by its own replay routes (the ones `census demo` uses), behind
an injector that answers every third request with a 503 or a 429 (each with `Retry-After: 0`, so
the test does not sleep), or cuts every tenth answer with a connection reset half-way through (a
reset is retried after the client's own backoff, a second or so). Each source is ingested twice, through the faulty server and through a
clean one, into separate work databases, the way the pipeline's task does it (without Prefect):
the faulty run must finish, reconcile its counts, and land exactly the records of the clean run.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from faulty_server import Fault, FaultyServer, Seen
from flows.demo import DEMO_SINCE, demo_routes
from flows.ingest import IngestRun, Window
from flows.pipeline import INGESTERS
from flows.replay_server import Request
from flows.settings import Settings
from warehouse import runs
from warehouse.connection import open_work_db

pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")
RAW_TABLES = {
    "huggingface": ("raw_huggingface__models",),
    "arxiv": ("raw_arxiv__papers",),
    "paperswithcode": ("raw_paperswithcode__papers", "raw_paperswithcode__results"),
}
TRANSIENT = (Fault(503, b"busy", {"Retry-After": "0"}), Fault(429, b"slow down", {"Retry-After": "0"}))


class Injector:
    """Serves the demo routes, failing every `every`-th request with the next transient fault."""

    def __init__(self, server: FaultyServer, every: int | None, kind: str) -> None:
        self.server = server
        self.every = every
        self.kind = kind
        self.routes = demo_routes()
        self.requests = 0
        self.faults = itertools.cycle(TRANSIENT)

    def __call__(self, seen: Seen) -> Fault:
        self.requests += 1
        faulty = bool(self.every) and self.requests % self.every == 1
        if faulty and self.kind == "status":
            return next(self.faults)
        prefix = max((prefix for prefix in self.routes if seen.path.startswith(prefix)), key=len)
        reply = self.routes[prefix](Request(seen.path, seen.query, seen.headers, self.server.url))
        cut = len(reply.body) // 2 if faulty and reply.body else None
        return Fault(int(reply.status), reply.body, dict(reply.headers), reset_after_bytes=cut)


def ingest(
    source: str, folder: Path, every: int | None, kind: str = "status"
) -> tuple[dict[str, object], dict[str, set[tuple[str, str]]], int]:
    """Run one source's backfill against the demo routes; its recorded run, raw rows and requests."""
    with FaultyServer() as server:
        injector = Injector(server, every, kind)
        for prefix in injector.routes:
            server.route(prefix, injector)
        settings = Settings(
            db=folder / "census.duckdb",
            hf_url=f"{server.url}/huggingface",
            arxiv_url=f"{server.url}/arxiv/api/query",
            arxiv_rss_url=f"{server.url}/arxiv/rss/",
            arxiv_delay_seconds=0,
            pwc_url=f"{server.url}/paperswithcode/api/v1",
            pwc_max_per_minute=60_000,
            pwc_import_archive=False,
        )
        con = open_work_db(settings.work_db)
        try:
            run = IngestRun(con, source, "run-1")
            runs.start_run(con, "run-1", source)
            INGESTERS[source](run, settings, Window(since=DEMO_SINCE))
            runs.finish_run(con, "run-1", source, status="success", counts=run.counts, requests=run.requests)
            names = ("status", "fetched", "new", "changed", "unchanged", "rejected")
            recorded = dict(zip(names, con.execute(f"select {', '.join(names)} from ingestion_runs").fetchone()))
            raw = {
                table: set(con.execute(f"select source_key, content_hash from {table}").fetchall())
                for table in RAW_TABLES[source]
            }
        finally:
            con.close()
        return recorded, raw, injector.requests


@pytest.mark.parametrize(("kind", "every"), [("status", 3), ("reset", 10)], ids=["503-and-429", "reset-mid-body"])
@pytest.mark.parametrize("source", sorted(RAW_TABLES))
def test_failing_answers_lose_nothing_and_counts_reconcile(source: str, kind: str, every: int, tmp_path: Path) -> None:
    _, clean_raw, clean_requests = ingest(source, tmp_path / "clean", every=None)
    faulty, faulty_raw, faulty_requests = ingest(source, tmp_path / "faulty", every=every, kind=kind)

    assert faulty["status"] == "success"
    assert faulty["fetched"] == faulty["new"] + faulty["changed"] + faulty["unchanged"] + faulty["rejected"]
    assert faulty_raw == clean_raw and all(clean_raw.values()), "the same records as a run that met no fault"
    assert faulty_requests > clean_requests, "faults were met, and retried"
