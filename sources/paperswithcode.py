"""Papers With Code: the revived catalog's read-only API, and the old site's archive on the Hub.

The contract is the one its reference client, huggingface/pwc-cli, relies on (`transport.py`,
`cli.py`, `queries.py`):

- `GET papers/` with `page` and `page_size` (each 1..100: "--page must be 1-100"), `start_date` and
  `end_date` (inclusive publication dates), `order_by` (`trending`, `date_published`,
  `citation_count`), `order_dir`, `latest_only` and `include_resources`; booleans are sent as
  `true`/`false`. It answers `{count, results, applied_filters}`, and `paper_list` refuses a page
  whose `applied_filters` does not echo each filter sent ("Papers API did not confirm the requested
  catalog filters; the server must be upgraded"). We refuse it the same way.
- `GET papers/{arxiv id or numeric id}?include_resources=true`: one paper with `repositories`
  (`{url, is_official}` objects), `project_pages`, and `hf_models`, `hf_datasets`, `hf_spaces` (URLs).
- `GET evaluations/?paper_id=<id>&page=..&page_size=100&ordering=-benchmark_popularity`: benchmark
  rows (`model_name`, `task_name`, `dataset_name`, `metrics`, `best_rank`, `is_open`, `result_url` or
  `source_url`...), paged until `count` rows are read or a page comes back empty (`_paper_evaluations`).
- Errors are FastAPI's `{"detail": ...}` bodies (`HTTPStatusError(status, detail)` in the client).

The catalog calls itself a beta, not a bulk export: one request at a time, spaced to stay under a
per-minute rate and, if the caller sets one, a per-run budget; retried on 429/5xx and bodies broken
off by `polite_http`, and on JSON that does not parse or an empty page mid-listing here. Anything
that says the service is gone or changed (HTML, a redirect away, 404/410 on a listing, a listing
without its fields) raises `SourceUnavailable`, so nothing wrong is landed.

The archive (`pwc-archive/*` datasets, the last dump of paperswithcode.com, July 2025) is found
through the Hub API (each dataset's commit and parquet files), downloaded with `huggingface_hub`,
and read with DuckDB purely as a parquet reader: this environment has no pyarrow, and the module
still knows nothing of the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import requests

from sources import polite_http
from sources.hub_datasets import DatasetRevision, dataset_revision, download_files
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable, is_text

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://paperswithcode.co/api/v1"
PRIMARY_KEY = "api:<catalog id>"
CURSOR_FIELD = "published"
"""Papers are listed by publication date; the cursor is the last date fully scanned."""

API_PREFIX = "api:"
ARCHIVE_PREFIX = "archive:"
PAGE_SIZE = 100
MAX_PAGES = 100
"""The API serves pages 1..100 of a listing (pwc-cli's `_page`), so a window holds at most 10,000 papers."""
RESOURCE_FIELDS = ("repositories", "hf_models")
"""Fields `include_resources=true` adds; a listing item without them gets its detail fetched."""


class NotFound(SourceError):
    """A 404 or 410 on one object (not a listing): that object is gone, the API is not."""


class BudgetExhausted(Exception):
    """The run has made the requests its budget allows: stop, save where, and let the next run go on.

    Not a `SourceError`: stopping at the budget is the plan for a long backfill, not a failure.
    """


GAP_REASON = "empty page in the middle of a listing"
"""Starts the reason of a reject that stands for records a listing should have held but did not give."""


class Catalog:
    """A polite client of the catalog: one request at a time, at most `max_per_minute` a minute.

    `max_requests` caps the requests of one run (None: no cap); at the cap `get_json` raises
    `BudgetExhausted` before sending anything.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_per_minute: int = 60,
        max_requests: int | None = None,
        timeout: float = polite_http.TIMEOUT_SECONDS,
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.requests = 0
        self.max_requests = max_requests
        self._interval = 60.0 / max_per_minute
        self._timeout = timeout
        self.attempts = attempts
        self._backoff = backoff_seconds
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json"})
        # The last response seen, so a 4xx that polite_http turned into SourceError keeps its
        # status and FastAPI `detail` for our message.
        self._last: requests.Response | None = None
        self._session.hooks["response"].append(self._remember)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._session.close()

    def _remember(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self._last = response

    def get_json(
        self,
        path: str,
        params: dict[str, object] | None = None,
        *,
        listing: bool,
        again: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The parsed JSON answer to `GET base/path`; `listing` says a 404/410 means the API is gone.

        An answer that may come out right if asked again is asked again with backoff, `attempts`
        times in all, as polite_http does for a 5xx: a JSON body that does not parse (cut short
        where the transport could not tell), or one that `again` finds wanting (it returns why, as
        an empty page where `count` promises papers). A body that never parses is a `SourceError`
        saying so; a payload still wanting after the last attempt is returned, for the caller to
        report what is missing. Bytes that are not UTF-8 are kept as lone surrogates
        (`surrogateescape`), so one bad record does not sink the page: `paper_record` rejects it.
        """
        problem = "no attempt made"
        wanting: Any = None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                delay = polite_http.backoff_delay(self._backoff, attempt - 1)
                logger.warning("paperswithcode: %s from %s, retry %d/%d in %.1fs",
                               problem, path, attempt - 1, self.attempts - 1, delay)
                self._sleep(delay)
            body, content_type, status = self._get(path, params, listing=listing)
            try:
                payload = json.loads(body.decode("utf-8", "surrogateescape"))
            except ValueError as exc:
                if "json" not in content_type.lower():
                    # Not the JSON API answering at all (a proxy's or a parked domain's page).
                    raise SourceUnavailable(
                        f"{path} answered {content_type or 'no content type'} that is not JSON "
                        f"(HTTP {status}, starts {body[:40]!r}): the service changed or retired",
                        url=polite_http.redact(f"{self.base_url}/{path}"),
                    ) from exc
                problem = f"invalid JSON ({len(body):,} bytes: {exc})"
                continue
            wants = again(payload) if again is not None else None
            if wants is None:
                return payload
            problem, wanting = wants, payload
        if wanting is not None:
            return wanting
        raise SourceError(f"{path} answered {problem} after {self.attempts} attempts",
                          url=polite_http.redact(f"{self.base_url}/{path}"))

    def _get(self, path: str, params: dict[str, object] | None, *, listing: bool) -> tuple[bytes, str, int]:
        """One paced GET through polite_http: the body, its content type and status.

        The content type does not decide by itself: the catalog's own client accepts
        `application/json, text/plain` and parses the bytes. A body that starts like a web page is
        the site, not the API, whatever it is labelled.
        """
        if self.max_requests is not None and self.requests >= self.max_requests:
            raise BudgetExhausted(f"{self.requests:,} requests made, the budget is {self.max_requests:,}")
        url = f"{self.base_url}/{path.lstrip('/')}"
        wait = self._next_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._next_at = self._clock() + self._interval
        self.requests += 1
        self._last = None
        try:
            response = polite_http.get(
                self._session, url, params=params, timeout=self._timeout,
                attempts=self.attempts, backoff_seconds=self._backoff,
            )
        except SourceUnavailable:
            raise
        except SourceError as exc:
            failed = self._last
            status = failed.status_code if failed is not None else None
            detail = _fastapi_detail(failed)
            if listing and status in (404, 410):
                # A listing endpoint that is not there any more: the API moved or retired.
                raise SourceUnavailable(
                    f"{path} answered HTTP {status}{detail}: the listing endpoint is gone", url=exc.url
                ) from exc
            if status in (404, 410):
                raise NotFound(f"{exc}{detail}", url=exc.url) from exc
            raise SourceError(f"{exc}{detail}", url=exc.url) from exc
        with response:
            content_type = response.headers.get("Content-Type", "")
            body = response.content  # read whole by polite_http: a body broken off was retried there
        if body.lstrip()[:1] == b"<":
            raise SourceUnavailable(
                f"{path} answered {content_type or 'no content type'} instead of JSON "
                f"(HTTP {response.status_code}, starts {body[:40]!r}): the service changed or retired",
                url=polite_http.redact(url),
            )
        return body, content_type, response.status_code


def _fastapi_detail(response: requests.Response | None) -> str:
    """`: <detail>` from a FastAPI error body (`{"detail": "..."}` or a list of `{msg}`), else ''."""
    if response is None:
        return ""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, list):
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return f": {str(detail)[:200]}" if detail else ""


@dataclass
class PaperPage:
    """One page of one publication-date window, with what the flow needs to move its cursor."""

    start: date
    end: date
    number: int
    count: int
    items: list[RawRecord | Rejected] = field(default_factory=list)
    last: bool = False
    """The window is done after this page: the cursor may move to `end`, unless `incomplete`."""
    truncated: bool = False
    """The window is one day holding more papers than 100 pages; the rest cannot be listed."""
    incomplete: bool = False
    """A page came back empty though `count` promised more, even when asked again: the window ends
    here with a reject saying so, and the cursor must stay before it so the next run reads it again."""


def paper_pages(
    catalog: Catalog,
    start: date,
    end: date,
    *,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
    resume: tuple[date, int] | None = None,
) -> Iterator[PaperPage]:
    """Every page of papers published from `start` to `end` (inclusive), oldest first.

    A window whose `count` needs more than `max_pages` pages is halved until each half fits, so no
    paper is out of reach of the page cap; windows are read in date order, so once a window is done
    every earlier date is done too. A short page ends its window (counts are estimates on a catalog
    that changes while we read it); an empty one where `count` promises papers is asked again
    first, and if it stays empty the page is `incomplete`. `resume` (a window's last day and a
    page number) continues a window that starts at `start` from that page, as a run stopped at
    its request budget left it; the window already fitted the page cap, so it is not split again.
    """
    pending = [(start, end)]
    if resume is not None and start <= resume[0] <= end:
        pending = [(start, resume[0])] + ([(resume[0] + timedelta(days=1), end)] if resume[0] < end else [])
    while pending:
        low, high = pending.pop(0)
        number = resume[1] if resume is not None and (low, high) == (start, resume[0]) else 1
        first = _paper_page(catalog, low, high, number, page_size)
        needed = math.ceil(first.count / page_size)
        if needed > max_pages and low < high and number == 1:
            middle = low + (high - low) // 2
            pending[0:0] = [(low, middle), (middle + timedelta(days=1), high)]
            continue
        last_number = min(needed, max_pages)
        if needed > max_pages:
            logger.warning(
                "paperswithcode: %s alone lists %s papers, more than %d pages; the rest are out of reach",
                low, f"{first.count:,}", max_pages,
            )
        page = first
        while True:
            full = len(page.items) >= page_size
            page.last = page.incomplete or page.number >= last_number or not full
            page.truncated = page.last and needed > max_pages
            yield page
            if page.last:
                break
            page = _paper_page(catalog, low, high, page.number + 1, page_size)


def _paper_page(catalog: Catalog, start: date, end: date, number: int, page_size: int) -> PaperPage:
    sent = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    path = "papers/"
    empty_too_soon = partial(_missing_rows, path=path, base_url=catalog.base_url, read=(number - 1) * page_size,
                             page_size=page_size, what=f"page {number} of the papers published {start}..{end}")
    payload = catalog.get_json(
        path,
        {
            "page": number,
            "page_size": page_size,
            **sent,
            "order_by": "date_published",
            "order_dir": "asc",
            "latest_only": "true",
            "include_resources": "true",
        },
        listing=True,
        again=empty_too_soon,
    )
    results, count = _listing_parts(payload, path, catalog.base_url)
    applied = payload.get("applied_filters")
    if not isinstance(applied, dict) or any(
        str(applied.get(name, "")).casefold() != value.casefold() for name, value in sent.items()
    ):
        raise SourceUnavailable(
            f"papers/ did not confirm the date filters sent ({sent}); applied_filters={str(applied)[:200]}: "
            "the API changed, and its pages cannot be trusted to hold that window",
            url=polite_http.redact(f"{catalog.base_url}/papers/"),
        )
    count = count if count is not None else len(results)
    if (problem := empty_too_soon(payload)) is not None:
        logger.warning("paperswithcode: %s, still empty after %d attempts; the window is left for the next run",
                       problem, catalog.attempts)
        reason = f"{GAP_REASON}: {problem}, still empty after {catalog.attempts} attempts; the next run reads it again"
        return PaperPage(start, end, number, count, [Rejected(None, json.dumps(payload), reason)], incomplete=True)
    return PaperPage(start, end, number, count, [_in_window(paper_record(item), start, end) for item in results])


def _in_window(record: RawRecord | Rejected, start: date, end: date) -> RawRecord | Rejected:
    """The record, or a reject when its publication date lies outside the window the listing was asked for.

    The server filtered on that date, so a paper dated 1900 or 2100 in a 2024 window is a broken
    record, not a paper of 2024: landing it would put an absurd date in front of analysts.
    """
    if isinstance(record, Rejected):
        return record
    paper = json.loads(record.payload)
    published = paper.get("published") or paper.get("date_published")
    try:
        day = date.fromisoformat(str(published)[:10])
    except ValueError:
        return record  # no date to judge by: staging leaves it null
    if start <= day <= end:
        return record
    return Rejected(record.key, record.payload,
                    f"published {str(published)[:40]} outside the window asked for ({start}..{end})")


def _missing_rows(payload: Any, *, path: str, base_url: str, read: int, page_size: int, what: str) -> str | None:
    """Why a listing page is wanting: empty in the middle, `count` saying a full page remains after it.

    An empty last page is the listing's normal end when `count` was a little high (the catalog
    changed while we read it), as pwc-cli's paging takes it; an empty page with pages due after it
    is the server failing to give them.
    """
    results, count = _listing_parts(payload, path, base_url)
    if not results and count is not None and read + page_size < count:
        return f"{what} came back empty, though the listing counts {count:,} and {read:,} came before"
    return None


def _listing_parts(payload: Any, path: str, base_url: str) -> tuple[list[Any], int | None]:
    """`results` and `count` of a listing, or `SourceUnavailable` when the shape is not the API's."""
    url = polite_http.redact(f"{base_url}/{path}")
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        shape = sorted(payload)[:10] if isinstance(payload, dict) else type(payload).__name__
        raise SourceUnavailable(f"{path} answered without a `results` list (got {shape})", url=url)
    count = payload.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise SourceUnavailable(f"{path} answered a non-integer count {count!r}", url=url)
    return payload["results"], count


def paper_record(item: Any) -> RawRecord | Rejected:
    """A listing item or detail object, keyed by its catalog id; without an id it cannot be kept.

    A record holding what is not text (bytes that were not UTF-8, kept as lone surrogates by
    `surrogateescape`, or a lone surrogate sent as a `\\ud800` escape) is rejected with its text, so
    the rest of its page still lands.
    """
    text = json.dumps(item, ensure_ascii=False)
    key = f"{API_PREFIX}{item['id']}" if isinstance(item, dict) and item.get("id") not in (None, "") else None
    if key is None:
        return Rejected(None, text, "paper without a catalog id")
    if not is_text(text):
        return Rejected(key, text, "invalid UTF-8 in the record")
    return RawRecord(key, text)


def lacks_resources(record: RawRecord) -> bool:
    """Whether the server left out the resource fields `include_resources=true` asks for."""
    paper = json.loads(record.payload)
    return any(name not in paper for name in RESOURCE_FIELDS)


def fetch_paper(catalog: Catalog, catalog_id: str) -> RawRecord | Rejected | None:
    """One paper's detail object with its resources, or None when the catalog no longer has it."""
    try:
        payload = catalog.get_json(f"papers/{catalog_id}", {"include_resources": "true"}, listing=False)
    except NotFound:
        # The paper was removed between the listing and this request: nothing to keep.
        return None
    if not isinstance(payload, dict):
        raise SourceUnavailable(f"papers/{catalog_id} answered a {type(payload).__name__}, not an object",
                                url=polite_http.redact(catalog.base_url))
    return paper_record(payload)


def wants_results(paper: dict[str, Any]) -> bool:
    """Whether a paper's benchmark results are worth a request: only papers downstream can use.

    The release census joins Papers With Code by arXiv id or by Hub model, so a paper with neither
    cannot reach a release and its results would never be read. Narrow this, not the flow, to
    spend fewer requests.
    """
    return bool(paper.get("arxiv_id")) or bool(paper.get("hf_models"))


def evaluation_records(catalog: Catalog, catalog_id: str, *, max_pages: int = MAX_PAGES) -> Iterator[RawRecord | Rejected]:
    """Every benchmark row of one paper, keyed `api:<paper id>#<evaluation id>`.

    Pages until `count` rows are read or a page is empty, as pwc-cli's `_paper_evaluations` does. An
    empty page before `count` rows is asked again; if it stays empty, a reject starting with
    `GAP_REASON` stands for the missing rows (`is_gap`), so the caller can read the paper again later.
    """
    read = 0
    path = "evaluations/"
    for number in range(1, max_pages + 1):
        empty_too_soon = partial(_missing_rows, path=path, base_url=catalog.base_url, read=read,
                                 page_size=PAGE_SIZE, what=f"page {number} of paper {catalog_id}'s evaluations")
        payload = catalog.get_json(
            path,
            {"page": number, "page_size": PAGE_SIZE, "paper_id": catalog_id, "ordering": "-benchmark_popularity"},
            listing=True,
            again=empty_too_soon,
        )
        if (problem := empty_too_soon(payload)) is not None:
            yield Rejected(f"{API_PREFIX}{catalog_id}", json.dumps(payload),
                           f"{GAP_REASON}: {problem}, still empty after {catalog.attempts} attempts")
            return
        results, count = _listing_parts(payload, path, catalog.base_url)
        for item in results:
            yield _evaluation_record(catalog_id, item)
        read += len(results)
        if not results or count is None or read >= count:
            return


def is_gap(item: RawRecord | Rejected) -> bool:
    """Whether `item` stands for records a listing owed but did not give (see `GAP_REASON`)."""
    return isinstance(item, Rejected) and item.reason.startswith(GAP_REASON)


def _evaluation_record(catalog_id: str, item: Any) -> RawRecord | Rejected:
    text = json.dumps(item, ensure_ascii=False)
    if not isinstance(item, dict) or not isinstance(item.get("metrics"), dict):
        return Rejected(f"{API_PREFIX}{catalog_id}", text, "evaluation row without a metrics object")
    if not is_text(text):
        return Rejected(f"{API_PREFIX}{catalog_id}", text, "invalid UTF-8 in the evaluation row")
    row_id = item.get("id")
    if row_id in (None, ""):
        row_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return RawRecord(f"{API_PREFIX}{catalog_id}#{row_id}", text)


# --- the archive ---------------------------------------------------------------------------------

ARCHIVE_REPOS: dict[str, str] = {
    "papers": "pwc-archive/papers-with-abstracts",
    "links": "pwc-archive/links-between-paper-and-code",
    "evaluations": "pwc-archive/evaluation-tables",
}
"""The archive's datasets on the Hub; which parquet files each holds is asked of the Hub, not assumed."""
ARCHIVE_COLUMNS: dict[str, frozenset[str]] = {
    "papers": frozenset({"paper_url", "arxiv_id", "title", "date"}),
    "links": frozenset({"paper_url", "repo_url"}),
    "evaluations": frozenset({"task", "datasets", "subtasks"}),
}
"""Columns the import reads (see tests/fixtures/paperswithcode/README.md for where each was checked).
A dataset without one has changed shape: the import stops rather than land rows nobody can join."""
PAPER_URL_PREFIX = "https://paperswithcode.com/paper/"
ARCHIVE_BATCH = 5_000


@dataclass
class Archive:
    """The downloaded archive: the commit of each dataset, and the local parquet files."""

    commits: dict[str, str]
    files: dict[str, list[Path]]


def archive_fingerprint(commits: dict[str, str]) -> str:
    """One string that changes when any dataset is republished: what "imported once" remembers."""
    return ",".join(f"{name}@{commit}" for name, commit in sorted(commits.items()))


def archive_datasets(
    endpoint: str, token: str | None, *, timeout: float = polite_http.TIMEOUT_SECONDS
) -> dict[str, DatasetRevision]:
    """Each archive dataset's current commit and parquet files: one `dataset_info` GET per dataset.

    "Already imported" so costs three small requests, and the shards are whatever the repo holds.
    """
    return {name: dataset_revision(endpoint, token, repo, timeout=timeout) for name, repo in ARCHIVE_REPOS.items()}


def download_archive(
    endpoint: str,
    token: str | None,
    datasets: dict[str, DatasetRevision],
    folder: Path,
    *,
    timeout: float = polite_http.TIMEOUT_SECONDS,
) -> Archive:
    """Download every listed shard at its dataset's commit into `folder` (not the shared Hub cache).

    Each dataset's columns are checked once its files are here, before anything is read.
    """
    files = {}
    for name, dataset in datasets.items():
        files[name] = download_files(endpoint, token, dataset, folder / name, timeout=timeout)
        _check_columns(name, dataset, files[name], endpoint)
    return Archive({name: dataset.commit for name, dataset in datasets.items()}, files)


def _check_columns(name: str, dataset: DatasetRevision, paths: list[Path], endpoint: str) -> None:
    """`SourceUnavailable` when the parquet lacks a column the import reads: the archive changed shape."""
    con = duckdb.connect()
    try:
        columns = {row[0] for row in con.execute(
            "select column_name from (describe select * from read_parquet($files, union_by_name = true))",
            {"files": [str(path) for path in paths]},
        ).fetchall()}
    finally:
        con.close()
    if missing := sorted(ARCHIVE_COLUMNS[name] - columns):
        raise SourceUnavailable(
            f"archive {dataset.repo}@{dataset.commit[:12]} lacks column(s) {', '.join(missing)} "
            f"(has {', '.join(sorted(columns)[:12])}): the archive changed shape",
            url=polite_http.redact(f"{endpoint.rstrip('/')}/datasets/{dataset.repo}"),
        )


def archive_paper_records(archive: Archive) -> Iterator[RawRecord | Rejected]:
    """One record per archived paper: `{"paper": <row>, "code_links": [<link rows>]}`, as published.

    Links live in their own dataset, keyed by the paper's URL; they are attached to their paper
    here so that a paper and its code arrive together, as the API's `repositories` do. Shards are read
    by column name (`union_by_name`): read by the first shard's schema, a column or a struct field only a
    later shard has would be dropped from its rows without an error.
    """
    con = duckdb.connect()
    try:
        cursor = con.execute(
            """
            with links as (
                select paper_url, list(to_json(link)::varchar) as code_links
                from read_parquet($links, union_by_name = true) as link
                group by paper_url
            )
            select paper.paper_url, to_json(paper)::varchar, coalesce(links.code_links, [])
            from read_parquet($papers, union_by_name = true) as paper
            left join links on links.paper_url = paper.paper_url
            """,
            {"links": [str(path) for path in archive.files["links"]],
             "papers": [str(path) for path in archive.files["papers"]]},
        )
        while rows := cursor.fetchmany(ARCHIVE_BATCH):
            for paper_url, paper, code_links in rows:
                payload = '{"paper": ' + paper + ', "code_links": [' + ", ".join(code_links) + "]}"
                slug = (paper_url or "").removeprefix(PAPER_URL_PREFIX).strip("/")
                if not slug:
                    yield Rejected(None, payload, "archived paper without a paper_url")
                    continue
                yield RawRecord(f"{ARCHIVE_PREFIX}{slug}", payload)
    finally:
        con.close()


def archive_result_records(archive: Archive) -> Iterator[RawRecord | Rejected]:
    """One record per leaderboard row of the evaluation tables, with its task and dataset names.

    The tables nest tasks, subtasks, datasets and subdatasets; each `sota.rows` entry becomes
    `{"task", "dataset", "row"}`. Metric names absent from a row come back as nulls when parquet
    unifies the rows' metric maps into one struct, so nulls are dropped from `metrics`.
    """
    con = duckdb.connect()
    try:
        cursor = con.execute(
            "select to_json(task_table)::varchar from read_parquet($files, union_by_name = true) as task_table",
            {"files": [str(path) for path in archive.files["evaluations"]]},
        )
        while rows := cursor.fetchmany(ARCHIVE_BATCH):
            for (text,) in rows:
                yield from _task_results(json.loads(text), None)
    finally:
        con.close()


def _task_results(task: dict[str, Any], parent: str | None) -> Iterator[RawRecord | Rejected]:
    name = task.get("task") or parent
    for dataset in _as_list(task.get("datasets")):
        yield from _dataset_results(name, dataset)
    for subtask in _as_list(task.get("subtasks")):
        if isinstance(subtask, dict):
            yield from _task_results(subtask, name)


def _dataset_results(task: str | None, dataset: Any) -> Iterator[RawRecord | Rejected]:
    if not isinstance(dataset, dict):
        return
    sota = dataset.get("sota") if isinstance(dataset.get("sota"), dict) else {}
    for row in _as_list(sota.get("rows")):
        if not isinstance(row, dict):
            continue
        metrics = row.get("metrics")
        if isinstance(metrics, str):
            metrics = json.loads(metrics)
        row = {**row, "metrics": {key: value for key, value in (metrics or {}).items() if value is not None}}
        record = {"task": task, "dataset": dataset.get("dataset"), "row": row}
        text = json.dumps(record, ensure_ascii=False)
        if not row.get("model_name"):
            yield Rejected(None, text, "archived leaderboard row without a model name")
            continue
        # The leaderboards repeat a model name on one dataset (resubmissions, unnamed papers), so only the
        # whole row tells rows apart; the archive is frozen, so a row's content is its identity.
        yield RawRecord(f"{ARCHIVE_PREFIX}{hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]}", text)
    for subdataset in _as_list(dataset.get("subdatasets")):
        yield from _dataset_results(task, subdataset)


def _as_list(value: Any) -> list[Any]:
    """Nested lists arrive as lists, or as JSON text when parquet could not type them."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return value if isinstance(value, list) else []

