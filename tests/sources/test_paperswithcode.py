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
