"""The Hugging Face Hub: the model listing, page by page, newest first, and the `hub-stats` dataset.

Why not `HfApi.list_models`: it turns each record into a `ModelInfo` (re-serializing that would
not be what the Hub sent) and hides the `Link` URL of the next page, which is what a run must
save to resume after a kill or at its request budget. So this module sends the very GET
`list_models(sort="createdAt", expand=EXPAND, limit=PAGE_SIZE)` sends (`listing_url` builds the
same query; a test checks it against the client), through the client's own shared session
(`huggingface_hub.utils.get_session`) with its headers (`build_hf_headers`), and follows the
`Link: <absolute URL>; rel="next"` header itself. It does its own retries instead of
`http_backoff`'s, because every attempt must count against the run's budget, and a 429 must wait
as long as the `RateLimit`/`Retry-After` headers say (`parse_ratelimit_headers`).

Records are yielded exactly as the page held them (each JSON object of the array, as JSON text).
No DuckDB, no environment: the caller passes the endpoint, the token and the budget.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import duckdb
import httpx2
from huggingface_hub import HfApi, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import build_hf_headers, get_session, parse_ratelimit_headers

from sources.polite_http import TIMEOUT_SECONDS, redact, unreachable_reason
from sources.records import (
    SURROGATE_ESCAPE,
    RawRecord,
    Rejected,
    SourceError,
    SourceUnavailable,
    invalid_utf8,
    is_text,
    json_array_items,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://huggingface.co"
PRIMARY_KEY = "id"
CURSOR_FIELD = "createdAt"
LISTING_PATH = "/api/models"
PAGE_SIZE = 1_000
"""The Hub serves at most 1,000 models a page; fewer pages means fewer requests against the budget."""
EXPAND = (
    "author",
    "cardData",
    "createdAt",
    "downloads",
    "evalResults",
    "lastModified",
    "library_name",
    "likes",
    "pipeline_tag",
    "safetensors",
    "tags",
)
"""Exactly the fields staging reads. `cardData` carries `base_model` and `model-index`; `tags` carry
arxiv, lineage, license and dataset tags; `safetensors.total` the parameter count. `expand` cannot be
combined with `full`/`cardData=True`, and `baseModels` is not expandable on the listing."""

EARLIEST_CREATED = datetime(2016, 1, 1, tzinfo=timezone.utc)
"""Before Hugging Face existed (the Hub dates every repo older than March 2022 2022-03-02T23:29:04Z):
an earlier `createdAt` is a broken value, and landing it would end a walk at it, missing the pages below."""
FUTURE_SLACK = timedelta(days=1)
"""A `createdAt` past tomorrow is a broken value too: as the walk's newest time it would move the watermark
past every model still to come."""
MAX_ID_CHARS = 2 * 96 + 1
"""`owner/name`, each at most 96 characters (`huggingface_hub.utils.validate_repo_id`): a longer id is no repo."""

RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RETRIABLE_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
MAX_WAIT_SECONDS = 330.0
"""The Hub's rate-limit window is 5 minutes; a server asking for longer is told no and the run stops."""

HUB_STATS_REPO = "cfahlgren1/hub-stats"
HUB_STATS_FILE = "models.parquet"
HUB_STATS_REQUIRED = {"id": "VARCHAR", "createdAt": "TIMESTAMP", "likes": "INT", "downloads": "INT", "tags": "[]"}
"""Columns a window cannot be read without, and a fragment their DuckDB type must contain (the dataset's
layout, with its sources, is in tests/fixtures/huggingface/README.md): a renamed or retyped one makes
the file unusable rather than landing rows staging would misread."""
HUB_STATS_OPTIONAL = ("author", "lastModified", "pipeline_tag", "library_name", "cardData", "safetensors",
                      "evalResults", "baseModels")
"""Landed when present, under the API's names. `baseModels` (`{models: [{_id, id}], relation}`) is not on
the listing; staging reads it beside the `base_model:` tags. `evalResults` was not seen in the dataset."""
HUB_STATS_TIMES = ("createdAt", "lastModified")
"""Parquet timestamps, written as the listing writes them (`2026-09-28T09:21:02.000Z`, UTC), so a
hub-stats row and a listing record of one model read alike."""
HUB_STATS_NESTED = ("cardData", "safetensors", "evalResults", "baseModels")
"""JSON objects on the listing. hub-stats keeps `safetensors` and `baseModels` as structs and, as far as
its readers show, `cardData` as JSON text; text is parsed (NULL when it is not JSON), a struct kept, so
staging finds objects either way."""
API_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"
HUB_STATS_SCHEMA_SQL = "select column_name, column_type from (describe select * from read_parquet($path))"
HUB_STATS_NEWEST_SQL = "select max(createdAt) from read_parquet($path)"
HUB_STATS_WINDOW_SQL = """
select id, to_json(row_data)::varchar
from (select {columns} from read_parquet($path) where createdAt >= $since and createdAt < $until) as row_data
"""
"""`{columns}` is built from the file's own column names (`hub_stats_column`), never from input."""
HUB_STATS_BATCH = 1_000


class BudgetExhausted(Exception):
    """The run has made all the requests it may; the caller's saved cursor says where to go on."""


class CursorRejected(SourceError):
    """The Hub refused a saved next-page URL (its cursor expired or changed format): list from the top again."""


class HubStatsUnavailable(Exception):
    """`hub-stats` is missing, refused, or no longer has the columns a window needs."""


@dataclass
class Page:
    """One listing page: what to land, where the listing goes on, and the creation times it spanned."""

    url: str
    items: list[RawRecord | Rejected]
    created: list[datetime | None]
    next_url: str | None

    @property
    def newest_created_at(self) -> datetime | None:
        return max((moment for moment in self.created if moment is not None), default=None)

    @property
    def oldest_created_at(self) -> datetime | None:
        return min((moment for moment in self.created if moment is not None), default=None)


@dataclass
class WalkPage:
    """A page of a walk down the listing, filtered to the walk's creation-time range."""

    items: list[RawRecord | Rejected]
    next_url: str | None
    done: bool
    newest_created_at: datetime | None
    oldest_created_at: datetime | None
    skipped: int = 0


def listing_url(endpoint: str, page_size: int = PAGE_SIZE) -> str:
    """The first page's URL: `list_models(sort="createdAt", expand=EXPAND, limit=page_size)`'s query."""
    query = urlencode([("sort", "createdAt"), ("limit", page_size)] + [("expand", name) for name in EXPAND])
    return f"{endpoint.rstrip('/')}{LISTING_PATH}?{query}"


def parse_created_at(value: object) -> datetime | None:
    """`createdAt` as an aware datetime (the Hub sends `2026-09-28T08:20:13.000Z`), None when unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_page(body: bytes, url: str) -> tuple[list[RawRecord | Rejected], list[datetime | None]] | None:
    """The records of a page body and, aligned with them, their creation times; None when not JSON.

    Each record keeps its own text from the body (`json_array_items`). Bytes that are not UTF-8 spoil
    only the records holding them: the body is decoded with errors='surrogateescape', so the JSON
    still parses and `listing_item` rejects just those records. Only a page holding such a byte or a
    surrogate escape has its records checked one by one; the rest (nearly all) are checked once, whole.
    """
    text = body.decode("utf-8-sig", "surrogateescape")
    try:
        items = json_array_items(text)
    except ValueError:
        try:
            value = json.loads(text)
        except ValueError:
            return None
        raise SourceUnavailable(
            f"the model listing answered a JSON {type(value).__name__}, not an array: the API changed shape",
            url=redact(url),
        ) from None
    suspect = not is_text(text) or ("\\u" in text and SURROGATE_ESCAPE.search(text) is not None)
    latest = datetime.now(timezone.utc) + FUTURE_SLACK
    records: list[RawRecord | Rejected] = []
    created: list[datetime | None] = []
    for item, item_text in items:
        record, moment = listing_item(item, item_text, latest, check_text=suspect)
        records.append(record)
        created.append(moment)
    return records, created


def listing_item(
    item: object, text: str, latest: datetime, *, check_text: bool = True
) -> tuple[RawRecord | Rejected, datetime | None]:
    """One listing item (parsed, and its text) as a record and its creation time, or a reject (with no
    time: it must not steer a walk). `check_text` False: the caller knows the text holds nothing that is not text."""
    if not isinstance(item, dict):
        return Rejected(None, text, f"a listing item that is a JSON {type(item).__name__}, not an object"), None
    key = item.get("id") or item.get("modelId")
    if not isinstance(key, str) or not key.strip():
        return Rejected(None, text, "a listing item without an id"), None
    # The parsed item, not its text, shows a lone surrogate that came as an escape (`\\ud800`).
    if check_text and (damaged := invalid_utf8(json.dumps(item, ensure_ascii=False))):
        return Rejected(key[:MAX_ID_CHARS], text,
                        f"invalid UTF-8: {damaged} code point(s) that are not text"), None
    if len(key) > MAX_ID_CHARS:
        return Rejected(None, text, f"an id of {len(key):,} characters (a Hub repo id has at most {MAX_ID_CHARS})"), None
    moment = parse_created_at(item.get(CURSOR_FIELD))
    if moment is not None and not EARLIEST_CREATED <= moment <= latest:
        return Rejected(key, text, f"implausible {CURSOR_FIELD} {str(item[CURSOR_FIELD])[:40]} "
                                   f"(expected {EARLIEST_CREATED:%Y-%m-%d} to {latest:%Y-%m-%d})"), None
    return RawRecord(key, text), moment


@dataclass
class HubListing:
    """GETs listing pages through the Hub client's session, within a request budget, politely."""

    endpoint: str
    token: str | None = None
    max_requests: int = 400
    timeout: float = TIMEOUT_SECONDS
    attempts: int = 5
    backoff_seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0
    waited_seconds: float = 0.0
    _not_before: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        # token=False: never send a token saved on the machine, only the one the settings hold.
        self._headers = build_hf_headers(token=self.token or False, library_name="model-census")
        self._origin = urlsplit(self.endpoint).netloc

    def first_url(self) -> str:
        return listing_url(self.endpoint)

    def owns(self, url: str) -> bool:
        """Whether a saved next-page URL belongs to this endpoint (it may have changed since)."""
        return urlsplit(url).netloc == self._origin

    def fetch_page(self, url: str) -> Page:
        """One page: its records, the next page's URL, and the span of creation times it held.

        A body that is not JSON is asked for once more (a proxy may have cut it short); if it is
        still broken and says it is JSON, the page becomes one rejected record and the listing goes
        on from its `Link` header. The models on it come back with the next popularity refresh.
        """
        for attempt in (1, 2):
            response = self._get(url)
            next_url = self._next_url(response, url)
            parsed = parse_page(response.content, url)
            if parsed is not None:
                items, created = parsed
                return Page(url, items, created, next_url)
            content_type = response.headers.get("content-type", "")
            if "json" not in content_type:
                raise SourceUnavailable(
                    f"the model listing answered {content_type or 'no content type'}, not JSON: the API moved or changed",
                    url=redact(url),
                )
            if attempt == 1:
                logger.warning("malformed JSON page from %s; asking once more", redact(url))
        text = response.content.decode("utf-8", "replace")
        reject = Rejected(None, text, f"malformed JSON page ({len(response.content):,} bytes) at {redact(url)}")
        return Page(url, [reject], [None], next_url)

    def _next_url(self, response: httpx2.Response, url: str) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = urljoin(url, link)
        if not self.owns(target):
            # The next page on another host would get our token: refuse, as for a redirect.
            raise SourceUnavailable(f"the next page link points to another site ({redact(target)})", url=redact(url))
        return target

    def _get(self, url: str) -> httpx2.Response:
        """A 2xx response, after retrying 429/5xx/transport errors; every attempt counts against the budget."""
        problem = "no attempt made"
        current = url
        for attempt in range(1, self.attempts + 1):
            self._wait_for_window()
            if self.requests >= self.max_requests:
                raise BudgetExhausted(f"{self.requests} requests made, the budget is {self.max_requests}")
            self.requests += 1
            try:
                response = get_session().get(current, headers=self._headers, timeout=self.timeout, follow_redirects=False)
            except OfflineModeIsEnabled as exc:
                raise SourceError("HF_HUB_OFFLINE is set: the Hub may not be asked", url=redact(url)) from exc
            except RETRIABLE_ERRORS as exc:
                if (unreachable := unreachable_reason(exc)) is not None:
                    raise SourceError(unreachable, url=redact(url)) from exc
                problem = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                if attempt < self.attempts:
                    self._pause(self._backoff(attempt), problem, attempt, url)
                continue
            if response.is_redirect:
                current = self._same_host_redirect(response, current)
                continue
            if response.is_success:
                self._note_window(response)
                return response
            if response.status_code in RETRIABLE_STATUS:
                problem = f"HTTP {response.status_code}"
                wait = header_wait_seconds(response.headers)
                if wait is not None and wait > MAX_WAIT_SECONDS:
                    raise SourceError(f"rate limited for {wait:.0f}s (more than {MAX_WAIT_SECONDS:.0f}s); "
                                      "the next run continues from here", url=redact(url))
                if attempt < self.attempts:
                    self._pause(wait if wait is not None else self._backoff(attempt), problem, attempt, url)
                continue
            if response.status_code in (400, 410, 422) and "cursor=" in current:
                raise CursorRejected(f"HTTP {response.status_code} for a saved listing cursor", url=redact(url))
            if response.status_code in (404, 410):
                raise SourceUnavailable(f"HTTP {response.status_code} on the model listing: the API moved or retired",
                                        url=redact(url))
            raise SourceError(_fatal_message(response, url, self.token), url=redact(url))
        raise SourceError(f"{problem} after {self.attempts} attempts", url=redact(url))

    def _same_host_redirect(self, response: httpx2.Response, current: str) -> str:
        target = urljoin(current, response.headers.get("location", ""))
        if not self.owns(target):
            raise SourceUnavailable(f"redirected to another site ({redact(target)}): the API moved", url=redact(current))
        return target

    def _pause(self, seconds: float, problem: str, attempt: int, url: str) -> None:
        logger.warning("%s from %s, retry %d/%d in %.1fs", problem, redact(url), attempt, self.attempts - 1, seconds)
        self.waited_seconds += seconds
        self.sleep(seconds)

    def _note_window(self, response: httpx2.Response) -> None:
        """A success that says the window is used up (`RateLimit: "api";r=0;t=N`) delays the next request."""
        info = parse_ratelimit_headers(response.headers)
        if info is not None and info.remaining == 0:
            self._not_before = time.monotonic() + min(info.reset_in_seconds, MAX_WAIT_SECONDS)

    def _wait_for_window(self) -> None:
        remaining = self._not_before - time.monotonic()
        if remaining > 0:
            logger.info("rate-limit window used up; waiting %.1fs as the Hub asked", remaining)
            self.waited_seconds += remaining
            self.sleep(remaining)
        self._not_before = 0.0

    def _backoff(self, attempt: int) -> float:
        return self.backoff_seconds * 2 ** (attempt - 1)


def header_wait_seconds(headers: httpx2.Headers) -> float | None:
    """Seconds a 429/503 asks us to wait: `RateLimit` reset when nothing remains, else `Retry-After`."""
    info = parse_ratelimit_headers(headers)
    if info is not None and info.remaining == 0:
        return float(info.reset_in_seconds)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _fatal_message(response: httpx2.Response, url: str, token: str | None) -> str:
    """Status, path and the Hub's own reason (via `hf_raise_for_status`), never the token.

    A server may echo the `Authorization` header back in its message; the token is cut out of it.
    """
    from huggingface_hub.utils import hf_raise_for_status

    reason = response.reason_phrase
    try:
        hf_raise_for_status(response)
    except HfHubHTTPError as exc:
        reason = (exc.server_message or reason).splitlines()[0][:300] if (exc.server_message or reason) else ""
    if token:
        reason = reason.replace(token, "***")
    hint = " (is HF_TOKEN valid?)" if response.status_code in (401, 403) else ""
    return f"HTTP {response.status_code} {reason}{hint} from {redact(url)}"


def walk(
    listing: HubListing,
    start_url: str,
    *,
    stop_before: datetime | None,
    skip_from: datetime | None = None,
) -> Iterator[WalkPage]:
    """Pages down the newest-first listing from `start_url` until a model created before `stop_before`.

    Yields each page's records created in [stop_before, skip_from) (records without a creation time
    are kept: they are models all the same), rejects always, and the next page's URL so the caller
    can commit it with the page. Models newer than `skip_from` are paged past, not landed: that is
    what an API backfill of an old window costs.
    """
    url: str | None = start_url
    while url is not None:
        page = listing.fetch_page(url)
        kept: list[RawRecord | Rejected] = []
        skipped = 0
        reached_stop = False
        for item, created in zip(page.items, page.created):
            if isinstance(item, Rejected):
                kept.append(item)
                continue
            if created is not None and stop_before is not None and created < stop_before:
                reached_stop = True
                continue
            if created is not None and skip_from is not None and created >= skip_from:
                skipped += 1
                continue
            kept.append(item)
        done = reached_stop or page.next_url is None
        yield WalkPage(kept, None if done else page.next_url, done, page.newest_created_at, page.oldest_created_at,
                       skipped)
        url = None if done else page.next_url


# --- hub-stats ------------------------------------------------------------------------------------------------


@dataclass
class HubStatsFile:
    path: Path
    bytes: int
    requests: int
    """One HEAD when the cached copy is current, a HEAD and a GET when the file had to be downloaded."""


def download_hub_stats(endpoint: str, token: str | None, cache_dir: Path | None = None) -> HubStatsFile:
    """`models.parquet` of `cfahlgren1/hub-stats` through `huggingface_hub`, from `endpoint`.

    The client's cache keeps it between runs: backfilling month after month downloads it once a
    day (the dataset is rebuilt daily), not once per month. Any failure to get it (gone, gated,
    renamed, unreachable) is `HubStatsUnavailable`, for `auto` to fall back to the listing. When the
    Hub answers with an error but a copy is cached, the client returns that copy: `hub_stats_records`
    refuses it if it is too old for the window.
    """
    cached = try_to_load_from_cache(HUB_STATS_REPO, HUB_STATS_FILE, cache_dir=cache_dir, repo_type="dataset")
    before = os.path.realpath(cached) if isinstance(cached, str) else None
    api = HfApi(endpoint=endpoint, token=token or False)
    try:
        path = Path(api.hf_hub_download(HUB_STATS_REPO, HUB_STATS_FILE, repo_type="dataset", cache_dir=cache_dir))
    except Exception as exc:  # the client raises httpx, OS and its own errors; each means "not usable now"
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise HubStatsUnavailable(f"{HUB_STATS_REPO}/{HUB_STATS_FILE}: {type(exc).__name__}: {first}") from exc
    return HubStatsFile(path, path.stat().st_size, 1 if before == os.path.realpath(path) else 2)


def hub_stats_column(name: str, kind: str) -> str:
    """The select expression landing column `name` (DuckDB type `kind`) as the listing's field of that name."""
    quoted = '"' + name.replace('"', '""') + '"'
    if name in HUB_STATS_TIMES and "TIMESTAMP" in kind:
        return f"strftime({quoted}, '{API_TIME_FORMAT}') as {quoted}"
    if name in HUB_STATS_NESTED and kind in ("VARCHAR", "JSON"):
        return f"try_cast({quoted} as json) as {quoted}"
    return quoted


def hub_stats_records(path: Path, since: date, until: date) -> Iterator[RawRecord | Rejected]:
    """Rows of the parquet created in [since, until), each as the JSON object the listing would send.

    Two checks come first, each raising `HubStatsUnavailable`: the columns a window needs are there
    with the kinds of data they had (not renamed, not retyped), and the file was built after the
    window ended (its newest `createdAt` reaches `until`), which a stale cached copy is not.
    """
    con = duckdb.connect()
    try:
        con.execute("set memory_limit = '256MB'")
        con.execute("set TimeZone = 'UTC'")
        schema = dict(con.execute(HUB_STATS_SCHEMA_SQL, {"path": str(path)}).fetchall())
        problems = [f"{name} ({schema.get(name, 'missing')})" for name, kind in HUB_STATS_REQUIRED.items()
                    if kind not in schema.get(name, "missing").upper()]
        if problems:
            raise HubStatsUnavailable(f"{HUB_STATS_FILE} schema no longer fits: " + ", ".join(problems))
        end = datetime.combine(until, datetime.min.time(), tzinfo=timezone.utc)
        newest = con.execute(HUB_STATS_NEWEST_SQL, {"path": str(path)}).fetchone()[0]
        if newest is None or (newest if newest.tzinfo else newest.replace(tzinfo=timezone.utc)) < end:
            raise HubStatsUnavailable(f"{HUB_STATS_FILE} holds models created up to {newest}, not up to the "
                                      f"window's end {until}: the copy is older than the window")
        columns = list(HUB_STATS_REQUIRED) + [name for name in HUB_STATS_OPTIONAL if name in schema]
        cursor = con.execute(
            HUB_STATS_WINDOW_SQL.format(columns=", ".join(hub_stats_column(name, schema[name]) for name in columns)),
            {"path": str(path), "since": datetime.combine(since, datetime.min.time()),
             "until": datetime.combine(until, datetime.min.time())},
        )
        while rows := cursor.fetchmany(HUB_STATS_BATCH):
            for key, payload in rows:
                if not key:
                    yield Rejected(None, payload, f"{HUB_STATS_FILE}: a row without an id")
                elif len(key) > MAX_ID_CHARS:  # the listing's check; dates are the window's and text is DuckDB's
                    yield Rejected(None, payload, f"{HUB_STATS_FILE}: an id of {len(key):,} characters "
                                                  f"(a Hub repo id has at most {MAX_ID_CHARS})")
                else:
                    yield RawRecord(key, payload)
    finally:
        con.close()
