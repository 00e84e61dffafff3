"""Papers With Code: papers by publication-date window, their benchmark results, and once, the archive.

Cursor (one JSON dict in `ingestion_state`):
- `through`: the last publication date a nightly run has read completely; the next night starts after
  it (and re-reads the trailing `pwc_rescan_days`).
- `backfill`: `{"window", "through", "at"}` while a backfill is unfinished (stopped at the request
  budget, or a window came back incomplete): the same backfill run again continues the day after
  `through` (the last day read completely, or null), and within the window that starts there from
  page `at.page` of the window ending `at.end`, so a run whose budget is smaller than one window
  still moves on.
- `archive`: the commits of the `pwc-archive` datasets last imported, so a rerun downloads nothing.
- `spent`: `{"run_id", "requests"}`, the catalog requests the current run has made so far, so the budget
  holds across a backfill's monthly parts and a retried attempt.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import paperswithcode
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable
from warehouse.raw import content_hash

RAW_PAPERS = "raw_paperswithcode__papers"
RAW_RESULTS = "raw_paperswithcode__results"
LAND_ROWS = 1_000
"""Papers landed per transaction; results of a batch are fetched before it lands."""
ARCHIVE_PAGE_ROWS = 5_000

logger = logging.getLogger(__name__)


def scan_range(window: Window, cursor: dict, *, today: date, rescan_days: int, lookback_days: int) -> tuple[date, date]:
    """The publication dates this run lists, both inclusive.

    The catalog filters on publication date, not on when it learned of a paper, so a nightly run
    re-reads the trailing `rescan_days` as well as everything since the last date it finished.
    A backfill's `until` is the day after its last day; an unfinished backfill of the same window
    continues the day after the last one it finished.
    """
    if window.is_backfill:
        start, end = window.since, (window.until - timedelta(days=1)) if window.until else today
        saved = cursor.get("backfill") or {}
        if saved.get("window") == backfill_label(window) and saved.get("through"):
            start = max(start, date.fromisoformat(saved["through"]) + timedelta(days=1))
        return start, end
    through = cursor.get("through")
    if through is None:
        return today - timedelta(days=lookback_days), today
    return min(date.fromisoformat(through) + timedelta(days=1), today - timedelta(days=rescan_days)), today


def backfill_label(window: Window) -> str:
    """The backfill's dates as asked for, so progress saved by one backfill is not taken for another's.

    An open end stays open in the label: `--since 2019-01-01` run again tomorrow continues today's.
    """
    assert window.since is not None, "only a backfill has a label"
    return f"{window.since.isoformat()}..{window.until.isoformat() if window.until else 'today'}"


def ingest_paperswithcode(run: IngestRun, settings: Settings, window: Window) -> None:
    """List papers window by window; fetch results for new or changed papers that matter; land both.

    Pages are landed in batches of about `LAND_ROWS` papers, always ending where a window ends.
    A batch's results land before its papers: a run killed in between finds the papers still new
    next time and asks for their results again. The cursor moves at the end of each window read
    completely; at the request budget the run stops there and the next one continues. A backfill
    also imports the archive once (remembered by commits).
    """
    cursor = dict(run.cursor() or {})
    today = datetime.now(timezone.utc).date()
    start, end = scan_range(window, cursor, today=today, rescan_days=settings.pwc_rescan_days,
                            lookback_days=settings.pwc_lookback_days)
    already = _spent_by_this_run(cursor, run.run_id)
    run.detail.update({"scan": f"{start.isoformat()}..{end.isoformat()}", "results_for": 0, "truncated_days": [],
                       "incomplete": [], "repeated": 0, "budget": settings.pwc_max_requests,
                       "spent_by_earlier_parts": already, "stopped_at_budget": False})
    catalog = paperswithcode.Catalog(settings.pwc_url, max_per_minute=settings.pwc_max_per_minute,
                                     max_requests=max(settings.pwc_max_requests - already, 0),
                                     timeout=settings.http_timeout_seconds)
    walk = _Walk(run, catalog, cursor, backfill=backfill_label(window) if window.is_backfill else None, end=end)
    try:
        with catalog:
            if start <= end:
                walk.read(start, end, resume=_resume_point(cursor, window))
        if window.is_backfill and settings.pwc_import_archive:
            _import_archive_once(run, settings, cursor)
    except paperswithcode.BudgetExhausted as exc:
        run.detail["stopped_at_budget"] = True
        run.detail["resume_after"] = walk.done_through
        logger.warning("paperswithcode: stopped at the budget (%s); read completely through %s, the next run continues",
                       exc, walk.done_through or "nothing yet")
    except SourceUnavailable:
        raise  # never retried: nothing to remember, and nothing is written for a service that is gone
    except SourceError:
        _remember_spent(run, already + catalog.requests)  # a retried attempt keeps to what is left
        raise
    finally:
        run.requests = catalog.requests + run.detail.get("archive_requests", 0)
    _remember_spent(run, already + catalog.requests)


def _spent_by_this_run(cursor: dict, run_id: str) -> int:
    """Catalog requests earlier parts or attempts of this run made: the budget holds per run.

    A backfill runs one task per month and the pipeline retries a task after a transient failure,
    each with the same run id; without this, each would get the whole budget again.
    """
    spent = cursor.get("spent") or {}
    return int(spent.get("requests", 0)) if spent.get("run_id") == run_id else 0


def _remember_spent(run: IngestRun, requests: int) -> None:
    """Add the requests made to the saved cursor as landed (not this attempt's copy, which may be ahead)."""
    saved = dict(run.cursor() or {})
    saved["spent"] = {"run_id": run.run_id, "requests": requests}
    run.land(RAW_PAPERS, [], cursor=saved, watermark=_watermark(saved))


@dataclass
class _Walk:
    """One run's reading of the listing: what it has seen, and how far the cursor may move."""

    run: IngestRun
    catalog: paperswithcode.Catalog
    cursor: dict[str, Any]
    backfill: str | None
    """The backfill's label, or None for a nightly run."""
    end: date
    seen: set[str] = field(default_factory=set)
    gap: bool = False
    """A window came back incomplete: from there on the cursor stays, so the next run reads it again."""
    done_through: str | None = None

    def read(self, start: date, end: date, *, resume: tuple[date, int] | None) -> None:
        """Every page from `start` to `end`, landed batch by batch; at the budget, what is read lands first."""
        batch: list[RawRecord | Rejected] = []
        if resume is not None:
            self.run.detail["resumed_at"] = f"page {resume[1]} of the window {start.isoformat()}..{resume[0].isoformat()}"
        try:
            for page in paperswithcode.paper_pages(self.catalog, start, end, resume=resume):
                fresh = [item for item in page.items if self._first_time(item)]
                batch.extend(_complete(self.catalog, fresh))
                if page.truncated:
                    self.run.detail["truncated_days"].append(page.start.isoformat())
                if page.incomplete:
                    self.gap = True
                    self.run.detail["incomplete"].append(f"{page.start.isoformat()}..{page.end.isoformat()}")
                if len(batch) < LAND_ROWS and not page.last:
                    continue
                pending, batch = batch, []
                self._land(pending, after=page)
        except paperswithcode.BudgetExhausted:
            if batch:
                self._land(batch, after=None)
            raise

    def _first_time(self, item: RawRecord | Rejected) -> bool:
        """Overlapping windows and a shifting catalog can list a paper twice: keep its first copy."""
        if isinstance(item, Rejected):
            return True
        if item.key in self.seen:
            self.run.detail["repeated"] += 1
            return False
        self.seen.add(item.key)
        return True

    def _land(self, batch: list[RawRecord | Rejected], *, after: paperswithcode.PaperPage | None) -> None:
        """Land the batch's results, then its papers, with the cursor moved past `after` when all is read.

        A paper whose results were not all read (the budget ran out first, or an evaluations page
        stayed empty) is left out: raw does not hold it, so the next run finds it new and asks again,
        and the cursor stays where it was.
        """
        results, unfinished, exhausted = _results_for(self.run, self.catalog, batch)
        if any(paperswithcode.is_gap(item) for item in results):
            self.gap = True
        papers = [item for item in batch if not (isinstance(item, RawRecord) and item.key in unfinished)]
        moves = after is not None and not self.gap and exhausted is None and (after.last or self.backfill is not None)
        if moves:
            self._advance(after)
        self.run.land(RAW_RESULTS, results)
        self.run.land(RAW_PAPERS, papers, cursor=self.cursor if moves else None,
                      watermark=_watermark(self.cursor) if moves else None)
        self.run.requests = self.catalog.requests
        if exhausted is not None:
            raise exhausted

    def _advance(self, page: paperswithcode.PaperPage) -> None:
        """Everything up to `page` is read: say so in the cursor that lands with it.

        A nightly run moves `through` at the end of a window; a backfill also notes the next page
        of an unfinished window, so a budget smaller than a window still makes progress.
        """
        if page.last:
            self.done_through = page.end.isoformat()
        if self.backfill is None:
            self.cursor["through"] = max(self.cursor.get("through") or "", page.end.isoformat())
        elif page.last and page.end >= self.end:
            self.cursor.pop("backfill", None)  # finished: the same backfill run again reads it all afresh
        else:
            through = page.end if page.last else page.start - timedelta(days=1)
            at = None if page.last else {"end": page.end.isoformat(), "page": page.number + 1}
            self.cursor["backfill"] = {"window": self.backfill, "through": through.isoformat(), "at": at}


def _resume_point(cursor: dict, window: Window) -> tuple[date, int] | None:
    """The window end and page a stopped backfill of this very window continues from, if any."""
    saved = cursor.get("backfill") or {}
    at = saved.get("at")
    if not window.is_backfill or saved.get("window") != backfill_label(window) or not at:
        return None
    return date.fromisoformat(at["end"]), int(at["page"])


def _results_for(
    run: IngestRun, catalog: paperswithcode.Catalog, papers: list[RawRecord | Rejected]
) -> tuple[list[RawRecord | Rejected], set[str], paperswithcode.BudgetExhausted | None]:
    """Benchmark rows of the papers raw does not hold in this form yet and that downstream can use.

    Returns the rows, the keys of papers whose rows were not all read, and the budget's stop if it
    came first. An unchanged paper keeps the results fetched when it was new: the trailing re-scan
    then costs one listing request per page, not one more request per paper.
    """
    payloads = {item.key: item.payload for item in papers if isinstance(item, RawRecord)}
    wanted = [key for key in _new_or_changed(run.con, RAW_PAPERS, papers)
              if paperswithcode.wants_results(json.loads(payloads[key]))]
    results: list[RawRecord | Rejected] = []
    unfinished = set(wanted)
    for key in wanted:
        try:
            rows = list(paperswithcode.evaluation_records(catalog, key.removeprefix(paperswithcode.API_PREFIX)))
        except paperswithcode.BudgetExhausted as exc:
            return results, unfinished, exc
        results.extend(rows)
        if not any(paperswithcode.is_gap(row) for row in rows):
            unfinished.discard(key)
            run.detail["results_for"] += 1
    return results, unfinished, None


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


def import_archive(run: IngestRun, settings: Settings, window: Window) -> None:
    """The backfill's archive import alone: the pipeline runs it as a task of its own beside the months
    (`flows.parts`), which it runs with `pwc_import_archive` off."""
    try:
        _import_archive_once(run, settings, dict(run.cursor() or {}))
    finally:
        run.requests = run.detail.get("archive_requests", 0)


def _import_archive_once(run: IngestRun, settings: Settings, cursor: dict) -> None:
    """Land the `pwc-archive` datasets unless these very commits were imported before.

    Which files to download is asked of the Hub (one `dataset_info` per dataset), so a rerun on
    unchanged commits costs those three requests and downloads nothing.
    """
    endpoint, token = settings.hf_url.rstrip("/"), settings.token_value()
    datasets = paperswithcode.archive_datasets(endpoint, token, timeout=settings.http_timeout_seconds)
    run.detail["archive_requests"] = len(datasets)
    fingerprint = paperswithcode.archive_fingerprint({name: dataset.commit for name, dataset in datasets.items()})
    if cursor.get("archive") == fingerprint:
        run.detail["archive"] = "already imported"
        return
    with tempfile.TemporaryDirectory(prefix="pwc-archive-") as folder:
        archive = paperswithcode.download_archive(endpoint, token, datasets, Path(folder),
                                                  timeout=settings.http_timeout_seconds)
        run.detail["archive_requests"] += 2 * sum(len(paths) for paths in archive.files.values())
        run.detail["archive_files"] = {name: len(dataset.files) for name, dataset in datasets.items()}
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
    if through:
        return f"published through {through}"
    if cursor.get("backfill"):
        return f"backfill {cursor['backfill']['window']} read through {cursor['backfill']['through']}"
    return "archive imported" if cursor.get("archive") else "backfill read"
