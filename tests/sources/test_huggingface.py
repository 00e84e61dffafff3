"""The Hub source over real HTTP: cursor paging, expand, rate limits, bursts, broken pages, hub-stats."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from itertools import islice
from pathlib import Path

import duckdb
import pytest
from huggingface_hub import HfApi
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sources import huggingface
from sources.huggingface import EXPAND, BudgetExhausted, HubListing, HubStatsUnavailable
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable

FIXTURES = Path(__file__).parents[1] / "fixtures" / "huggingface"
SLICE = json.loads((FIXTURES / "api_models_page_2026-09-28_from_slice.json").read_text(encoding="utf-8"))
LEGACY = json.loads((FIXTURES / "legacy_2022_api_models_full_config_records.json").read_text(encoding="utf-8"))
JSON = {"Content-Type": "application/json; charset=utf-8"}


class Sleeps(list):
    """Records the waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def lister(server: HTTPServer, sleeps: Sleeps, **options: object) -> HubListing:
    server.expect_request("/api/agent-harnesses").respond_with_data("not found", status=404)
    return HubListing(server.url_for("").rstrip("/"), backoff_seconds=0.5, sleep=sleeps, **options)


def page(records: list[dict], next_url: str | None = None) -> Response:
    headers = dict(JSON)
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return Response(json.dumps(records), headers=headers)


def serve_in_order(server: HTTPServer, *responses: Response) -> None:
    for response in responses:
        server.expect_ordered_request("/api/models").respond_with_response(response)


def keys(items: list[RawRecord | Rejected]) -> list[str | None]:
    return [item.key for item in items]


def test_pages_follow_the_absolute_link_header_until_a_page_has_none(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    second = httpserver.url_for("/api/models") + "?cursor=eyJwIjoxfQ&sort=createdAt&limit=1000"
    serve_in_order(httpserver, page(SLICE[:25], second), page(SLICE[25:]))

    pages = list(huggingface.walk(listing, listing.first_url(), stop_before=None))

    assert [page.done for page in pages] == [False, True]
    assert keys(pages[0].items + pages[1].items) == [model["id"] for model in SLICE]
    assert pages[0].next_url == second
    assert listing.requests == 2
    assert httpserver.log[-1][0].args["cursor"] == "eyJwIjoxfQ"


def test_the_listing_asks_exactly_what_list_models_asks(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    seen: list[list[tuple[str, str]]] = []

    def record(request: Request) -> Response:
        seen.append(sorted(request.args.items(multi=True)))
        return page(SLICE[:2])

    listing = lister(httpserver, sleeps)
    httpserver.expect_request("/api/models").respond_with_handler(record)
    list(islice(HfApi(endpoint=listing.endpoint, token=False).list_models(
        sort="created_at", expand=list(EXPAND), limit=huggingface.PAGE_SIZE), 1))
    listing.fetch_page(listing.first_url())

    assert seen[0] == seen[1]
    assert ("expand", "cardData") in seen[1] and ("expand", "safetensors") in seen[1]
    assert ("sort", "createdAt") in seen[1] and ("limit", "1000") in seen[1]


def test_expand_parameters_are_checked_by_the_server(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    expected = "sort=createdAt&limit=1000&" + "&".join(f"expand={name}" for name in EXPAND)
    httpserver.expect_request("/api/models", query_string=expected).respond_with_response(page(SLICE[:3]))

    result = listing.fetch_page(listing.first_url())

    assert keys(result.items) == [model["id"] for model in SLICE[:3]]


def test_a_429_waits_as_its_ratelimit_header_says_then_goes_on(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    limited = Response("rate limited", status=429, headers={
        "RateLimit": '"api";r=0;t=7', "RateLimit-Policy": '"fixed window";"api";q=500;w=300', "Retry-After": "99"})
    serve_in_order(httpserver, limited, page(SLICE[:5]))

    result = listing.fetch_page(listing.first_url())

    assert len(result.items) == 5
    assert sleeps == [7.0]
    assert listing.requests == 2


def test_a_429_without_ratelimit_header_waits_its_retry_after(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    serve_in_order(httpserver, Response("slow down", status=429, headers={"Retry-After": "3"}), page(SLICE[:1]))

    listing.fetch_page(listing.first_url())

    assert sleeps == [3.0]


def test_a_rate_limit_asking_more_than_a_window_stops_the_run(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    serve_in_order(httpserver, Response("", status=429, headers={"Retry-After": "3600"}))

    with pytest.raises(SourceError, match="rate limited for 3600s"):
        listing.fetch_page(listing.first_url())
    assert sleeps == []


def test_a_success_that_says_the_window_is_used_up_delays_the_next_request(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    last = page(SLICE[:1], httpserver.url_for("/api/models") + "?cursor=x")
    last.headers["RateLimit"] = '"api";r=0;t=4'
    serve_in_order(httpserver, last, page(SLICE[1:2]))

    list(huggingface.walk(listing, listing.first_url(), stop_before=None))

    assert len(sleeps) == 1 and 0 < sleeps[0] <= 4.0


def test_a_burst_of_5xx_is_retried_with_growing_backoff(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    serve_in_order(httpserver, Response("", status=502), Response("", status=503), Response("", status=500),
                   page(SLICE[:2]))

    result = listing.fetch_page(listing.first_url())

    assert len(result.items) == 2
    assert sleeps == [0.5, 1.0, 2.0]
    assert listing.requests == 4


def test_5xx_that_does_not_stop_fails_the_source_after_its_attempts(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps, attempts=3)
    httpserver.expect_request("/api/models").respond_with_data("down", status=503)

    with pytest.raises(SourceError, match="HTTP 503 after 3 attempts"):
        listing.fetch_page(listing.first_url())
    assert listing.requests == 3


def test_an_empty_last_page_ends_the_listing(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    serve_in_order(httpserver, page(SLICE[:3], httpserver.url_for("/api/models") + "?cursor=a"), page([]))

    pages = list(huggingface.walk(listing, listing.first_url(), stop_before=None))

    assert [len(p.items) for p in pages] == [3, 0]
    assert pages[-1].done


def test_an_empty_page_in_the_middle_does_not_end_the_listing(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    more = httpserver.url_for("/api/models")
    serve_in_order(httpserver, page(SLICE[:3], more + "?cursor=a"), page([], more + "?cursor=b"), page(SLICE[3:5]))

    pages = list(huggingface.walk(listing, listing.first_url(), stop_before=None))

    assert sum(len(p.items) for p in pages) == 5


def test_a_malformed_json_page_is_asked_again_then_rejected_and_the_listing_goes_on(
    httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    listing = lister(httpserver, sleeps)
    more = httpserver.url_for("/api/models")
    broken = '[{"id": "a/b", "createdAt": "2026-09-28T08:20:13.000Z"}, {"id": "c/d", "crea'
    serve_in_order(httpserver, page(SLICE[:2], more + "?cursor=a"),
                   Response(broken, headers={**JSON, "Link": f'<{more}?cursor=b>; rel="next"'}),
                   Response(broken, headers={**JSON, "Link": f'<{more}?cursor=b>; rel="next"'}),
                   page(SLICE[2:4]))

    items = [item for p in huggingface.walk(listing, listing.first_url(), stop_before=None) for item in p.items]

    assert keys(items) == [SLICE[0]["id"], SLICE[1]["id"], None, SLICE[2]["id"], SLICE[3]["id"]]
    rejected = items[2]
    assert isinstance(rejected, Rejected) and rejected.raw_text == broken and "malformed JSON page" in rejected.reason
    assert listing.requests == 4


def test_html_instead_of_json_means_the_api_moved(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    httpserver.expect_request("/api/models").respond_with_data("<html>moved</html>", content_type="text/html")

    with pytest.raises(SourceUnavailable, match="text/html"):
        listing.fetch_page(listing.first_url())


def test_records_missing_optional_fields_land_exactly_as_received(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    odd = [{"id": "bare/model"}, {"no": "id"}, "a string"]
    httpserver.expect_request("/api/models").respond_with_response(page(LEGACY + odd))

    items = listing.fetch_page(listing.first_url()).items

    records = [item for item in items if isinstance(item, RawRecord)]
    assert [record.key for record in records] == [model["modelId"] for model in LEGACY] + ["bare/model"]
    assert [json.loads(record.payload) for record in records] == LEGACY + [{"id": "bare/model"}]
    assert [item.reason for item in items if isinstance(item, Rejected)] == [
        "a listing item without an id", "a listing item that is a JSON str, not an object"]


def test_each_record_lands_as_its_own_text_from_the_page(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    """The real page's records, byte for byte as the body held them: pretty-printed as the fixture is,
    then compact with an escaped emoji (a surrogate pair) and a non-ASCII name, as the Hub may send them."""
    listing = lister(httpserver, sleeps)
    body = (FIXTURES / "api_models_page_2026-09-28_from_slice.json").read_text(encoding="utf-8")
    httpserver.expect_ordered_request("/api/models").respond_with_data(body, headers=JSON)
    compact = '[ {"id":"a/\\ud83d\\ude00-chat","likes":1} ,\n{"id":"b/caf\u00e9","tags":["x"]}]'
    httpserver.expect_ordered_request("/api/models").respond_with_data(compact, headers=JSON)

    first = listing.fetch_page(listing.first_url()).items
    second = listing.fetch_page(listing.first_url()).items

    assert [json.loads(record.payload) for record in first] == SLICE
    # The payloads tile the body: between two of them only the array's comma and whitespace.
    pattern = r"\s*\[\s*" + r"\s*,\s*".join(re.escape(record.payload) for record in first) + r"\s*\]\s*"
    assert re.fullmatch(pattern, body)
    assert [(record.key, record.payload) for record in second] == [
        ("a/\U0001F600-chat", '{"id":"a/\\ud83d\\ude00-chat","likes":1}'),
        ("b/caf\u00e9", '{"id":"b/caf\u00e9","tags":["x"]}'),
    ]


@pytest.mark.parametrize(
    "body", ['[{"id": "a/b"}] trailing', '[{"id": "a/b"} {"id": "c/d"}]', '[{"id": "a/b"},', '{"id": "a/b"'])
def test_a_page_that_is_not_one_whole_json_array_is_malformed(body: str) -> None:
    assert huggingface.parse_page(body.encode(), "http://hub.test/api/models") is None


def test_the_budget_stops_before_the_request_that_would_exceed_it(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps, max_requests=2)
    more = httpserver.url_for("/api/models")
    serve_in_order(httpserver, page(SLICE[:1], more + "?cursor=a"), page(SLICE[1:2], more + "?cursor=b"))

    walked = huggingface.walk(listing, listing.first_url(), stop_before=None)
    next(walked)
    second = next(walked)
    with pytest.raises(BudgetExhausted):
        next(walked)
    assert listing.requests == 2
    assert second.next_url == more + "?cursor=b"


def test_a_next_link_to_another_host_is_refused(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    httpserver.expect_request("/api/models").respond_with_response(page(SLICE[:1], "https://elsewhere.example/api/models?c=1"))

    with pytest.raises(SourceUnavailable, match="another site"):
        listing.fetch_page(listing.first_url())


def test_the_token_is_sent_and_never_appears_in_an_error(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps, token="hf_secret_token_value")
    httpserver.expect_request("/api/models", headers={"Authorization": "Bearer hf_secret_token_value"}).respond_with_data(
        '{"error": "Invalid credentials in Authorization header: Bearer hf_secret_token_value"}', status=401,
        headers={"Content-Type": "application/json", "X-Error-Message": "bad token hf_secret_token_value"})

    with pytest.raises(SourceError) as caught:
        listing.fetch_page(listing.first_url())
    assert "HTTP 401" in str(caught.value) and "HF_TOKEN" in str(caught.value)
    assert "hf_secret_token_value" not in str(caught.value) + caught.value.url


def test_a_walk_lands_its_creation_window_and_stops_below_it(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    listing = lister(httpserver, sleeps)
    more = httpserver.url_for("/api/models")
    serve_in_order(httpserver, page(SLICE[:20], more + "?cursor=a"), page(SLICE[20:], more + "?cursor=b"))
    since = datetime(2026, 9, 28, 8, 30, tzinfo=timezone.utc)
    until = datetime(2026, 9, 28, 9, 0, tzinfo=timezone.utc)

    pages = list(huggingface.walk(listing, listing.first_url(), stop_before=since, skip_from=until))

    landed = [json.loads(item.payload)["createdAt"] for p in pages for item in p.items]
    assert landed and all("2026-09-28T08:30" <= moment < "2026-09-28T09:00" for moment in landed)
    assert len(landed) == sum(1 for m in SLICE if "2026-09-28T08:30" <= m["createdAt"] < "2026-09-28T09:00")
    assert pages[-1].done and listing.requests == 2
    assert sum(p.skipped for p in pages) == sum(1 for m in SLICE if m["createdAt"] >= "2026-09-28T09:00")


HUB_STATS_LAYOUT = (FIXTURES / "hub_stats_layout.sql").read_text(encoding="utf-8")
CONSTRUCTED = json.loads((FIXTURES / "api_models_expanded_constructed.json").read_text(encoding="utf-8"))


def write_hub_stats(path: Path, source: Path, select: str = "*") -> bytes:
    """`source`'s listing records as a models.parquet in hub-stats' layout; `select` renames or retypes columns."""
    with duckdb.connect() as con:
        con.execute(f"create table hub_stats as {HUB_STATS_LAYOUT}", {"source": str(source)})
        con.execute(f"copy (select {select} from hub_stats) to '{path}' (format parquet)")
    return path.read_bytes()


def hub_stats_file(tmp_path: Path, select: str = "*") -> Path:
    """The slice (created 2026-09-28 08:20-09:21) and the three expanded records (20-22 September) as hub-stats."""
    source = tmp_path / "records.json"
    source.write_text(json.dumps(SLICE + CONSTRUCTED), encoding="utf-8")
    write_hub_stats(tmp_path / "models.parquet", source, select)
    return tmp_path / "models.parquet"


def serve_hub_stats(server: HTTPServer, body: bytes) -> None:
    """The file as the Hub's `resolve` endpoint serves it: commit and ETag headers, then the bytes."""
    headers = {"X-Repo-Commit": hashlib.sha1(body).hexdigest(), "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
               "Content-Length": str(len(body))}
    server.expect_request(f"/datasets/{huggingface.HUB_STATS_REPO}/resolve/main/{huggingface.HUB_STATS_FILE}") \
        .respond_with_data(body, headers=headers)


def test_a_hub_stats_row_with_an_absurd_id_is_rejected_as_the_listing_rejects_it(tmp_path: Path) -> None:
    path = hub_stats_file(tmp_path, "* replace (if(id = 'someone/qwen-merge-7b', repeat('x', 1000), id) as id)")

    items = list(huggingface.hub_stats_records(path, date(2026, 9, 20), date(2026, 9, 23)))

    rejected = [item for item in items if isinstance(item, Rejected)]
    assert [item.reason for item in rejected] == [
        f"{huggingface.HUB_STATS_FILE}: an id of 1,000 characters (a Hub repo id has at most {huggingface.MAX_ID_CHARS})"]
    assert len(items) == len(CONSTRUCTED) and "x" * 1000 in rejected[0].raw_text


@pytest.mark.parametrize("select", ["*", "* replace (createdAt::timestamp as createdAt)"])
def test_hub_stats_rows_land_as_the_listing_sends_them(tmp_path: Path, select: str) -> None:
    # hub-stats' timestamps were seen as timestamps; whether they carry the UTC zone was not: both read alike
    path = hub_stats_file(tmp_path, select)

    items = list(huggingface.hub_stats_records(path, date(2026, 9, 20), date(2026, 9, 23)))
    before = list(huggingface.hub_stats_records(path, date(2026, 9, 1), date(2026, 9, 20)))

    assert keys(items) == [record["id"] for record in CONSTRUCTED] and before == []
    landed = {item.key: json.loads(item.payload) for item in items}
    for record in CONSTRUCTED:
        expected = {key: value for key, value in record.items() if key not in ("_id", "evalResults", "safetensors")}
        row = landed[record["id"]]
        assert {key: value for key, value in row.items() if key not in ("baseModels", "safetensors")} == {
            "pipeline_tag": None, "lastModified": None, "author": record["id"].split("/")[0], **expected}
        assert (row["safetensors"] or {}).get("total") == (record.get("safetensors") or {}).get("total")
    assert landed["someone/qwen-merge-7b"]["baseModels"] == {
        "models": [{"_id": None, "id": "Qwen/Qwen2.5-7B-Instruct"}, {"_id": None, "id": "Qwen/Qwen2.5-Math-7B"}],
        "relation": "merge"}


def test_hub_stats_rows_stage_like_the_listing_records(tmp_path: Path, fresh_db: duckdb.DuckDBPyConnection) -> None:
    from warehouse.connection import open_work_db
    from warehouse.raw import land_page
    from warehouse.sql_files import read_sql

    def staged(con: duckdb.DuckDBPyConnection, items: list[RawRecord]) -> dict[str, dict]:
        land_page(con, "raw_huggingface__models", items, run_id="r1")
        cursor = con.execute(read_sql("staging", "stg_huggingface__models"))
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}

    listing = staged(fresh_db, [RawRecord(record["id"], json.dumps(record)) for record in CONSTRUCTED])
    with open_work_db(tmp_path / "other.duckdb") as other:
        stats = staged(other, list(huggingface.hub_stats_records(hub_stats_file(tmp_path), date(2026, 9, 20),
                                                                 date(2026, 9, 23))))

    assert set(stats) == set(listing)
    for repo, row in listing.items():
        differing = {name for name in row if row[name] != stats[repo][name]}
        # evalResults is not in hub-stats; the run's own times differ
        assert differing <= {"fetched_at", "first_seen_at", "has_eval_results"}, (repo, differing)
    assert (stats["Qwen/Qwen3.6-35B-A3B"]["has_model_index"], stats["someone/tiny-gguf"]["base_relation"]) == (
        True, "quantized")


@pytest.mark.parametrize(("select", "column"), [
    ("* rename (createdAt as created_at)", "createdAt"),
    ("* replace (likes::varchar as likes)", "likes"),
    ("* replace (to_json(tags)::varchar as tags)", "tags"),
])
def test_hub_stats_with_a_needed_column_renamed_or_retyped_is_unusable(tmp_path: Path, select: str, column: str) -> None:
    path = hub_stats_file(tmp_path, select)

    with pytest.raises(HubStatsUnavailable, match=f"schema no longer fits: {column} "):
        list(huggingface.hub_stats_records(path, date(2026, 9, 20), date(2026, 9, 23)))


def test_a_copy_older_than_the_window_is_unusable(tmp_path: Path) -> None:
    # built at 09:21 on 28 September: it cannot hold the rest of that day
    path = hub_stats_file(tmp_path)

    with pytest.raises(HubStatsUnavailable, match="older than the window"):
        list(huggingface.hub_stats_records(path, date(2026, 9, 28), date(2026, 9, 29)))


def test_hub_stats_missing_from_the_hub_is_unavailable(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/api/agent-harnesses").respond_with_data("", status=404)
    httpserver.expect_request(f"/datasets/{huggingface.HUB_STATS_REPO}/resolve/main/{huggingface.HUB_STATS_FILE}") \
        .respond_with_data("Repository not found", status=404, headers={"X-Error-Code": "RepoNotFound"})

    with pytest.raises(HubStatsUnavailable, match="hub-stats.*RepositoryNotFoundError"):
        huggingface.download_hub_stats(httpserver.url_for("").rstrip("/"), None, cache_dir=tmp_path)


def test_the_cached_copy_costs_one_request_and_outlives_the_dataset(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A current copy costs the HEAD only; once the dataset is gone the client hands back the copy it has."""
    built = tmp_path / "built"
    built.mkdir()
    body = hub_stats_file(built).read_bytes()
    httpserver.expect_request("/api/agent-harnesses").respond_with_data("", status=404)
    serve_hub_stats(httpserver, body)
    endpoint = httpserver.url_for("").rstrip("/")

    first = huggingface.download_hub_stats(endpoint, None, cache_dir=tmp_path / "cache")
    again = huggingface.download_hub_stats(endpoint, None, cache_dir=tmp_path / "cache")
    httpserver.clear()
    httpserver.expect_request(f"/datasets/{huggingface.HUB_STATS_REPO}/resolve/main/{huggingface.HUB_STATS_FILE}") \
        .respond_with_data("Repository not found", status=404, headers={"X-Error-Code": "RepoNotFound"})
    gone = huggingface.download_hub_stats(endpoint, None, cache_dir=tmp_path / "cache")

    assert (first.requests, again.requests, gone.requests) == (2, 1, 1)
    assert first.bytes == again.bytes == gone.bytes == len(body) and gone.path.read_bytes() == body
    assert len(list(huggingface.hub_stats_records(gone.path, date(2026, 9, 20), date(2026, 9, 23)))) == 3
    with pytest.raises(HubStatsUnavailable, match="older than the window"):
        list(huggingface.hub_stats_records(gone.path, date(2026, 9, 28), date(2026, 10, 1)))


def test_the_fixture_records_are_what_the_client_itself_parses() -> None:
    """The constructed, fully expanded records follow `ModelInfo`'s parsing of the current API's fields."""
    from huggingface_hub.hf_api import ModelInfo

    constructed = json.loads((FIXTURES / "api_models_expanded_constructed.json").read_text(encoding="utf-8"))
    infos = {record["id"]: ModelInfo(**dict(record)) for record in constructed + SLICE}

    qwen = infos["Qwen/Qwen3.6-35B-A3B"]
    assert qwen.safetensors.total == 35_100_000_000 and qwen.eval_results[0].dataset_id == "Idavidrein/gpqa"
    assert qwen.card_data.eval_results and qwen.created_at.year == 2026 and qwen.last_modified is not None
    assert infos["someone/qwen-merge-7b"].card_data.base_model == ["Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-Math-7B"]
    assert all(info.created_at is not None and info.tags is not None for info in infos.values())
