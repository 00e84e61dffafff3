"""Papers With Code against a catalog that misbehaves on purpose: issue 9's fault list, one case each.

The listing (`papers/`) is what a run reads most, so each fault is served there, in the API's real
shape (pwc-cli's contract: `count`, `results`, `applied_filters` echoing the dates sent), followed
by a good answer. Outcomes: `retried` (asked again, then everything read), `rejected` (the bad record
or page rejected with its reason and raw text, the rest read), `unavailable` (the service moved or
changed shape) or `failed` (a `SourceError` saying what and how often it tried). A whole nightly run
through the same faults then has to reconcile its counts and land each paper once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from faulty_server import Fault, FaultyServer, Seen, ok, redirect
from flows.ingest import IngestRun, Window
from flows.ingest_paperswithcode import RAW_PAPERS, RAW_RESULTS, ingest_paperswithcode
from flows.settings import Settings
from sources import paperswithcode
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable
from transforms.rebuild import rebuild

FIXTURES = Path(__file__).parents[1] / "fixtures" / "paperswithcode"
PAPERS = json.loads((FIXTURES / "revived_papers_from_v1_page1.json").read_text(encoding="utf-8"))
"""50 papers in the revived API's fields, built from the original site's real v1 page."""
START, END = date(1980, 1, 1), date(2020, 12, 31)
TIMEOUT = 0.5
LISTING = "/api/v1/papers/"
HTML = (FIXTURES / "retired_site.html").read_bytes()
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


def page(results: list[dict], count: int, start: date = START, end: date = END) -> bytes:
    body = {"count": count, "results": results, "applied_filters": {"start_date": start.isoformat(), "end_date": end.isoformat()}}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


GOOD = page(PAPERS[:10], 10)


def read_listing(server: FaultyServer, *, page_size: int = 100) -> list[RawRecord | Rejected]:
    with paperswithcode.Catalog(f"{server.url}/api/v1", max_per_minute=60_000, timeout=TIMEOUT,
                                backoff_seconds=0.01) as catalog:
        return [item for listed in paperswithcode.paper_pages(catalog, START, END, page_size=page_size)
                for item in listed.items]


def outcome(server: FaultyServer, *faults: Fault) -> tuple[str, str, list[RawRecord | Rejected]]:
    server.script(LISTING, *faults)
    try:
        items = read_listing(server)
    except SourceUnavailable as exc:
        return "unavailable", str(exc), []
    except SourceError as exc:
        return "failed", str(exc), []
    rejects = [item for item in items if isinstance(item, Rejected)]
    assert all(reject.reason and reject.raw_text for reject in rejects), "every reject says why and keeps its text"
    if rejects:
        return "rejected", "; ".join(reject.reason[:160] for reject in rejects), items
    return "retried", f"{len(items)} records", items


def with_paper(index: int, **changes: object) -> bytes:
    return page([{**paper, **changes} if number == index else paper for number, paper in enumerate(PAPERS[:10])], 10)


FAULTS: dict[str, tuple[Callable[[], list[Fault]], str, int]] = {
    # name: (replies, expected outcome, requests made)
    "429 + Retry-After": (lambda: [Fault(429, b'{"detail": "Too Many Requests"}', {"Retry-After": "0"}),
                                   ok(GOOD, "application/json")], "retried", 2),
    "500, 502, 503 burst": (lambda: [Fault(500), Fault(502), Fault(503, headers={"Retry-After": "0"}),
                                     ok(GOOD, "application/json")], "retried", 4),
    "reset mid-body": (lambda: [Fault(200, GOOD, {"Content-Type": "application/json"}, reset_after_bytes=len(GOOD) // 3),
                                ok(GOOD, "application/json")], "retried", 2),
    "slower than timeout": (lambda: [Fault(200, GOOD, {"Content-Type": "application/json"}, delay_seconds=TIMEOUT * 3),
                                     ok(GOOD, "application/json")], "retried", 2),
    "truncated JSON": (lambda: [Fault(200, GOOD[: len(GOOD) * 2 // 3], {"Content-Type": "application/json"},
                                      content_length=False), ok(GOOD, "application/json")], "retried", 2),
    "HTML instead": (lambda: [ok(HTML, "text/html; charset=utf-8")], "unavailable", 1),
    "HTML labelled JSON": (lambda: [ok(HTML, "application/json")], "unavailable", 1),
    "wrong content type": (lambda: [ok(GOOD, "text/plain; charset=utf-8")], "retried", 1),
    "redirect to another host": (lambda: [redirect("http://elsewhere.invalid" + LISTING)], "unavailable", 1),
    "date 1900": (lambda: [ok(with_paper(3, published="1900-01-01"), "application/json")], "rejected", 1),
    "date 2100": (lambda: [ok(with_paper(3, published="2100-01-01"), "application/json")], "rejected", 1),
    "1 MB title": (lambda: [ok(with_paper(3, title="x" * (1 << 20)), "application/json")], "retried", 1),
    "invalid UTF-8": (lambda: [ok(GOOD.replace(PAPERS[3]["title"].encode(), b"\xff\xfe" + PAPERS[3]["title"].encode(), 1),
                                  "application/json")], "rejected", 1),
    "endless 503": (lambda: [Fault(503, headers={"Retry-After": "0"})], "failed", 4),
    "JSON that never parses": (lambda: [Fault(200, GOOD[:-9], {"Content-Type": "application/json"})], "failed", 4),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_listing_fault_ends_as_expected(fault: str, faulty_server: FaultyServer) -> None:
    replies, expected, requests = FAULTS[fault]
    name, reason, items = outcome(faulty_server, *replies())
    assert (fault, name) == (fault, expected), reason
    assert faulty_server.requests_to(LISTING) == requests
    if name == "retried":
        assert [item.key for item in items] == [f"api:{paper['id']}" for paper in PAPERS[:10]], "nothing dropped"
    if name == "rejected":
        (reject,) = [item for item in items if isinstance(item, Rejected)]
        assert reject.key == f"api:{PAPERS[3]['id']}" and len(items) == 10, "only the bad record, the rest read"


def test_a_1_mb_title_is_kept_whole(faulty_server: FaultyServer) -> None:
    _, _, items = outcome(faulty_server, ok(with_paper(3, title="x" * (1 << 20)), "application/json"))
    assert len(json.loads(items[3].payload)["title"]) == 1 << 20


def test_the_failures_say_what_happened_and_how_often_it_was_tried(faulty_server: FaultyServer) -> None:
    _, unreadable, _ = outcome(faulty_server, *FAULTS["JSON that never parses"][0]())
    assert unreadable.startswith("papers/ answered invalid JSON") and unreadable.endswith("after 4 attempts")
    _, busy, _ = outcome(faulty_server, *FAULTS["endless 503"][0]())
    assert "HTTP 503" in busy and "after 4 attempts" in busy


Body = Callable[[dict[str, str]], bytes]
"""A listing page's body, given the filters to echo in `applied_filters`."""


def listing_route(pages: dict[int, list[Body]]) -> Callable[[Seen], Fault]:
    """`papers/` by page number: each page answers its scripted bodies in turn, the last repeating."""

    def route(seen: Seen) -> Fault:
        script = pages.get(int(seen.query["page"][0]), [body([], 0)])
        reply = script.pop(0) if len(script) > 1 else script[0]
        return ok(reply({"start_date": seen.query["start_date"][0], "end_date": seen.query["end_date"][0]}), "application/json")

    return route


def body(results: list[dict], count: int) -> Body:
    return lambda applied: json.dumps({"count": count, "results": results, "applied_filters": applied},
                                      ensure_ascii=False).encode()


def test_empty_page_mid_listing_is_asked_again_then_read(faulty_server: FaultyServer) -> None:
    faulty_server.route(LISTING, listing_route({1: [body(PAPERS[:2], 5)], 2: [body([], 5), body(PAPERS[2:4], 5)],
                                                3: [body(PAPERS[4:5], 5)]}))
    items = read_listing(faulty_server, page_size=2)
    assert [item.key for item in items] == [f"api:{paper['id']}" for paper in PAPERS[:5]]
    assert faulty_server.requests_to(LISTING) == 4


def test_empty_page_mid_listing_that_stays_empty_is_rejected_with_the_reason(faulty_server: FaultyServer) -> None:
    faulty_server.route(LISTING, listing_route({1: [body(PAPERS[:2], 5)], 2: [body([], 5)]}))
    *read, gap = read_listing(faulty_server, page_size=2)
    assert [item.key for item in read] == ["api:1000", "api:1001"]
    assert paperswithcode.is_gap(gap) and "page 2 of the papers published" in gap.reason
    assert faulty_server.requests_to(LISTING) == 1 + 4, "page 2 asked four times; page 3 not at all"


def test_the_same_record_on_two_pages_is_read_twice_by_the_client(faulty_server: FaultyServer) -> None:
    """The client reports what the server sent; the flow keeps the first copy (next test)."""
    faulty_server.route(LISTING, listing_route({1: [body(PAPERS[:2], 4)], 2: [body(PAPERS[1:3], 4)]}))
    assert [item.key for item in read_listing(faulty_server, page_size=2)] == ["api:1000", "api:1001", "api:1001", "api:1002"]


# --- a whole nightly run through the faults --------------------------------------------------------

def recent(count: int) -> list[dict]:
    """Papers published in the nightly scan, carrying the real records' fields; none wants results."""
    day = datetime.now(timezone.utc).date() - timedelta(days=3)
    return [{**PAPERS[index % len(PAPERS)], "id": str(700_000 + index), "arxiv_id": None, "hf_models": [],
             "published": day.isoformat()} for index in range(count)]


def test_a_nightly_run_rides_out_every_fault_and_its_counts_reconcile(
    faulty_server: FaultyServer, fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    papers = recent(300)
    absurd = {**papers[150], "published": "2100-01-01"}
    long_title = {**papers[151], "title": "x" * (1 << 20)}
    # The catalog shifts while we read: paper 99 closes page 1 and opens page 2, 199 moves to page 3.
    page_two = papers[99:150] + [absurd, long_title] + papers[152:199]
    utf8 = body(papers[199:300], 300)
    route = listing_route({1: [body(papers[:100], 300)], 2: [body([], 300), body(page_two, 300)],
                           3: [lambda applied: utf8(applied).replace(papers[210]["title"].encode(),
                                                                     b"\xff" + papers[210]["title"].encode(), 1)]})
    transient = iter([Fault(429, b"{}", {"Retry-After": "0"}), Fault(503, b"{}", {"Retry-After": "0"}), None,
                      None, Fault(502, b"{}"), None, None, None])
    cut_next = [True]

    def misbehave(seen: Seen) -> Fault:
        fault = next(transient, None)
        if fault is not None:
            return fault
        reply = route(seen)
        if seen.query["page"] == ["3"] and cut_next[0]:
            cut_next[0] = False  # page 3 is first cut off mid-body, then answered whole
            return Fault(200, reply.body, reply.headers, reset_after_bytes=len(reply.body) // 2)
        return reply

    faulty_server.route(LISTING, misbehave)
    settings = Settings(db=tmp_path / "census.duckdb", pwc_url=f"{faulty_server.url}/api/v1", pwc_max_per_minute=60_000,
                        pwc_import_archive=False, http_timeout_seconds=TIMEOUT)
    run = IngestRun(fresh_db, "paperswithcode", "faulty-night")
    ingest_paperswithcode(run, settings, Window())

    assert faulty_server.requests_to(LISTING) == 8, "page 1: 429, 503, ok; page 2: empty, 502, ok; page 3: reset, ok"
    counts = run.counts
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected
    assert (counts.fetched, counts.new, counts.rejected) == (300, 298, 2), "300 papers, one listed twice, two rejected"
    assert run.detail["repeated"] == 1 and run.detail["incomplete"] == []
    reasons = sorted(row[0] for row in fresh_db.execute("select reason from rejects").fetchall())
    assert reasons == ["invalid UTF-8 in the record",
                       f"published 2100-01-01 outside the window asked for ({run.detail['scan']})"]
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_PAPERS}").fetchone() == (298, 298)
    title = fresh_db.execute(f"select length(payload ->> 'title') from {RAW_PAPERS} where source_key = ?",
                             [f"api:{long_title['id']}"]).fetchone()[0]
    assert title == 1 << 20
    assert "through" in json.loads(fresh_db.execute("select cursor from ingestion_state").fetchone()[0])


def test_10e30_parameters_in_a_benchmark_row_land_and_stage_as_a_number(
    faulty_server: FaultyServer, fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    paper = {**recent(1)[0], "arxiv_id": "2005.10821"}
    rows = json.loads((FIXTURES / "revived_evaluations_paper9_page1.json").read_text(encoding="utf-8"))["results"]
    huge = [{**row, "paper_id": paper["id"], "num_parameters": 10**30} for row in rows]
    faulty_server.route(LISTING, listing_route({1: [body([paper], 1)]}))
    faulty_server.script("/api/v1/evaluations/", ok(json.dumps({"count": len(huge), "results": huge}).encode(), "application/json"))
    settings = Settings(db=tmp_path / "census.duckdb", pwc_url=f"{faulty_server.url}/api/v1", pwc_max_per_minute=60_000,
                        pwc_import_archive=False, http_timeout_seconds=TIMEOUT)
    run = IngestRun(fresh_db, "paperswithcode", "huge")
    ingest_paperswithcode(run, settings, Window())
    assert (run.counts.new, run.counts.rejected) == (1 + len(huge), 0)
    assert fresh_db.execute(f"select count(*) from {RAW_RESULTS}").fetchone()[0] == len(huge)
    rebuild(fresh_db)
    assert fresh_db.execute("select distinct num_parameters from stg_paperswithcode__results").fetchall() == [(1e30,)]
