"""arXiv's API and RSS answers, genuine ones, served over real HTTP to the source module."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from arxiv import SortCriterion, SortOrder

from sources import arxiv
from sources.records import RawRecord, Rejected, SourceError

ARXIV = Path(__file__).parents[1] / "fixtures" / "arxiv"
DELAY = 0.05
ATOM = "application/atom+xml; charset=utf-8"


def body(name: str) -> bytes:
    return (ARXIV / name).read_bytes()


def client_for(server: HTTPServer, **options: object) -> arxiv.ArxivClient:
    settings = {"delay_seconds": DELAY, "timeout": 5.0, "attempts": 3, "backoff_seconds": DELAY, **options}
    return arxiv.ArxivClient(server.url_for("/api/query"), server.url_for("/rss/"), **settings)


def id_query(id_list: str) -> dict[str, str]:
    """Every parameter of an `id_list` lookup, as the source sends it."""
    return {"search_query": "", "id_list": id_list, "sortBy": "relevance", "sortOrder": "descending",
            "start": "0", "max_results": str(len(id_list.split(",")))}


def without_entries(feed: bytes) -> bytes:
    """The genuine page with its entries cut out: what arXiv sometimes sends in the middle of a listing."""
    return feed[: feed.index(b"  <entry>")] + feed[feed.rindex(b"</entry>\n") + len(b"</entry>\n") :]


def payload(record: RawRecord | Rejected) -> dict:
    assert isinstance(record, RawRecord)
    return json.loads(record.payload)


def test_paging_through_start_reads_both_genuine_pages(httpserver: HTTPServer) -> None:
    for start in ("0", "10"):
        httpserver.expect_request(
            "/api/query", query_string={"search_query": "all:testing", "id_list": "", "sortBy": "relevance",
                                        "sortOrder": "descending", "start": start, "max_results": "10"},
        ).respond_with_data(body(f"api_query_search-testing_start{start}_max10.xml"), content_type=ATOM)
    with client_for(httpserver) as client:
        pages = [client.query(search_query="all:testing", start=start, max_results=10,
                              sort_by=SortCriterion.Relevance, sort_order=SortOrder.Descending)
                 for start in (0, 10)]
    assert [page.start for page in pages] == [0, 10]
    assert all(page.total == 214_881 for page in pages)
    keys = [item.key for page in pages for item in page.items]
    assert len(keys) == len(set(keys)) == 20
    assert keys[0] == "2202.12139" and keys[10] == "2403.16981"
    assert client.requests == 2


def test_entry_lands_as_received_with_every_element_and_untouched_text() -> None:
    page = arxiv.parse_feed(body("api_query_search-testing_start0_max10.xml"), "http://test/api/query")
    first = payload(page.items[0])
    assert first["id"] == ["http://arxiv.org/abs/2202.12139v1"]
    raw = body("api_query_search-testing_start0_max10.xml").decode()
    assert first["title"][0] in raw and first["summary"][0] in raw.replace("&amp;", "&")
    assert first["arxiv:primary_category"] == [{"@term": "cs.SE"}]
    assert {link["@title"] for link in first["link"] if "@title" in link} == {"pdf", "doi"}
    with_doi = [payload(item) for item in page.items if "arxiv:doi" in payload(item)]
    assert len(with_doi) == 6


def test_empty_result_is_an_empty_page_and_the_id_is_reported_missing(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query", query_string=id_query("0000.0000")).respond_with_data(
        body("api_query_idlist-0000.0000_empty-result.xml"), content_type=ATOM)
    with client_for(httpserver) as client:
        found = list(arxiv.id_pages(client, ["0000.0000"]))
    assert len(found) == 1
    assert found[0].page.total == 0 and found[0].page.items == []
    assert found[0].missing == ["0000.0000"]
    assert client.requests == 1, "an empty first page is an answer, not a failure to retry"


def test_http_400_error_feed_fails_with_arxivs_message_without_retrying(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        body("api_query_idlist-abc_HTTP400-error-feed.xml"), status=400, content_type=ATOM)
    with client_for(httpserver) as client, pytest.raises(SourceError, match="incorrect id format for abc") as error:
        list(arxiv.id_pages(client, ["abc"]))
    assert client.requests == 1
    assert error.value.url.endswith("/api/query")


def test_error_feed_is_never_parsed_as_a_paper() -> None:
    with pytest.raises(SourceError, match="incorrect id format for abc"):
        arxiv.parse_feed(body("api_query_idlist-abc_HTTP400-error-feed.xml"), "http://test/api/query")


def test_old_style_id_keeps_archive_prefix_and_every_affiliation() -> None:
    page = arxiv.parse_feed(body("api_query_idlist-astro-ph_0601001_old-style-id.xml"), "http://test/api/query")
    (record,) = page.items
    assert record.key == "astro-ph/0601001"
    assert payload(record)["summary"][0].startswith("  We derive")  # arXiv's own leading spaces kept
    authors = payload(record)["author"]
    assert [author["name"][0] for author in authors][:2] == ["Andrew Gould", "Susan Dorsher"]
    assert [author["arxiv:affiliation"][0] for author in authors] == [
        "Ohio State", "Ohio State", "CfA", "Warsaw University Observatory"]
    assert arxiv.split_id("http://arxiv.org/abs/quant-ph/0201082v1") == ("quant-ph/0201082", 1)
    assert arxiv.split_id("2104.12255v1") == ("2104.12255", 1)
    assert arxiv.split_id("1605.08386") == ("1605.08386", None)


def test_mis_encoded_author_name_lands_exactly_as_arxiv_sent_it() -> None:
    page = arxiv.parse_feed(body("api_query_idlist-1707.08567_mojibake-author.xml"), "http://test/api/query")
    names = [author["name"][0] for author in payload(page.items[0])["author"]]
    assert len(names) == 34
    assert "Dirk WÃ¼bben" in names  # raw keeps arXiv's double encoding; staging repairs it


def test_two_ids_one_missing_lands_the_one_and_names_the_other(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query", query_string=id_query("0808.05394,1707.08567")).respond_with_data(
        body("api_query_idlist-two-ids-one-missing.xml"), content_type=ATOM)
    with client_for(httpserver) as client:
        (found,) = arxiv.id_pages(client, ["0808.05394", "1707.08567"])
    assert [item.key for item in found.page.items] == ["1707.08567"]
    assert found.missing == ["0808.05394"]


def test_paper_titled_zero_is_a_paper() -> None:
    (record,) = arxiv.parse_feed(body("api_query_idlist-2104.12255v1.xml"), "http://test/api/query").items
    assert record.key == "2104.12255" and payload(record)["title"] == ["0"]


def test_503_then_empty_mid_listing_page_are_retried_no_faster_than_the_delay(httpserver: HTTPServer) -> None:
    arrivals: list[float] = []
    answers = [
        (503, b"busy"),
        (200, without_entries(body("api_query_search-testing_start10_max10.xml"))),  # empty, yet total says more
        (200, body("api_query_search-testing_start10_max10.xml")),
    ]

    def answer(request: Request) -> Response:
        arrivals.append(time.monotonic())
        status, content = answers[len(arrivals) - 1]
        return Response(content, status=status, content_type=ATOM)

    httpserver.expect_request("/api/query").respond_with_handler(answer)
    with client_for(httpserver) as client:
        page = client.query(search_query="all:testing", start=10, max_results=10)
    assert len(page.items) == 10 and client.requests == 3
    assert min(later - earlier for earlier, later in zip(arrivals, arrivals[1:])) >= DELAY


def test_persistent_503_fails_the_source_after_the_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query").respond_with_data(b"down", status=503)
    with client_for(httpserver, attempts=2) as client, pytest.raises(SourceError, match="HTTP 503.*after 2 attempts"):
        client.query(search_query="cat:cs.LG")
    assert client.requests == 2


def test_html_instead_of_atom_is_reported_as_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query").respond_with_data(b"<html><body>moved</body></html>", content_type="text/html")
    with client_for(httpserver) as client, pytest.raises(arxiv.SourceUnavailable, match="not an Atom feed"):
        client.query(search_query="cat:cs.LG")


def test_window_query_ends_a_minute_early_because_arxiv_includes_the_last_minute() -> None:
    from datetime import datetime, timezone

    query = arxiv.window_query(["cs.LG", "cs.CL"], datetime(2023, 1, 1, tzinfo=timezone.utc),
                               datetime(2023, 1, 2, tzinfo=timezone.utc))
    assert query == "(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202301010000 TO 202301012359]"


def test_rss_announcement_day_lists_ids_versions_and_types(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/rss/cs.LG+cs.CL").respond_with_data(
        body("rss_cs.LG_2026-08-20_announcement.xml"), content_type="application/rss+xml")
    with client_for(httpserver) as client:
        feed = client.announcements(["cs.LG", "cs.CL"])
    assert feed.published == "Thu, 20 Aug 2026 00:00:00 -0400"
    assert len(feed.items) == 237
    kinds = {kind: sum(item.announce_type == kind for item in feed.items)
             for kind in ("new", "cross", "replace", "replace-cross")}
    assert kinds == {"new": 81, "cross": 61, "replace": 57, "replace-cross": 38}
    assert feed.items[0] == arxiv.Announcement("2608.16913", 1, "new")
    replaced = [item for item in feed.items if item.announce_type == "replace"]
    assert all(item.version >= 2 for item in replaced)


def test_rss_empty_weekend_has_no_announcements(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/rss/cs.LG").respond_with_data(
        body("rss_cs.LG_2026-08-16_sunday_empty.xml"), content_type="application/rss+xml")
    with client_for(httpserver) as client:
        feed = client.announcements(["cs.LG"])
    assert feed.items == []
    assert feed.published == "Sun, 16 Aug 2026 00:00:00 -0400"


def test_connection_errors_are_retried_then_fail_the_source() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = arxiv.ArxivClient(f"http://127.0.0.1:{port}/api/query", delay_seconds=DELAY, attempts=2,
                               backoff_seconds=DELAY, timeout=2.0)
    with client, pytest.raises(SourceError, match="ConnectionError after 2 attempts"):
        client.query(search_query="cat:cs.LG")
    assert client.requests == 2


def test_redirect_to_another_site_is_refused_before_asking_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        b"", status=301, headers={"Location": "https://info.example.org/retired"})
    with client_for(httpserver) as client, pytest.raises(arxiv.SourceUnavailable, match="another site"):
        client.query(search_query="cat:cs.LG")
    assert client.requests == 1
