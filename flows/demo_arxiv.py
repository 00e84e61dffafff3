"""A local stand-in for arXiv's export API and RSS feed, answering from genuine Atom entries.

`census demo` registers it for `/arxiv/api/query` and `/arxiv/rss/`; the tests use it too, with
a corpus of copies of genuine entries (new ids and dates, the rest byte for byte), to see a
45,000-paper backfill split under the cap. It behaves as export.arxiv.org does where our client
depends on it: `cat:` and `submittedDate:[.. TO ..]` (inclusive to the minute) filters, results in
submission order, `start`/`max_results` paging with `opensearch:totalResults`, the first 10,000
results only (later pages fail with HTTP 500), `id_list` returning the current version and
silently leaving out unknown ids, and HTTP 400 with an error feed for a malformed id.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path
from xml.sax.saxutils import escape

from flows.replay_server import DEMO_SNAPSHOT, Reply, Request, Route

API_PATH = "/arxiv/api/query"
RSS_PATH = "/arxiv/rss/"
SEARCH_CAP = 10_000
ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
_ENTRY = re.compile(r"  <entry>\n.*?</entry>\n", re.S)
_ID = re.compile(r"<id>http://arxiv\.org/abs/(?P<id>.+?)v(?P<version>\d+)</id>")
_PUBLISHED = re.compile(r"<published>(?P<at>[^<]+)</published>")
_TERM = re.compile(r'<category term="(?P<term>[^"]+)"')
_CATEGORY = re.compile(r"\bcat:(?P<category>[\w.-]+)")
_DATES = re.compile(r"submittedDate:\[(?P<since>\d{12}) TO (?P<until>\d{12})\]")
_VALID_ID = re.compile(r"^(?:[a-z][a-z.-]*/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?$", re.I)
_FEED_HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/replay</id>
  <title>arXiv Query: {title}</title>
  <updated>{updated}</updated>
  <link href="https://arxiv.org/api/query?{link}" type="application/atom+xml"/>
  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
"""
_ERROR_FEED = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/</id>
  <title>arXiv Search Results</title>
  <updated>{updated}</updated>
  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:startIndex>0</opensearch:startIndex>
  <entry>
    <id>https://arxiv.org/api/errors#{slug}</id>
    <title>Error</title>
    <updated>{updated}</updated>
    <link href="https://arxiv.org/api/errors#{slug}" rel="alternate" type="text/html"/>
    <summary>{message}</summary>
    <author>
      <name>arXiv api core</name>
    </author>
  </entry>
</feed>
"""
_RSS_HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>{categories} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{categories}</link>
    <description>{categories} updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/{categories}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{built}</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{built}</pubDate>
    <skipDays>
      <day>Saturday</day>
      <day>Sunday</day>
    </skipDays>
"""
_RSS_ITEM = """    <item>
      <title>{title}</title>
      <link>https://arxiv.org/abs/{arxiv_id}</link>
      <description>arXiv:{arxiv_id}v{version} Announce Type: {announce_type} 
Abstract: {abstract}</description>
      <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v{version}</guid>
{categories}      <pubDate>{built}</pubDate>
      <arxiv:announce_type>{announce_type}</arxiv:announce_type>
      <dc:rights>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</dc:rights>
    </item>
"""


@dataclass(frozen=True)
class ReplayEntry:
    """One genuine `<entry>` element's text, with what the filters need read out of it."""

    arxiv_id: str
    version: int
    published: datetime
    categories: tuple[str, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> ReplayEntry:
        found = _ID.search(text)
        published = _PUBLISHED.search(text)
        if found is None or published is None:
            raise ValueError(f"not an arXiv paper entry: {text[:120]!r}")
        return cls(found["id"], int(found["version"]), _utc(published["at"]),
                   tuple(dict.fromkeys(match["term"] for match in _TERM.finditer(text))), text)

    def copy_as(self, arxiv_id: str, published: datetime, category: str) -> ReplayEntry:
        """The same entry under another id, submission time and primary category; every other byte kept."""
        stamp = published.strftime("%Y-%m-%dT%H:%M:%SZ")
        text = _ID.sub(f"<id>http://arxiv.org/abs/{arxiv_id}v1</id>", self.text, count=1)
        text = _PUBLISHED.sub(f"<published>{stamp}</published>", text, count=1)
        text = re.sub(r"<updated>[^<]+</updated>", f"<updated>{stamp}</updated>", text, count=1)
        text = re.sub(r'(href="https?://arxiv\.org/(?:abs|pdf)/)[^"]+', rf"\g<1>{arxiv_id}v1", text)
        text = re.sub(r'<arxiv:primary_category term="[^"]+"', f'<arxiv:primary_category term="{category}"', text)
        text = _TERM.sub(f'<category term="{category}"', text, count=1)
        categories = tuple(dict.fromkeys((category, *self.categories[1:])))
        return ReplayEntry(arxiv_id, 1, published.replace(microsecond=0), categories, text)

    def new_version(self, updated: datetime) -> ReplayEntry:
        """The next version of this paper: its id's `vN`, `<updated>` and links move on; the rest is kept."""
        version = self.version + 1
        stamp = updated.strftime("%Y-%m-%dT%H:%M:%SZ")
        text = _ID.sub(f"<id>http://arxiv.org/abs/{self.arxiv_id}v{version}</id>", self.text, count=1)
        text = re.sub(r"<updated>[^<]+</updated>", f"<updated>{stamp}</updated>", text, count=1)
        text = re.sub(r'(href="https?://arxiv\.org/(?:abs|pdf)/[^"]+?)v\d+"', rf'\g<1>v{version}"', text)
        return replace(self, version=version, text=text)


@dataclass(frozen=True)
class Logged:
    """One request: when it arrived and was answered (monotonic seconds), its query, and the total it matched."""

    arrival: float
    answered: float
    query: dict[str, str]
    status: int
    total: int | None = None


@dataclass
class ArxivReplay:
    """The corpus and the request log of a stand-in arXiv; `query` and `rss` are replay-server routes."""

    entries: list[ReplayEntry]
    announcements: list[tuple[str, str]] = field(default_factory=list)
    """(arxiv id, announce type) of the RSS day; the announced version is the corpus's current one."""
    cap: int = SEARCH_CAP
    log: list[Logged] = field(default_factory=list)
    """Every request answered, in order of arrival."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._reindex()

    @classmethod
    def from_feeds(cls, paths: list[Path]) -> ArxivReplay:
        """A corpus of every paper entry in the given genuine API answers (each id once)."""
        by_id: dict[str, ReplayEntry] = {}
        for path in paths:
            for match in _ENTRY.finditer(path.read_text(encoding="utf-8")):
                if "arxiv.org/api/errors" not in match.group(0):
                    entry = ReplayEntry.parse(match.group(0))
                    by_id.setdefault(entry.arxiv_id, entry)
        return cls(list(by_id.values()))

    def routes(self) -> dict[str, Route]:
        """The replay server's routes: the API query endpoint and the RSS feeds."""
        return {API_PATH: self.query, RSS_PATH: self.rss}

    def revise(self, arxiv_id: str, updated: datetime, announce_type: str = "replace") -> ReplayEntry:
        """Publish a new version of a paper and announce it in the RSS feed."""
        with self._lock:
            position = self._position[arxiv_id]
            self.entries[position] = self.entries[position].new_version(updated)
            self.announcements.append((arxiv_id, announce_type))
            self._reindex()
            return self.entries[position]

    def query(self, request: Request) -> Reply:
        arrival = time.monotonic()
        args = {key: values[-1] for key, values in request.query.items()}
        reply, total = self._answer(args)
        with self._lock:
            self.log.append(Logged(arrival, time.monotonic(), args, reply.status, total))
        return reply

    def rss(self, request: Request) -> Reply:
        arrival = time.monotonic()
        categories = request.path.rstrip("/").rsplit("/", 1)[-1]
        built = "Thu, 20 Aug 2026 00:00:00 -0400"
        items = []
        for arxiv_id, announce_type in self.announcements:
            entry = self.entries[self._position[arxiv_id]]
            items.append(_RSS_ITEM.format(
                # the Atom texts are already escaped XML, so they go in as they are
                title=_between(entry.text, "title"), arxiv_id=arxiv_id, version=entry.version,
                announce_type=announce_type, abstract=" ".join(_between(entry.text, "summary").split()),
                categories="".join(f"      <category>{escape(term)}</category>\n" for term in entry.categories),
                built=built,
            ))
        body = _RSS_HEAD.format(categories=escape(categories), built=built) + "".join(items) + "  </channel>\n</rss>\n"
        with self._lock:
            self.log.append(Logged(arrival, time.monotonic(), {"rss": categories}, HTTPStatus.OK))
        return Reply(HTTPStatus.OK, body.encode("utf-8"), {"Content-Type": RSS_TYPE})

    def _answer(self, args: dict[str, str]) -> tuple[Reply, int | None]:
        start = int(args.get("start", "0"))
        per_page = int(args.get("max_results", "10"))
        ids = [item for item in args.get("id_list", "").split(",") if item]
        bad = next((item for item in ids if not _VALID_ID.match(item)), None)
        if bad is not None:
            return self._error(f"incorrect id format for {bad}"), None
        if ids:
            wanted = [self._position.get(re.sub(r"v\d+$", "", item)) for item in ids]
            matched = [self.entries[position] for position in wanted if position is not None]
        else:
            matched = self._search(args.get("search_query", ""))
        if start >= self.cap and not ids:
            return Reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"", {"Content-Type": "text/plain"}), len(matched)
        page = matched[start : start + per_page]
        updated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        search, id_list = args.get("search_query", ""), args.get("id_list", "")
        head = _FEED_HEAD.format(
            title=escape(f"search_query={search}&id_list={id_list}&start={start}&max_results={per_page}"),
            link=escape(f"search_query={search}&start={start}&max_results={per_page}&id_list={id_list}"),
            updated=updated, per_page=per_page, total=len(matched), start=start,
        )
        body = head + "".join(entry.text for entry in page) + "</feed>\n"
        return Reply(HTTPStatus.OK, body.encode("utf-8"), {"Content-Type": ATOM_TYPE}), len(matched)

    def _search(self, search_query: str) -> list[ReplayEntry]:
        categories = {match["category"] for match in _CATEGORY.finditer(search_query)}
        dates = _DATES.search(search_query)
        first, last = 0, len(self._by_time)
        if dates:
            since = datetime.strptime(dates["since"], "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
            through = datetime.strptime(dates["until"], "%Y%m%d%H%M").replace(tzinfo=timezone.utc) + timedelta(minutes=1)
            first = bisect.bisect_left(self._times, since)
            last = bisect.bisect_left(self._times, through)
        return [entry for entry in self._by_time[first:last]
                if not categories or categories.intersection(entry.categories)]

    def _error(self, message: str) -> Reply:
        slug = re.sub(r"\W+", "_", message)
        updated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = _ERROR_FEED.format(updated=updated, slug=escape(slug), message=escape(message))
        return Reply(HTTPStatus.BAD_REQUEST, body.encode("utf-8"), {"Content-Type": ATOM_TYPE})

    def _reindex(self) -> None:
        self._position = {entry.arxiv_id: number for number, entry in enumerate(self.entries)}
        self._by_time = sorted(self.entries, key=lambda entry: (entry.published, entry.arxiv_id))
        self._times = [entry.published for entry in self._by_time]


def demo_replay(snapshot: Path = DEMO_SNAPSHOT) -> ArxivReplay:
    """The demo's arXiv: every genuine entry under `demo/snapshot/arxiv/`."""
    return ArxivReplay.from_feeds(sorted((snapshot / "arxiv").glob("*.xml")))


def _between(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return found.group(1) if found else ""


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc)
