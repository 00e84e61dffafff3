"""arXiv: papers by submission-date window from the export API, new versions from the daily RSS.

Why pages are fetched here and not through `arxiv.Client.results`: the client hands back parsed
`arxiv.Result` objects, never the entry as received; on arXiv's error feed (HTTP 400 whose one
Atom entry states the problem) it raises `HTTPError(400)` without the body, after retrying the 400
three times, so arXiv's message is lost; it silently drops entries that lack `<published>`; and
its retries wait the fixed delay with no backoff and ignore `Retry-After`. So this module keeps
the package's request vocabulary (its `SortCriterion`/`SortOrder` values, the
`query_url_format` of `<endpoint>?<urlencoded args>`, and `start`/`max_results` paging) and
does the HTTP itself, one request at a time, at least `delay_seconds` after the previous answer.

Entries are parsed with the standard library's ElementTree rather than feedparser, which keeps
only the last `<arxiv:affiliation>` of an author. Each entry lands as a lossless JSON rendering of
its XML (see `element_json`): every child element, attribute and text exactly as received, so
nothing is repaired or dropped before the warehouse (mis-encoded author names included).

The API's date ranges filter on a paper's first version, so a window never shows a new version
of an older paper; the RSS announcements (`replace` entries) do, and `announcements` reads them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urljoin, urlsplit

import arxiv
import feedparser
import requests

from sources.polite_http import (
    MAX_REDIRECTS,
    RETRIABLE_STATUS,
    TIMEOUT_SECONDS,
    TRANSIENT_ERRORS,
    redact,
    retry_after_seconds,
    unreachable_reason,
)
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable, is_text

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_URL = "https://export.arxiv.org/api/query"
DEFAULT_RSS_URL = "https://rss.arxiv.org/rss/"
PRIMARY_KEY = "arXiv id without version"
"""A new version of a paper is a new raw version of the same key: the history stays in raw."""
CURSOR_FIELD = "submitted_through"

RESULT_CAP = 10_000
"""The search service serves only the first 10,000 results of a query; later pages fail with 500."""
PAGE_SIZE = 1_000
ID_BATCH = 100
"""Ids per `id_list` request: 100 ids keep the URL near 1.5 KB."""
WINDOW_FILL = 0.75
"""A window over the cap is split into parts expected to hold 75% of it, so skew rarely needs a second split."""
MAX_XML_BYTES = 50 << 20
MAX_TEXT_CHARS = 65_536
"""arXiv caps abstracts at 1,920 characters and titles far below; an element's text past this is a broken answer."""
EARLIEST_PUBLISHED = datetime(1991, 8, 1, tzinfo=timezone.utc)
"""arXiv opened in August 1991: an earlier `<published>` is a broken value."""
FUTURE_SLACK = timedelta(days=1)
BAD_BYTE_BASE = 0x10FF00
"""A byte that is not UTF-8 (0x80 to 0xFF) is parsed as U+10FF80..U+10FFFF: private-use code points XML
allows in text, so ElementTree reads the rest of the feed and only the entries holding one are rejected."""
_BAD_BYTE_MARK = re.compile("[\U0010ff80-\U0010ffff]")

ATOM = "http://www.w3.org/2005/Atom"
ARXIV_NS = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
PREFIXES = {ATOM: "", ARXIV_NS: "arxiv:", OPENSEARCH: "opensearch:"}
ERROR_ID_PREFIX = "arxiv.org/api/errors"

_ABS_ID = re.compile(r"arxiv\.org/abs/(?P<id>[a-z][a-z.-]*/\d{7}|\d{4}\.\d{4,5})(?:v(?P<version>\d+))?$", re.I)
_OAI_ID = re.compile(r"^oai:arXiv\.org:(?P<id>[a-z][a-z.-]*/\d{7}|\d{4}\.\d{4,5})v(?P<version>\d+)$", re.I)


@dataclass
class Page:
    """One API answer: the total the query matches, where this page starts, and its entries."""

    total: int
    start: int
    items: list[RawRecord | Rejected]

    @property
    def keys(self) -> set[str]:
        return {item.key for item in self.items if item.key}


@dataclass
class ListingPage:
    """A page of a date-window listing, with the window it belongs to."""

    since: datetime
    until: datetime
    page: Page
    last_of_window: bool
    last: bool
    truncated: bool = False


@dataclass
class IdPage:
    """A page of an `id_list` lookup; `missing` are ids arXiv silently left out of the answer."""

    page: Page
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Announcement:
    """One RSS item: a paper id, the version announced, and why (new, cross, replace, replace-cross)."""

    arxiv_id: str
    version: int
    announce_type: str


@dataclass
class Announcements:
    """One day's RSS feed: when it was built and what it announced (nothing on weekends)."""

    published: str | None
    items: list[Announcement]


class _TryAgain(Exception):
    """An answer that may come out right if asked again (unreadable, or empty in mid-listing)."""


class ArxivClient:
    """One polite connection to arXiv: requests one at a time, `delay_seconds` after the previous answer.

    The delay runs from the end of the previous answer, not its start, so the server never sees two
    requests closer than the delay; it applies to retries, to the RSS feed (arXiv's terms count API,
    OAI-PMH and RSS together) and to every page. Transient failures (429, 5xx, connection errors,
    unreadable XML, an empty page in the middle of a listing) are retried with exponential backoff
    that is never shorter than the delay and honours `Retry-After`.
    """

    def __init__(
        self,
        api_url: str = DEFAULT_URL,
        rss_url: str = DEFAULT_RSS_URL,
        *,
        delay_seconds: float = 3.0,
        timeout: float = TIMEOUT_SECONDS,
        attempts: int = 4,
        backoff_seconds: float = 3.0,
        session: requests.Session | None = None,
    ) -> None:
        self.query_url_format = api_url + "?{}"
        self.rss_url = rss_url
        self.delay_seconds = delay_seconds
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.requests = 0
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._last_answer: float | None = None
        self._connection_problem = ""
        self._retry_after = 0.0

    def __enter__(self) -> ArxivClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._owns_session:
            self._session.close()

    def query(
        self,
        *,
        search_query: str = "",
        id_list: Sequence[str] = (),
        start: int = 0,
        max_results: int = PAGE_SIZE,
        sort_by: arxiv.SortCriterion = arxiv.SortCriterion.SubmittedDate,
        sort_order: arxiv.SortOrder = arxiv.SortOrder.Ascending,
    ) -> Page:
        """One page of a query; an empty page where the total says there should be entries is retried."""
        args = {
            "search_query": search_query,
            "id_list": ",".join(id_list),
            "sortBy": sort_by.value,
            "sortOrder": sort_order.value,
            "start": str(start),
            "max_results": str(max_results),
        }
        url = self.query_url_format.format(urlencode(args))

        def read(response: requests.Response) -> Page:
            try:
                page = parse_feed(response.content, url)
            except ET.ParseError as exc:
                raise _TryAgain(f"unreadable Atom ({exc})") from None
            if not page.items and start < page.total:
                # arXiv sometimes answers a page in the middle of a listing with no entries; asking again helps.
                raise _TryAgain(f"empty page at start={start} of {page.total:,}")
            return page

        return self._fetch(url, read)

    def announcements(self, categories: Sequence[str]) -> Announcements:
        """The day's RSS announcements of the categories, in one request (`cs.LG+cs.CL+...`)."""
        url = self.rss_url.rstrip("/") + "/" + "+".join(categories)
        return self._fetch(url, lambda response: parse_rss(response.content, url))

    def _fetch(self, url: str, read: Callable[[requests.Response], T]) -> T:
        """`read` applied to the answer to `url`, after retrying what may pass; `SourceError` otherwise."""
        last_problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self._back_off(attempt - 1, last_problem, url)
            response = self._get(url)
            if response is None:
                last_problem = self._connection_problem
                continue
            if response.status_code in RETRIABLE_STATUS:
                last_problem = f"HTTP {response.status_code} {response.reason}"
                self._retry_after = retry_after_seconds(response, 0.0)
                continue
            if response.status_code == 400:
                # arXiv's error feed: one Atom entry whose summary says what was wrong with the query.
                raise SourceError(f"arXiv refused the query: {error_message(response.content)}", url=redact(url))
            if response.status_code != 200:
                raise SourceError(f"HTTP {response.status_code} {response.reason}", url=redact(url))
            try:
                return read(response)
            except _TryAgain as problem:
                last_problem = str(problem)
        raise SourceError(f"{last_problem} after {self.attempts} attempts", url=redact(url))

    def _get(self, url: str) -> requests.Response | None:
        """One paced GET, following redirects on the same host only; None on a connection error or timeout."""
        origin = urlsplit(url).netloc
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._paced_get(current)
            if response is None or not response.is_redirect:
                return response
            target = urljoin(response.url, response.headers.get("Location", ""))
            response.close()
            if urlsplit(target).netloc != origin:
                # What another site says is not arXiv's data: the service has moved or retired.
                raise SourceUnavailable(f"redirected to another site ({redact(target)})", url=redact(url))
            current = target
        raise SourceError(f"more than {MAX_REDIRECTS} redirects", url=redact(url))

    def _paced_get(self, url: str) -> requests.Response | None:
        """One GET at least `delay_seconds` after the previous answer; None on a connection error or timeout."""
        if self._last_answer is not None:
            wait = self.delay_seconds - (time.monotonic() - self._last_answer)
            if wait > 0:
                time.sleep(wait)
        self.requests += 1
        self._retry_after = 0.0
        try:
            response = self._session.get(url, timeout=self.timeout, allow_redirects=False)
        except TRANSIENT_ERRORS as exc:  # no answer, a late one, or one cut off mid-body
            if (unreachable := unreachable_reason(exc)) is not None:
                raise SourceError(unreachable, url=redact(url)) from exc
            self._connection_problem = f"{type(exc).__name__}"
            return None
        finally:
            self._last_answer = time.monotonic()
        return response

    def _back_off(self, retry: int, problem: str, url: str) -> None:
        delay = max(self.backoff_seconds * 2 ** (retry - 1), self._retry_after, self.delay_seconds)
        logger.warning("arxiv: %s from %s, retry %d/%d in %.1fs", problem, redact(url), retry, self.attempts - 1, delay)
        time.sleep(delay)
        # The backoff already exceeds the delay; the next request need not wait again.
        self._last_answer = None


def category_clause(categories: Sequence[str]) -> str:
    return "(" + " OR ".join(f"cat:{category}" for category in categories) + ")"


def window_query(categories: Sequence[str], since: datetime, until: datetime) -> str:
    """Papers first submitted in [since, until): arXiv's range is inclusive to the minute, so it ends a minute early."""
    last_minute = until - timedelta(minutes=1)
    return f"{category_clause(categories)} AND submittedDate:[{since:%Y%m%d%H%M} TO {last_minute:%Y%m%d%H%M}]"


def listing_pages(
    client: ArxivClient,
    categories: Sequence[str],
    since: datetime,
    until: datetime,
    *,
    page_size: int = PAGE_SIZE,
    cap: int = RESULT_CAP,
) -> Iterator[ListingPage]:
    """Every paper first submitted in [since, until), oldest window first, no query over `cap` results.

    A window's first page tells its total (`opensearch:totalResults`); over the cap, the window is
    split into equal parts expected to hold `WINDOW_FILL` of the cap each, and each part is asked
    again (a skewed part splits once more). A one-minute window cannot split: it is read to the cap
    and marked truncated. The split costs one discarded page per oversized window.
    """
    pending = [(_minute(since), _minute(until))]
    while pending:
        start, end = pending.pop(0)
        if end <= start:
            continue
        query = window_query(categories, start, end)
        page = client.query(search_query=query, start=0, max_results=page_size)
        minutes = int((end - start).total_seconds() // 60)
        if page.total > cap and minutes > 1:
            parts = min(minutes, math.ceil(page.total / (cap * WINDOW_FILL)))
            logger.info("arxiv: %s..%s matches %s, over the cap: split in %d", start, end, f"{page.total:,}", parts)
            pending[0:0] = _split(start, end, parts)
            continue
        reachable = min(page.total, cap)
        offset = len(page.items)
        while True:
            window_done = offset >= reachable or not page.items
            yield ListingPage(start, end, page, last_of_window=window_done, last=window_done and not pending,
                              truncated=page.total > cap)
            if window_done:
                break
            page = client.query(search_query=query, start=offset, max_results=min(page_size, reachable - offset))
            offset += len(page.items)


def id_pages(client: ArxivClient, ids: Sequence[str], *, batch: int = ID_BATCH) -> Iterator[IdPage]:
    """The current version of each id, `batch` ids a request; ids arXiv does not return are reported missing."""
    unique = list(dict.fromkeys(ids))
    for first in range(0, len(unique), batch):
        chunk = unique[first : first + batch]
        page = client.query(id_list=chunk, start=0, max_results=len(chunk),
                            sort_by=arxiv.SortCriterion.Relevance, sort_order=arxiv.SortOrder.Descending)
        returned = page.keys
        yield IdPage(page, [arxiv_id for arxiv_id in chunk if split_id(arxiv_id)[0] not in returned])


def parse_feed(body: bytes, url: str) -> Page:
    """An API answer as a page of records; an error feed raises `SourceError` with arXiv's message."""
    if len(body) > MAX_XML_BYTES:
        raise SourceError(f"answer of {len(body):,} bytes is larger than any arXiv page", url=redact(url))
    root = ET.fromstring(mark_invalid_utf8(body))
    if root.tag != f"{{{ATOM}}}feed":
        raise SourceUnavailable(f"answered {root.tag!r}, not an Atom feed", url=redact(url))
    entries = root.findall(f"{{{ATOM}}}entry")
    if any(ERROR_ID_PREFIX in (entry.findtext(f"{{{ATOM}}}id") or "") for entry in entries):
        raise SourceError(f"arXiv refused the query: {error_message(body)}", url=redact(url))
    return Page(
        total=_int(root.findtext(f"{{{OPENSEARCH}}}totalResults")),
        start=_int(root.findtext(f"{{{OPENSEARCH}}}startIndex")),
        items=[parse_entry(entry) for entry in entries],
    )


def parse_entry(entry: ET.Element) -> RawRecord | Rejected:
    """One `<entry>` as a record keyed by its id without version, or a rejection saying what is wrong with it.

    Rejected: no arXiv id in `<id>`, bytes that are not UTF-8 (see `mark_invalid_utf8`), an element's text
    longer than any arXiv field, a `<published>` before arXiv opened or after tomorrow.
    """
    entry_id = (entry.findtext(f"{{{ATOM}}}id") or "").strip()
    arxiv_id, _ = split_id(entry_id)
    if problem := entry_problem(entry):
        raw_text = _BAD_BYTE_MARK.sub("\ufffd", ET.tostring(entry, encoding="unicode"))
        return Rejected(arxiv_id, raw_text, problem)
    if arxiv_id is None:
        return Rejected(None, ET.tostring(entry, encoding="unicode"), f"no arXiv id in <id> {entry_id[:80]!r}")
    return RawRecord(arxiv_id, json.dumps(element_json(entry), ensure_ascii=False))


def entry_problem(entry: ET.Element) -> str | None:
    """Why an entry's values cannot be true, or None."""
    damaged = sorted({_name(element.tag) for element in entry.iter()
                      if _BAD_BYTE_MARK.search(element.text or "") or _BAD_BYTE_MARK.search(element.tail or "")
                      or any(_BAD_BYTE_MARK.search(value) for value in element.attrib.values())})
    if damaged:
        return f"invalid UTF-8: bytes that are not text in <{'>, <'.join(damaged)}>"
    longest = max(entry.iter(), key=lambda element: len(element.text or ""))
    if len(longest.text or "") > MAX_TEXT_CHARS:
        return f"a <{_name(longest.tag)}> of {len(longest.text):,} characters (limit {MAX_TEXT_CHARS:,})"
    published = (entry.findtext(f"{{{ATOM}}}published") or "").strip()
    try:
        moment = datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None
    except ValueError:
        moment = None  # unreadable: landed as received, staging reads it as no date
    latest = datetime.now(timezone.utc) + FUTURE_SLACK
    if moment is not None and moment.tzinfo is not None and not EARLIEST_PUBLISHED <= moment <= latest:
        return f"implausible <published> {published[:40]} (expected {EARLIEST_PUBLISHED:%Y-%m-%d} to {latest:%Y-%m-%d})"
    return None


def mark_invalid_utf8(body: bytes) -> bytes:
    """`body` with each byte that is not UTF-8 replaced by its mark (`BAD_BYTE_BASE`), or as it came.

    arXiv's feeds are UTF-8. A body that already holds a mark code point is left alone: its marks
    would be ambiguous, and expat refuses the bad bytes, so the page is asked again and then fails.
    """
    text = body.decode("utf-8", "surrogateescape")
    if is_text(text) or _BAD_BYTE_MARK.search(text):
        return body
    return re.sub("[\udc80-\udcff]", lambda match: chr(BAD_BYTE_BASE + ord(match[0]) - 0xDC00), text).encode("utf-8")


def element_json(element: ET.Element) -> dict[str, list[object]]:
    """An element's children as `{name: [value, ...]}`, lossless and independent of how often a child occurs.

    Names carry arXiv's prefixes (`title`, `arxiv:comment`); a value is the text, exactly as
    received, when the child has no attributes or children, else an object of `@attribute`s,
    `#text` and its own children rendered the same way.
    """
    rendered: dict[str, list[object]] = {}
    for child in element:
        rendered.setdefault(_name(child.tag), []).append(_value(child))
    return rendered


def error_message(body: bytes) -> str:
    """The summary of arXiv's error entry, or a note that the body did not say."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "HTTP 400 without a readable error feed"
    summary = root.findtext(f"{{{ATOM}}}entry/{{{ATOM}}}summary")
    return " ".join(summary.split()) if summary else "HTTP 400 without an error entry"


def parse_rss(body: bytes, url: str) -> Announcements:
    """The RSS items' ids, versions and announce types; a weekend feed has a channel and no items."""
    feed = feedparser.parse(body)
    if feed.bozo and not feed.entries and not feed.feed.get("title"):
        raise SourceUnavailable(f"not an RSS feed ({feed.get('bozo_exception')})", url=redact(url))
    items = []
    for entry in feed.entries:
        match = _OAI_ID.match(entry.get("id", ""))
        if match is None:
            logger.warning("arxiv: RSS item without an arXiv guid: %r", entry.get("id", "")[:80])
            continue
        items.append(Announcement(match["id"], int(match["version"]), entry.get("arxiv_announce_type", "")))
    return Announcements(feed.feed.get("published"), items)


def split_id(text: str) -> tuple[str | None, int | None]:
    """(id without version, version) of an abs URL or a bare id: new style `2104.12255v1`, old style `astro-ph/0601001`."""
    candidate = text if "arxiv.org/abs/" in text else f"arxiv.org/abs/{text}"
    match = _ABS_ID.search(candidate.strip())
    if match is None:
        return None, None
    return match["id"], int(match["version"]) if match["version"] else None


def _value(element: ET.Element) -> object:
    if not len(element) and not element.attrib:
        return element.text or ""
    value: dict[str, object] = {f"@{_name(key)}": item for key, item in element.attrib.items()}
    if element.text and element.text.strip():
        value["#text"] = element.text
    for name, children in element_json(element).items():
        value[name] = children
    return value


@cache
def _name(tag: str) -> str:
    if tag.startswith("{"):
        namespace, local = tag[1:].split("}", 1)
        return PREFIXES.get(namespace, f"{{{namespace}}}") + local
    return tag


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(second=0, microsecond=0)


def _split(start: datetime, end: datetime, parts: int) -> list[tuple[datetime, datetime]]:
    """`parts` consecutive windows of whole minutes covering [start, end)."""
    minutes = int((end - start).total_seconds() // 60)
    bounds = [start + timedelta(minutes=round(minutes * i / parts)) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
