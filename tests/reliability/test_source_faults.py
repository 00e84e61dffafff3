"""The issue's fault list against every source client, at the source level, over real HTTP.

Each case serves one fault and then a good answer (a genuine response from `tests/fixtures`) and
names the outcome: `retried` (the good answer was loaded whole), `rejected` (loaded, with the bad
record or page rejected with a reason), `unavailable` (SourceUnavailable: the service moved or
changed shape) or `failed` (SourceError with a reason). Anything else (an unexpected exception type,
a hang, a record silently dropped) fails the test. The expected outcome of each cell is the table
in the closing note of issue 9.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from faulty_server import Fault, FaultyServer, ok, redirect
from sources import arxiv, epoch, huggingface, paperswithcode
from flows.ingest import IngestRun
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable
from warehouse.raw import RAW_TABLES

FIXTURES = Path(__file__).parents[1] / "fixtures"
TIMEOUT = 0.5
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


@dataclass(frozen=True)
class Client:
    """How to ask one source for one page, and the genuine answer it expects."""

    path: str
    body: bytes
    content_type: str
    fetch: Callable[[str], list[RawRecord | Rejected]]
    absurd: Callable[[bytes], bytes]
    """The good body with one record made absurd: dated 2100, 10^30 parameters, a 1 MB title."""
    bad_bytes: Callable[[bytes], bytes]
    """The good body with invalid UTF-8 in one record's text."""


def _hub_fetch(base: str) -> list[RawRecord | Rejected]:
    listing = huggingface.HubListing(base, timeout=TIMEOUT, backoff_seconds=0.01, sleep=lambda seconds: None)
    return listing.fetch_page(huggingface.listing_url(base)).items


def _hub_absurd(body: bytes) -> bytes:
    models = json.loads(body)
    models[0].update(createdAt="2100-01-01T00:00:00.000Z", safetensors={"total": 10**30}, id="m/" + "x" * (1 << 20))
    return json.dumps(models).encode()


def _arxiv_fetch(base: str) -> list[RawRecord | Rejected]:
    with arxiv.ArxivClient(f"{base}/api/query", delay_seconds=0, timeout=TIMEOUT, backoff_seconds=0.01) as client:
        return client.query(search_query="testing", start=0, max_results=10).items


def _arxiv_absurd(body: bytes) -> bytes:
    text = body.decode("utf-8")
    text = re.sub(r"<published>[^<]*</published>", "<published>2100-01-01T00:00:00Z</published>", text, count=1)
    return re.sub(r"<title>[^<]*</title>", "<title>" + "x" * (1 << 20) + "</title>", text, count=2).encode()


def _pwc_fetch(base: str) -> list[RawRecord | Rejected]:
    with paperswithcode.Catalog(f"{base}/api/v1", timeout=TIMEOUT, backoff_seconds=0.01, max_per_minute=60_000) as catalog:
        found = paperswithcode.fetch_paper(catalog, "1406.2661")
    return [found] if found is not None else []


def _pwc_absurd(body: bytes) -> bytes:
    paper = json.loads(body)
    paper.update(published="2100-01-01", title="x" * (1 << 20), num_parameters=10**30)
    return json.dumps(paper).encode()


def _epoch_fetch(base: str) -> list[RawRecord | Rejected]:
    import requests

    url = f"{base}/notable_ai_models.csv"
    with requests.Session() as session:
        download = epoch.fetch(url, session=session, timeout=TIMEOUT, backoff_seconds=0.01)
        return list(epoch.read_records(download.body, url))


def _epoch_absurd(body: bytes) -> bytes:
    header, first, rest = body.split(b"\n", 2)
    return header + b"\n" + b"Absurd,Language,Org,,,,2100-01-01" + b"," * (header.count(b",") - 6) + b"\n" + first + b"\n" + rest


CLIENTS = {
    "huggingface": Client(
        "/api/models", (FIXTURES / "huggingface" / "api_models_page_2026-09-28_from_slice.json").read_bytes(),
        "application/json", _hub_fetch, _hub_absurd,
        lambda body: body.replace(b'"pollen-robotics"', b'"pollen-\xff\xferobotics"', 1),
    ),
    "arxiv": Client(
        "/api/query", (FIXTURES / "arxiv" / "api_query_search-testing_start0_max10.xml").read_bytes(),
        "application/atom+xml; charset=utf-8", _arxiv_fetch, _arxiv_absurd,
        lambda body: body.replace(b"<title>", b"<title>\xff\xfe", 2),
    ),
    "paperswithcode": Client(
        "/api/v1/papers/1406.2661", (FIXTURES / "paperswithcode" / "revived_paper_detail_1406.2661.json").read_bytes(),
        "application/json", _pwc_fetch, _pwc_absurd,
        lambda body: body.replace(b'"title": "', b'"title": "\xff\xfe', 1),
    ),
    "epoch": Client(
        "/notable_ai_models.csv",
        (FIXTURES / "epoch" / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv").read_bytes(),
        "text/csv", _epoch_fetch, _epoch_absurd, lambda body: body.replace(b"Grok-3", b"Grok-\xff\xfe3", 1),
    ),
}

HTML = b"<!DOCTYPE html>\n<html><head><title>Moved</title></head><body>This service has moved.</body></html>"

FAULTS: dict[str, Callable[[Client], list[Fault]]] = {
    "429 + Retry-After": lambda c: [Fault(429, b"slow down", {"Retry-After": "0"}), ok(c.body, c.content_type)],
    "500, 502, 503 burst": lambda c: [Fault(500), Fault(502), Fault(503, headers={"Retry-After": "0"}), ok(c.body, c.content_type)],
    "reset mid-body": lambda c: [Fault(200, c.body, {"Content-Type": c.content_type}, reset_after_bytes=len(c.body) // 3),
                                 ok(c.body, c.content_type)],
    "slower than timeout": lambda c: [Fault(200, c.body, {"Content-Type": c.content_type}, delay_seconds=TIMEOUT * 3),
                                      ok(c.body, c.content_type)],
    "truncated body": lambda c: [Fault(200, c.body[: len(c.body) * 2 // 3], {"Content-Type": c.content_type}, content_length=False),
                                 ok(c.body, c.content_type)],
    "HTML instead": lambda c: [ok(HTML, "text/html; charset=utf-8")],
    "wrong content type": lambda c: [ok(c.body, "text/plain")],
    "redirect to another host": lambda c: [redirect("http://elsewhere.invalid" + c.path)],
    "absurd values": lambda c: [ok(c.absurd(c.body), c.content_type)],
    "invalid UTF-8": lambda c: [ok(c.bad_bytes(c.body), c.content_type)],
}

EXPECTED: dict[tuple[str, str], str] = {
    **{(source, fault): "retried" for source in CLIENTS for fault in
       ("429 + Retry-After", "500, 502, 503 burst", "reset mid-body", "slower than timeout")},
    **{(source, "redirect to another host"): "unavailable" for source in CLIENTS},
    **{(source, "HTML instead"): "unavailable" for source in CLIENTS},
    ("huggingface", "truncated body"): "retried",
    ("arxiv", "truncated body"): "retried",
    ("paperswithcode", "truncated body"): "retried",
    ("epoch", "truncated body"): "rejected",
    ("huggingface", "wrong content type"): "retried",
    ("arxiv", "wrong content type"): "retried",
    ("paperswithcode", "wrong content type"): "retried",
    ("epoch", "wrong content type"): "retried",
    ("huggingface", "absurd values"): "rejected",
    ("arxiv", "absurd values"): "rejected",
    ("paperswithcode", "absurd values"): "retried",
    ("epoch", "absurd values"): "rejected",
    ("huggingface", "invalid UTF-8"): "rejected",
    ("arxiv", "invalid UTF-8"): "rejected",
    ("paperswithcode", "invalid UTF-8"): "rejected",
    ("epoch", "invalid UTF-8"): "rejected",
}
"""Observed and accepted; docs/RELIABILITY.md says what each cell means, per source."""


def outcome(client: Client, faults: list[Fault], server: FaultyServer) -> tuple[str, str]:
    """The outcome's name and its reason (the exception message or the rejects' reasons)."""
    server.script(client.path, *faults)
    good = [item for item in ok_items(client) if isinstance(item, RawRecord)]
    try:
        items = client.fetch(server.url)
    except SourceUnavailable as exc:
        return "unavailable", str(exc)
    except SourceError as exc:
        return "failed", str(exc)
    rejects = [item for item in items if isinstance(item, Rejected)]
    assert all(reject.reason and reject.raw_text for reject in rejects), "every reject says why and keeps its text"
    if rejects:
        return "rejected", "; ".join(reject.reason[:120] for reject in rejects)
    records = [item for item in items if isinstance(item, RawRecord)]
    assert len(records) == len(good), "a fault must never drop records silently"
    return "retried", f"{len(records)} records"


_GOOD: dict[str, list[RawRecord | Rejected]] = {}


def ok_items(client: Client) -> list[RawRecord | Rejected]:
    """What the client makes of the good answer alone, for comparison."""
    key = client.path
    if key not in _GOOD:
        with FaultyServer() as server:
            server.script(client.path, ok(client.body, client.content_type))
            _GOOD[key] = client.fetch(server.url)
    return _GOOD[key]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("source", list(CLIENTS))
def test_fault_ends_as_expected(source: str, fault: str, faulty_server: FaultyServer) -> None:
    client = CLIENTS[source]
    name, reason = outcome(client, FAULTS[fault](client), faulty_server)
    assert (name, source, fault) == (EXPECTED[(source, fault)], source, fault), reason
    assert reason


def test_arxiv_empty_page_in_the_middle_of_a_listing_is_asked_again(faulty_server: FaultyServer) -> None:
    second = (FIXTURES / "arxiv" / "api_query_search-testing_start10_max10.xml").read_bytes()
    empty = re.sub(rb"<entry>.*?</entry>\s*", b"", second, flags=re.DOTALL)
    faulty_server.script("/api/query", ok(empty, "application/atom+xml"), ok(second, "application/atom+xml"))
    with arxiv.ArxivClient(f"{faulty_server.url}/api/query", delay_seconds=0, backoff_seconds=0.01) as client:
        page = client.query(search_query="testing", start=10, max_results=10)
    assert len(page.items) == 10 and page.total == 214881
    assert faulty_server.requests_to("/api/query") == 2


@pytest.mark.parametrize("raw_table", sorted(RAW_TABLES))
def test_the_same_record_on_two_pages_lands_once_and_counts_reconcile(raw_table: str, fresh_db: duckdb.DuckDBPyConnection) -> None:
    run = IngestRun(fresh_db, "test", "run-1")
    first = RawRecord("same-key", '{"title": "one"}')
    run.land(raw_table, [first, RawRecord("other", '{"title": "two"}')])
    run.land(raw_table, [first, first, Rejected(None, "{broken", "malformed")])
    counts = run.counts
    assert (counts.fetched, counts.new, counts.unchanged, counts.rejected) == (5, 2, 2, 1)
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected
    assert fresh_db.execute(f"select count(*) from {raw_table} where source_key = 'same-key'").fetchone()[0] == 1


def test_hub_empty_page_in_the_middle_of_a_listing_does_not_end_the_walk(faulty_server: FaultyServer) -> None:
    models = json.loads(CLIENTS["huggingface"].body)

    def page(items: list[dict], next_path: str | None) -> Fault:
        headers = {"Content-Type": "application/json"}
        if next_path:
            headers["Link"] = f'<{faulty_server.url}{next_path}>; rel="next"'
        return Fault(200, json.dumps(items).encode(), headers)

    pages = {"/api/models": page(models[:20], "/api/models/p2"), "/api/models/p2": page([], "/api/models/p3"),
             "/api/models/p3": page(models[:5] + models[20:], None)}
    faulty_server.route("/api/models", lambda request: pages[request.path])
    listing = huggingface.HubListing(faulty_server.url, sleep=lambda seconds: None)
    walked = list(huggingface.walk(listing, huggingface.listing_url(faulty_server.url), stop_before=None))
    keys = [item.key for page_ in walked for item in page_.items]
    assert len(walked) == 3 and walked[-1].done
    assert len(keys) == len(models) + 5, "every model read, the five repeated ones too (landing keeps them once)"
    assert set(keys) == {model["id"] for model in models}
