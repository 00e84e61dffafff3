"""Open LLM Leaderboard archives: land each archive's rows once per commit of its dataset.

The archives are frozen, so a run costs one request per archive when nothing changed: the
dataset's commit is compared with the one saved in the cursor, and only a new commit is
downloaded (HEAD + GET per parquet file) and landed, in pages. The cursor (`{version: commit}`)
moves only after the last page of that archive has landed: a run killed half-way reads it again,
and landing the same rows twice adds nothing. A backfill reads both archives again, as a repair.

`HfApi.dataset_info` does not retry, and `hf_hub_download` retries only some failures, so a 429, a
5xx, a reset connection, a download or an answer cut short is asked again here, `ATTEMPTS` times with backoff
(honouring `Retry-After`); once exhausted the error says "after N attempts", as every source's does,
and the pipeline retries the task later. A parquet file DuckDB cannot read (corrupt, or text that is
not UTF-8, which DuckDB refuses for the whole file) fails the source with that reason: the cursor
stays, and the next run reads the archive again.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import TypeVar

import duckdb
import httpx2

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import open_llm_leaderboard, polite_http
from sources.records import SourceError, SourceUnavailable

RAW_TABLE = "raw_open_llm_leaderboard__results"
PAGE_ROWS = 5_000
ATTEMPTS = 4
BACKOFF_SECONDS = 1.0
"""1, 2, 4 s between attempts: an archive of two parquet files is worth a few seconds' patience."""
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")
logger = logging.getLogger(__name__)


def ingest_open_llm_leaderboard(run: IngestRun, settings: Settings, window: Window) -> None:
    """Both archives, each only when its dataset's commit is new (or on a backfill)."""
    cursor = dict(run.cursor() or {})
    token = settings.token_value()
    run.detail["archives"] = {}
    for version in open_llm_leaderboard.ARCHIVES:
        run.requests += 1
        revision = with_retries(lambda: open_llm_leaderboard.archive_revision(
            settings.hf_url, token, version, timeout=settings.http_timeout_seconds), run)
        if cursor.get(version) == revision.commit and not window.is_backfill:
            run.detail["archives"][version] = f"unchanged at {revision.commit}"
            continue
        url = f"{settings.hf_url}/datasets/{revision.repo}"
        with tempfile.TemporaryDirectory(prefix="census-open-llm-") as folder:
            run.requests += 2 * len(revision.files)  # hf_hub_download: HEAD for the commit, GET for the file
            paths = with_retries(
                lambda: open_llm_leaderboard.download_archive(settings.hf_url, token, revision, Path(folder),
                                                               timeout=settings.http_timeout_seconds), run,
                requests_per_attempt=2 * len(revision.files),
            )
            items = open_llm_leaderboard.read_rows(version, paths, url=url)
            try:
                while page := list(islice(items, PAGE_ROWS)):
                    run.land(RAW_TABLE, page)
            except duckdb.Error as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
                raise SourceError(f"archive {revision.repo}: unreadable parquet ({first})", url=polite_http.redact(url)) from exc
        cursor[version] = revision.commit
        run.land(RAW_TABLE, [], cursor=cursor, watermark=_label(cursor))
        run.detail["archives"][version] = f"loaded {revision.commit}"


def with_retries(call: Callable[[], T], run: IngestRun, *, requests_per_attempt: int = 1) -> T:
    """`call()`, asked again while it fails for a transient reason; counts each extra attempt's requests."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except SourceUnavailable:
            raise
        except SourceError as exc:
            wait = transient_wait(exc.__cause__, BACKOFF_SECONDS * 2 ** (attempt - 1))
            if wait is None:
                raise
            if attempt == ATTEMPTS:
                raise SourceError(f"{exc} after {ATTEMPTS} attempts", url=exc.url) from exc
            logger.warning("open_llm_leaderboard: %s, retry %d/%d in %.1fs", exc, attempt, ATTEMPTS - 1, wait)
            time.sleep(wait)
            run.requests += requests_per_attempt
    raise AssertionError("unreachable: the last attempt returns or raises")


def transient_wait(cause: BaseException | None, backoff: float) -> float | None:
    """Seconds to wait before asking again when `cause` may pass (429, 5xx, a broken connection, a body cut
    short), None when asking again would get the same answer (other 4xx, a host that does not resolve)."""
    if cause is None or polite_http.unreachable_reason(cause) is not None:
        return None
    response = getattr(cause, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        if status not in TRANSIENT_STATUS:
            return None
        after = (response.headers.get("Retry-After") or "").strip()
        return min(float(after), polite_http.MAX_RETRY_AFTER_SECONDS) if after.replace(".", "", 1).isdigit() else backoff
    if isinstance(cause, httpx2.TransportError):
        return backoff
    if isinstance(cause, OSError) and "Consistency check failed" in str(cause):
        # hf_hub_download got fewer bytes than the file has (a cut connection, a proxy's truncation).
        return backoff
    if isinstance(cause, json.JSONDecodeError):
        # dataset_info's answer was cut short, or was a web page: a cut body comes whole when asked again.
        return backoff
    return None


def _label(cursor: dict[str, str]) -> str:
    return ", ".join(f"{version}@{commit[:12]}" for version, commit in sorted(cursor.items()))
