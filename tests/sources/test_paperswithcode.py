"""The Papers With Code client over real HTTP: paging, filter echo, detail, evaluations, errors, archive."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from flows.demo_paperswithcode import CatalogReplay
from flows.replay_server import Request as ReplayRequest
from sources import paperswithcode
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable

FIXTURES = Path(__file__).parents[1] / "fixtures" / "paperswithcode"
PAPERS = json.loads((FIXTURES / "revived_papers_from_v1_page1.json").read_text(encoding="utf-8"))


def catalog(url: str, **options: object) -> paperswithcode.Catalog:
    return paperswithcode.Catalog(url, max_per_minute=60_000, backoff_seconds=0.01, **options)


def listing(results: list[dict], count: int, start: str = "1980-01-01", end: str = "1999-12-31") -> dict:
    return {"count": count, "results": results, "applied_filters": {"start_date": start, "end_date": end}}


def test_pages_follow_count_and_stop_at_an_empty_last_page(httpserver: HTTPServer) -> None:
    for number, chunk in ((1, PAPERS[0:2]), (2, PAPERS[2:4]), (3, [])):
        httpserver.expect_request("/api/v1/papers/", query_string={
            "page": str(number), "page_size": "2", "start_date": "1980-01-01", "end_date": "1999-12-31",
            "order_by": "date_published", "order_dir": "asc", "latest_only": "true", "include_resources": "true",
        }).respond_with_json(listing(chunk, count=5))
    with catalog(httpserver.url_for("/api/v1")) as client:
        pages = list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31), page_size=2))
    assert [(page.number, len(page.items), page.last) for page in pages] == [(1, 2, False), (2, 2, False), (3, 0, True)]
    assert [item.key for page in pages for item in page.items] == ["api:1000", "api:1001", "api:1002", "api:1003"]
    assert client.requests == 3


def test_a_window_over_the_page_cap_is_halved_until_every_paper_is_in_reach(httpserver: HTTPServer) -> None:
    replay = CatalogReplay(PAPERS, prefix="/api/v1")

    def handle(request: Request) -> Response:
        reply = replay(ReplayRequest(request.path, parse_qs(request.query_string.decode()), {}, ""))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    httpserver.expect_request(re.compile("^/api/v1/")).respond_with_handler(handle)
    with catalog(httpserver.url_for("/api/v1")) as client:
        pages = list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31), page_size=2, max_pages=3))
    keys = [item.key for page in pages for item in page.items]
    assert sorted(keys) == sorted(f"api:{paper['id']}" for paper in PAPERS)
    assert len(keys) == len(set(keys)) == 50
    assert max(page.number for page in pages) <= 3
    windows = [(page.start, page.end) for page in pages if page.last]
    assert windows == sorted(windows) and windows[0][0] == date(1980, 1, 1) and windows[-1][1] == date(1999, 12, 31)


@pytest.mark.parametrize(
    "applied",
    [None, {}, {"start_date": "1980-01-01"}, {"start_date": "1980-01-01", "end_date": "2026-01-01"}],
    ids=["missing", "empty", "end-not-echoed", "other-end"],
)
def test_a_page_that_does_not_echo_the_date_filters_makes_the_source_unavailable(
    httpserver: HTTPServer, applied: dict | None
) -> None:
    body = {"count": 1, "results": PAPERS[:1]}
    if applied is not None:
        body["applied_filters"] = applied
    httpserver.expect_request("/api/v1/papers/").respond_with_json(body)
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceUnavailable, match="did not confirm"):
        list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31)))


def test_an_echo_that_differs_only_in_case_is_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_json(listing(PAPERS[:1], 1, "1980-01-01", "1999-12-31"))
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    assert page.items == [RawRecord("api:1000", json.dumps(PAPERS[0], ensure_ascii=False))]


def test_the_detail_object_keeps_repositories_and_hub_links(httpserver: HTTPServer) -> None:
    body = (FIXTURES / "revived_paper_detail_1406.2661.json").read_bytes()
    httpserver.expect_request("/api/v1/papers/9", query_string="include_resources=true").respond_with_data(
        body, content_type="application/json")
    httpserver.expect_request("/api/v1/papers/404404").respond_with_json({"detail": "Paper not found"}, status=404)
    with catalog(httpserver.url_for("/api/v1")) as client:
        record = paperswithcode.fetch_paper(client, "9")
        gone = paperswithcode.fetch_paper(client, "404404")
    assert isinstance(record, RawRecord) and record.key == "api:9"
    paper = json.loads(record.payload)
    assert paper["repositories"] == [{"url": "https://github.com/goodfeli/adversarial", "is_official": True}]
    assert paper["hf_models"] == ["https://huggingface.co/example/gan-mnist"]
    assert {"hf_datasets", "hf_spaces", "project_pages"} <= set(paper)
    assert gone is None


def test_evaluations_are_paged_until_count_rows_are_read(httpserver: HTTPServer) -> None:
    for number in (1, 2):
        httpserver.expect_request("/api/v1/evaluations/", query_string={
            "page": str(number), "page_size": "100", "paper_id": "9", "ordering": "-benchmark_popularity",
        }).respond_with_data((FIXTURES / f"revived_evaluations_paper9_page{number}.json").read_bytes(),
                             content_type="application/json")
    with catalog(httpserver.url_for("/api/v1")) as client:
        records = list(paperswithcode.evaluation_records(client, "9"))
    assert [record.key for record in records] == ["api:9#1", "api:9#2"]
    first = json.loads(records[0].payload)
    assert first["metrics"] == {"mean iou (class)": "85.1%"} and first["best_rank"] == 1 and first["is_open"] is True
    assert client.requests == 2


def test_an_evaluation_row_without_metrics_is_rejected_with_its_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/evaluations/").respond_with_json(
        {"count": 1, "results": [{"id": "5", "paper_id": "9", "model_name": "X"}]})
    with catalog(httpserver.url_for("/api/v1")) as client:
        (rejected,) = paperswithcode.evaluation_records(client, "9")
    assert isinstance(rejected, Rejected) and "metrics" in rejected.reason and '"model_name": "X"' in rejected.raw_text


def test_a_fastapi_error_detail_reaches_the_message(httpserver: HTTPServer) -> None:
    detail = [{"loc": ["query", "page_size"], "msg": "Input should be less than or equal to 100", "type": "less_than_equal"}]
    httpserver.expect_request("/api/v1/papers/").respond_with_json({"detail": detail}, status=422)
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceError) as caught:
        list(paperswithcode.paper_pages(client, date(2026, 1, 1), date(2026, 1, 2)))
    assert not isinstance(caught.value, SourceUnavailable)
    assert "HTTP 422" in str(caught.value) and "less than or equal to 100" in str(caught.value)


@pytest.mark.parametrize("status", [404, 410])
def test_a_listing_that_is_gone_makes_the_source_unavailable(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_json({"detail": "Not Found"}, status=status)
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceUnavailable) as caught:
        list(paperswithcode.paper_pages(client, date(2026, 1, 1), date(2026, 1, 2)))
    assert f"HTTP {status}: Not Found" in str(caught.value)


def test_a_429_is_retried_then_the_page_is_read(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/api/v1/papers/").respond_with_json(
        {"detail": "Too Many Requests"}, status=429, headers={"Retry-After": "0"})
    httpserver.expect_ordered_request("/api/v1/papers/").respond_with_json(listing(PAPERS[:2], 2))
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    assert len(page.items) == 2 and page.last
    assert len(httpserver.log) == 2


def test_an_html_page_with_status_200_makes_the_source_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_data(
        (FIXTURES / "retired_site.html").read_bytes(), content_type="text/html; charset=utf-8")
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceUnavailable) as caught:
        list(paperswithcode.paper_pages(client, date(2026, 1, 1), date(2026, 1, 2)))
    assert "text/html" in str(caught.value) and "instead of JSON" in str(caught.value)


def test_a_redirect_to_another_site_makes_the_source_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_data(
        "", status=301, headers={"Location": "https://huggingface.co/papers/trending"})
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceUnavailable, match="another site"):
        list(paperswithcode.paper_pages(client, date(2026, 1, 1), date(2026, 1, 2)))


def test_requests_are_spaced_to_stay_under_the_per_minute_budget(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/evaluations/").respond_with_json({"count": 0, "results": []})
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = paperswithcode.Catalog(httpserver.url_for("/api/v1"), max_per_minute=30, clock=lambda: now[0], sleep=sleep)
    with client:
        for paper_id in ("1", "2", "3"):
            list(paperswithcode.evaluation_records(client, paper_id))
    assert slept == [pytest.approx(2.0), pytest.approx(2.0)]


@pytest.mark.parametrize(
    ("paper", "wanted"),
    [
        ({"id": "1", "arxiv_id": "2501.01234", "hf_models": []}, True),
        ({"id": "2", "arxiv_id": None, "hf_models": ["https://huggingface.co/example/model"]}, True),
        ({"id": "3", "arxiv_id": None, "hf_models": []}, False),
        ({"id": "4"}, False),
    ],
)
def test_results_are_fetched_only_for_papers_with_an_arxiv_id_or_a_hub_model(paper: dict, wanted: bool) -> None:
    assert paperswithcode.wants_results(paper) is wanted


def _page_body(results: list[dict], count: int) -> bytes:
    return json.dumps(listing(results, count)).encode("utf-8")


def test_json_broken_off_mid_body_is_asked_again_like_a_5xx(httpserver: HTTPServer) -> None:
    body = _page_body(PAPERS[:2], 2)
    httpserver.expect_ordered_request("/api/v1/papers/").respond_with_data(body[: len(body) // 2], content_type="application/json")
    httpserver.expect_ordered_request("/api/v1/papers/").respond_with_data(body, content_type="application/json")
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    assert [item.key for item in page.items] == ["api:1000", "api:1001"]
    assert len(httpserver.log) == 2


def test_json_that_never_parses_fails_the_source_saying_it_retried(httpserver: HTTPServer) -> None:
    body = _page_body(PAPERS[:2], 2)
    httpserver.expect_request("/api/v1/papers/").respond_with_data(body[:-7], content_type="application/json")
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceError) as caught:
        list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31)))
    assert not isinstance(caught.value, SourceUnavailable)
    assert "papers/ answered invalid JSON" in str(caught.value) and "after 4 attempts" in str(caught.value)
    assert len(httpserver.log) == 4


def test_json_labelled_text_plain_is_read_as_the_catalogs_own_client_does(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_data(_page_body(PAPERS[:2], 2), content_type="text/plain")
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    assert len(page.items) == 2


def test_text_that_is_not_json_under_another_label_makes_the_source_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/papers/").respond_with_data("Service parked", content_type="text/plain")
    with catalog(httpserver.url_for("/api/v1")) as client, pytest.raises(SourceUnavailable, match="not JSON"):
        list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31)))
    assert len(httpserver.log) == 1


def test_an_empty_page_in_the_middle_of_a_listing_is_asked_again(httpserver: HTTPServer) -> None:
    pages = {1: [PAPERS[:2]], 2: [[], PAPERS[2:4]], 3: [PAPERS[4:5]]}

    def handle(request: Request) -> Response:
        replies = pages[int(request.args["page"])]
        return Response(_page_body(replies.pop(0) if len(replies) > 1 else replies[0], 5), content_type="application/json")

    httpserver.expect_request("/api/v1/papers/").respond_with_handler(handle)
    with catalog(httpserver.url_for("/api/v1")) as client:
        pages_read = list(paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31), page_size=2))
    assert [item.key for page in pages_read for item in page.items] == [f"api:{1000 + index}" for index in range(5)]
    assert not any(page.incomplete for page in pages_read) and client.requests == 4


def test_a_page_that_stays_empty_mid_listing_ends_its_window_incomplete_with_a_reject(httpserver: HTTPServer) -> None:
    def handle(request: Request) -> Response:
        chunk = PAPERS[:2] if request.args["page"] == "1" else []
        return Response(_page_body(chunk, 6), content_type="application/json")

    httpserver.expect_request("/api/v1/papers/").respond_with_handler(handle)
    with catalog(httpserver.url_for("/api/v1")) as client:
        first, second = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31), page_size=2)
    assert len(first.items) == 2 and not first.incomplete
    assert second.incomplete and second.last
    (reject,) = second.items
    assert isinstance(reject, Rejected) and paperswithcode.is_gap(reject)
    assert "page 2 of the papers published 1980-01-01..1999-12-31 came back empty" in reject.reason
    assert "counts 6" in reject.reason and "after 4 attempts" in reject.reason and '"count": 6' in reject.raw_text
    assert client.requests == 1 + 4


def test_an_evaluations_page_that_stays_empty_mid_listing_yields_a_gap_reject(httpserver: HTTPServer) -> None:
    rows = json.loads((FIXTURES / "revived_evaluations_paper9_page1.json").read_text(encoding="utf-8"))["results"]

    def handle(request: Request) -> Response:
        chunk = rows if request.args["page"] == "1" else []
        return Response(json.dumps({"count": len(rows) + 150, "results": chunk}), content_type="application/json")

    httpserver.expect_request("/api/v1/evaluations/").respond_with_handler(handle)
    with catalog(httpserver.url_for("/api/v1")) as client:
        *kept, gap = paperswithcode.evaluation_records(client, "9")
    assert [type(item) for item in kept] == [RawRecord] * len(rows)
    assert paperswithcode.is_gap(gap) and gap.key == "api:9" and f"{len(rows)} came before" in gap.reason


@pytest.mark.parametrize(
    ("title", "kept_text"),
    [
        (b"Optimization by \xff\xfe Annealing", "Optimization by \udcff\udcfe Annealing"),
        # a `\ud800` escape parses to a code point DuckDB cannot store: unchecked, it fails the page's insert
        (b"Optimization by \\ud800 Annealing", "Optimization by \ud800 Annealing"),
    ],
    ids=["invalid UTF-8 bytes", "an escaped lone surrogate"],
)
def test_text_duckdb_cannot_store_rejects_that_record_and_keeps_the_rest(
    httpserver: HTTPServer, title: bytes, kept_text: str
) -> None:
    body = _page_body(PAPERS[:3], 3).replace(PAPERS[1]["title"].encode(), title, 1)
    httpserver.expect_request("/api/v1/papers/").respond_with_data(body, content_type="application/json")
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    good, bad, also_good = page.items
    assert isinstance(good, RawRecord) and isinstance(also_good, RawRecord)
    assert isinstance(bad, Rejected) and bad.key == "api:1001" and bad.reason == "invalid UTF-8 in the record"
    assert kept_text in bad.raw_text, "the raw text is kept, bad text and all"
    assert len(httpserver.log) == 1, "not a transient fault: asked once"


@pytest.mark.parametrize("published", ["1900-01-01", "2100-01-01"])
def test_a_paper_dated_outside_the_window_asked_for_is_rejected(httpserver: HTTPServer, published: str) -> None:
    papers = [PAPERS[0], {**PAPERS[1], "published": published}]
    httpserver.expect_request("/api/v1/papers/").respond_with_json(listing(papers, 2))
    with catalog(httpserver.url_for("/api/v1")) as client:
        (page,) = paperswithcode.paper_pages(client, date(1980, 1, 1), date(1999, 12, 31))
    kept, rejected = page.items
    assert isinstance(kept, RawRecord) and isinstance(rejected, Rejected) and rejected.key == "api:1001"
    assert rejected.reason == f"published {published} outside the window asked for (1980-01-01..1999-12-31)"


def test_the_request_budget_stops_the_client_before_it_sends_more(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/evaluations/").respond_with_json({"count": 0, "results": []})
    with catalog(httpserver.url_for("/api/v1"), max_requests=2) as client:
        for paper_id in ("1", "2"):
            list(paperswithcode.evaluation_records(client, paper_id))
        with pytest.raises(paperswithcode.BudgetExhausted, match="2 requests made, the budget is 2"):
            list(paperswithcode.evaluation_records(client, "3"))
    assert len(httpserver.log) == 2
