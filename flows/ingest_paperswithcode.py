"""Papers With Code: papers by publication-date window, their benchmark results, and once, the archive."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

import duckdb

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import paperswithcode
from sources.records import RawRecord, Rejected
from warehouse.raw import content_hash

RAW_PAPERS = "raw_paperswithcode__papers"
RAW_RESULTS = "raw_paperswithcode__results"
LAND_ROWS = 1_000
"""Papers landed per transaction; results of a batch are fetched before it lands."""
ARCHIVE_PAGE_ROWS = 5_000


def scan_range(window: Window, cursor: dict, *, today: date, rescan_days: int, lookback_days: int) -> tuple[date, date]:
    """The publication dates this run lists, both inclusive.

    The catalog filters on publication date, not on when it learned of a paper, so a nightly run
    re-reads the trailing `rescan_days` as well as everything since the last date it finished.
    A backfill's `until` is the day after its last day.
    """
    if window.is_backfill:
        return window.since, (window.until - timedelta(days=1)) if window.until else today
    through = cursor.get("through")
    if through is None:
        return today - timedelta(days=lookback_days), today
    return min(date.fromisoformat(through) + timedelta(days=1), today - timedelta(days=rescan_days)), today


def ingest_paperswithcode(run: IngestRun, settings: Settings, window: Window) -> None:
    """List papers window by window; fetch results for new or changed papers that matter; land both.

    Pages are landed in batches of about `LAND_ROWS` papers, always ending where a window ends.
    A batch's results land before its papers: a run killed in between finds the papers still new
    next time and asks for their results again. Only a nightly run moves `through`, at the end of
    each window; a backfill leaves it alone but imports the archive once (remembered by commits).
    """
    cursor = dict(run.cursor() or {})
    today = datetime.now(timezone.utc).date()
    start, end = scan_range(window, cursor, today=today, rescan_days=settings.pwc_rescan_days,
                            lookback_days=settings.pwc_lookback_days)
    run.detail.update({"scan": f"{start.isoformat()}..{end.isoformat()}", "results_for": 0, "truncated_days": []})
    seen: set[str] = set()
    batch: list[RawRecord | Rejected] = []
    catalog = paperswithcode.Catalog(settings.pwc_url, max_per_minute=settings.pwc_max_per_minute,
                                     timeout=settings.http_timeout_seconds)
    try:
        with catalog:
            for page in paperswithcode.paper_pages(catalog, start, end):
                batch.extend(_complete(catalog, [item for item in page.items if _first_time(item, seen)]))
                if page.truncated:
                    run.detail["truncated_days"].append(page.start.isoformat())
                if len(batch) < LAND_ROWS and not page.last:
                    continue
                run.land(RAW_RESULTS, _results_for(run, catalog, batch))
                moves = page.last and not window.is_backfill
                if moves:
                    cursor["through"] = max(cursor.get("through") or "", page.end.isoformat())
                run.land(RAW_PAPERS, batch, cursor=cursor if moves else None,
                         watermark=f"published through {cursor.get('through')}" if moves else None)
                batch = []
                run.requests = catalog.requests
        if window.is_backfill and settings.pwc_import_archive:
            _import_archive_once(run, settings, cursor)
    finally:
        run.requests = catalog.requests + run.detail.get("archive_requests", 0)


def _results_for(run: IngestRun, catalog: paperswithcode.Catalog, papers: list[RawRecord | Rejected]) -> list[RawRecord | Rejected]:
    """Benchmark rows of the papers raw does not hold in this form yet and that downstream can use.

    An unchanged paper keeps the results fetched when it was new: the trailing re-scan then costs
    one listing request per page, not one more request per paper.
    """
    payloads = {item.key: item.payload for item in papers if isinstance(item, RawRecord)}
    results: list[RawRecord | Rejected] = []
    for key in _new_or_changed(run.con, RAW_PAPERS, papers):
        paper = json.loads(payloads[key])
        if paperswithcode.wants_results(paper):
            run.detail["results_for"] += 1
            results.extend(paperswithcode.evaluation_records(catalog, str(paper["id"])))
    return results


def _first_time(item: RawRecord | Rejected, seen: set[str]) -> bool:
    """Overlapping windows and a shifting catalog can list a paper twice: keep its first copy."""
    if isinstance(item, Rejected):
        return True
    if item.key in seen:
        return False
    seen.add(item.key)
    return True


def _complete(catalog: paperswithcode.Catalog, items: list[RawRecord | Rejected]) -> list[RawRecord | Rejected]:
    """Swap a listing item that came without its resources for the paper's detail object."""
    completed: list[RawRecord | Rejected] = []
    for item in items:
        if isinstance(item, RawRecord) and paperswithcode.lacks_resources(item):
            detail = paperswithcode.fetch_paper(catalog, item.key.removeprefix(paperswithcode.API_PREFIX))
            if detail is None:
                continue
            item = detail
        completed.append(item)
    return completed


def _new_or_changed(con: duckdb.DuckDBPyConnection, raw_table: str, items: list[RawRecord | Rejected]) -> list[str]:
    """Keys of records whose content raw does not hold yet: only those can have new results."""
    records = {item.key: content_hash(item.payload) for item in items if isinstance(item, RawRecord)}
    if not records:
        return []
    landed = dict(
        con.execute(
            f"select source_key, content_hash from {raw_table}_latest where source_key in (select unnest($keys))",
            {"keys": list(records)},
        ).fetchall()
    )
    return [key for key, digest in records.items() if landed.get(key) != digest]


def _import_archive_once(run: IngestRun, settings: Settings, cursor: dict) -> None:
    """Land the `pwc-archive` datasets unless these very commits were imported before."""
    endpoint, token = settings.hf_url.rstrip("/"), settings.token_value()
    commits = paperswithcode.archive_commits(endpoint, token)
    run.detail["archive_requests"] = len(commits)
    fingerprint = paperswithcode.archive_fingerprint(commits)
    if cursor.get("archive") == fingerprint:
        run.detail["archive"] = "already imported"
        return
    with tempfile.TemporaryDirectory(prefix="pwc-archive-") as folder:
        archive = paperswithcode.download_archive(endpoint, token, commits, Path(folder))
        run.detail["archive_requests"] += 2 * sum(len(paths) for paths in archive.files.values())
        for raw_table, items in (
            (RAW_PAPERS, paperswithcode.archive_paper_records(archive)),
            (RAW_RESULTS, paperswithcode.archive_result_records(archive)),
        ):
            while page := list(islice(items, ARCHIVE_PAGE_ROWS)):
                run.land(raw_table, page)
    # Remembered only once both datasets have landed: a half-imported archive is imported again.
    cursor["archive"] = fingerprint
    run.land(RAW_PAPERS, [], cursor=cursor, watermark=_watermark(cursor))
    run.detail["archive"] = fingerprint


def _watermark(cursor: dict) -> str:
    through = cursor.get("through")
    return f"published through {through}" if through else "archive imported"
