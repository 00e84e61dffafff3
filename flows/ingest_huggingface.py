"""Hugging Face Hub: new models each night, a rolling popularity refresh, and backfills by creation time.

The listing sorts newest first only, so every pass is a walk down from the top that stops at a
creation time. A night makes at most two walks within its request budget:

1. new models: down to the watermark (the newest creation time of the last finished walk) minus
   `OVERLAP`, then on down to the refresh horizon when no refresh is pending, re-reading likes and
   downloads of models created in the last `hf_refresh_days` (never further back than the nightly
   runs have covered, so a refresh never turns into an unasked backfill);
2. a refresh cut short by the budget on an earlier night, resumed where it stopped.

Each page lands with the cursor that follows it in one transaction: a killed run, or one that
stops at its budget, resumes from the saved next-page URL. Cursor (one JSON dict):
`watermark`, `covered_since` (ISO times), `new` and `refresh` (walks in progress:
`next_url`, `stop`, `new_stop`, `top`), `backfill` (an API backfill in progress, by window),
`spent` (requests this run id has made, so a retried attempt keeps to the run's budget).
"""

from __future__ import annotations

import logging
import sys
from datetime import date, datetime, time, timedelta, timezone
from itertools import islice
from typing import Any

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import huggingface
from sources.records import SourceUnavailable

RAW_TABLE = "raw_huggingface__models"
OVERLAP = timedelta(hours=2)
"""How far below the watermark a nightly walk reaches: a model created while the last run listed,
or indexed late, is older than the newest one that run saw but was not on its pages."""
HUB_STATS_MIN_AGE = timedelta(days=30)
"""`auto` reads windows that ended longer ago than this from hub-stats: the listing would page past
every model created since, and hub-stats (rebuilt daily) has settled by then."""

Walk = dict[str, Any]


def ingest_huggingface(run: IngestRun, settings: Settings, window: Window) -> None:
    """The nightly walks, or a backfill of `window` by the path `hf_backfill_via` picks."""
    listing = huggingface.HubListing(
        settings.hf_url,
        token=settings.token_value(),
        max_requests=settings.hf_max_requests,
        timeout=settings.http_timeout_seconds,
    )
    ingest_with(run, settings, window, listing, now=datetime.now(timezone.utc))


def ingest_with(
    run: IngestRun, settings: Settings, window: Window, listing: huggingface.HubListing, *, now: datetime
) -> None:
    """`ingest_huggingface` with the listing and the clock passed in, for tests and the benchmark.

    The budget holds per run, not per attempt: when the pipeline retries this task after a transient
    failure (same run id), the requests the failed attempt made are taken off what is left.
    """
    cursor = dict(run.cursor() or {})
    for name in ("new", "refresh"):
        if name in cursor and not listing.owns(cursor[name]["next_url"]):
            cursor.pop(name)  # saved against another endpoint: start that walk afresh
    spent = cursor.get("spent") or {}
    already = spent.get("requests", 0) if spent.get("run_id") == run.run_id else 0
    run.detail.update({"budget": listing.max_requests, "stopped_at_budget": False, "spent_by_earlier_attempts": already})
    listing.max_requests = max(listing.max_requests - already, 0)
    try:
        if window.is_backfill:
            _backfill(run, settings, window, listing, cursor, now=now)
        else:
            _nightly(run, settings, listing, cursor, now=now)
    except huggingface.BudgetExhausted:
        run.detail["stopped_at_budget"] = True
        _logger().warning("huggingface: stopped at the budget of %d requests; the next run continues", listing.max_requests)
    finally:
        run.requests = listing.requests + run.detail.get("hub_stats_requests", 0)
        run.detail["rate_limit_wait_seconds"] = round(listing.waited_seconds, 1)
        # Pages update the cursor only as they land, so it still says where this attempt got to.
        cursor["spent"] = {"run_id": run.run_id, "requests": already + run.requests}
        run.land(RAW_TABLE, [], cursor=cursor, watermark=_label(cursor))


def _nightly(run: IngestRun, settings: Settings, listing: huggingface.HubListing, cursor: dict, *, now: datetime) -> None:
    watermark = _time(cursor.get("watermark"))
    new_stop = watermark - OVERLAP if watermark else now - timedelta(days=settings.hf_lookback_days)
    covered_since = min(filter(None, [_time(cursor.get("covered_since")), new_stop]))
    horizon = max(now - timedelta(days=settings.hf_refresh_days), covered_since) if settings.hf_refresh_days else None
    if "new" in cursor:
        _walk(run, listing, cursor, "new")
    else:
        stop = new_stop if "refresh" in cursor or horizon is None else min(new_stop, horizon)
        cursor["new"] = {"next_url": listing.first_url(), "stop": stop.isoformat(), "new_stop": new_stop.isoformat(),
                         "top": None}
        _walk(run, listing, cursor, "new")
    if "refresh" in cursor:
        _walk(run, listing, cursor, "refresh")
    run.detail["refresh_since"] = horizon.isoformat() if horizon else None


def _walk(run: IngestRun, listing: huggingface.HubListing, cursor: dict, name: str) -> None:
    """`_walk_once`, started again from the top if the Hub refuses the saved cursor it resumes from.

    Without this, a cursor the Hub no longer accepts would fail every night from then on.
    """
    try:
        _walk_once(run, listing, cursor, name)
    except huggingface.CursorRejected as exc:
        _logger().warning("huggingface: %s; the %s walk starts again from the newest model", exc, name)
        run.detail["cursor_restarts"] = run.detail.get("cursor_restarts", 0) + 1
        cursor[name]["next_url"] = listing.first_url()
        _walk_once(run, listing, cursor, name)


def _walk_once(run: IngestRun, listing: huggingface.HubListing, cursor: dict, name: str) -> None:
    """Walk `cursor[name]` down the listing, landing each page with the cursor after it.

    A `new` walk moves the watermark once it passes its `new_stop`, and from there on (if its
    `stop` is lower) carries on as the `refresh` walk.
    """
    state: Walk = cursor[name]
    stop = _time(state["stop"])
    phase: str | None = name
    for page in huggingface.walk(listing, state["next_url"], stop_before=stop):
        if state["top"] is None and page.newest_created_at is not None:
            state["top"] = page.newest_created_at.isoformat()
        state["next_url"] = page.next_url
        run.detail[f"{phase}_pages"] = run.detail.get(f"{phase}_pages", 0) + 1
        passed_new_stop = page.done or (page.oldest_created_at is not None
                                        and page.oldest_created_at < _time(state["new_stop"]))
        if phase == "new" and passed_new_stop:
            # Every model down to the watermark's overlap has landed with this page: the watermark moves.
            if state["top"]:
                cursor["watermark"] = max(filter(None, [cursor.get("watermark"), state["top"]]))
            cursor["covered_since"] = min(filter(None, [cursor.get("covered_since"), state["new_stop"]]))
            cursor.pop("new", None)
            # A walk that reaches lower than the watermark is the night's refresh from here on.
            phase = "refresh" if state["stop"] < state["new_stop"] else None
        if phase is not None:
            if page.done:
                cursor.pop(phase, None)
            else:
                cursor[phase] = state
        run.land(RAW_TABLE, page.items, cursor=cursor, watermark=_label(cursor))


def _backfill(run: IngestRun, settings: Settings, window: Window, listing: huggingface.HubListing, cursor: dict,
              *, now: datetime) -> None:
    """Load models created in the window, from hub-stats or the listing."""
    until = window.until or now.date()
    via = settings.hf_backfill_via
    if via == "auto":
        via = "hub-stats" if _start(until) <= now - HUB_STATS_MIN_AGE else "api"
    run.detail["backfill_via"] = via
    if via == "hub-stats":
        try:
            _backfill_from_hub_stats(run, settings, window.since, until)
            return
        except huggingface.HubStatsUnavailable as exc:
            if settings.hf_backfill_via == "hub-stats":
                raise SourceUnavailable(str(exc), url=settings.hf_url) from exc
            run.detail.update({"backfill_via": "api", "hub_stats_unavailable": str(exc)})
            _logger().warning(
                "huggingface: hub-stats unusable (%s); falling back to the api listing, which pages past every model "
                "created since %s (one request per 1,000 models, at most %d requests this run)",
                exc, until, listing.max_requests,
            )
    try:
        _backfill_from_api(run, listing, cursor, window.since, until)
    except huggingface.CursorRejected as exc:
        _logger().warning("huggingface: %s; the backfill starts again from the newest model", exc)
        cursor.pop("backfill", None)
        _backfill_from_api(run, listing, cursor, window.since, until)
    if "hub_stats_unavailable" in run.detail:
        run.detail["fallback_requests"] = listing.requests
        _logger().warning("huggingface: the api fallback used %d requests (after %d on hub-stats), paging past %d "
                          "newer models", listing.requests, run.detail.get("hub_stats_requests", 0),
                          run.detail.get("paged_past_newer", 0))


def _backfill_from_api(run: IngestRun, listing: huggingface.HubListing, cursor: dict, since: date, until: date) -> None:
    """Walk the listing from the top, paging past newer models, landing those created in the window.

    Progress is saved per window: the same backfill run again continues where the budget stopped it.
    The watermark is left as it is.
    """
    label = f"{since.isoformat()}..{until.isoformat()}"
    saved = cursor.get("backfill") or {}
    start = saved["next_url"] if saved.get("window") == label and listing.owns(saved.get("next_url", "")) else listing.first_url()
    skipped = 0
    for page in huggingface.walk(listing, start, stop_before=_start(since), skip_from=_start(until)):
        skipped += page.skipped
        if page.done:
            cursor.pop("backfill", None)
        else:
            cursor["backfill"] = {"window": label, "next_url": page.next_url}
        run.land(RAW_TABLE, page.items, cursor=cursor, watermark=_label(cursor))
        run.detail["paged_past_newer"] = skipped


def _backfill_from_hub_stats(run: IngestRun, settings: Settings, since: date, until: date) -> None:
    """Download (or reuse today's cached) `models.parquet` and land the window's rows, a page at a time.

    Its requests are counted as `hf_hub_download` makes them: one HEAD when the cached copy is
    current, HEAD and GET when it downloads, one when it fails (the client's own retries inside
    are not visible to us).
    """
    run.detail["hub_stats_requests"] = 1
    stats = huggingface.download_hub_stats(settings.hf_url, settings.token_value())
    run.detail.update({"hub_stats_requests": stats.requests, "hub_stats_bytes": stats.bytes})
    items = huggingface.hub_stats_records(stats.path, since, until)
    rows = 0
    while page := list(islice(items, huggingface.PAGE_SIZE)):
        run.land(RAW_TABLE, page)
        rows += len(page)
    _logger().info("huggingface: hub-stats %s..%s: %d rows from a %d-byte file, %d requests",
                   since, until, rows, stats.bytes, stats.requests)


def _label(cursor: dict) -> str:
    return f"created through {cursor['watermark']}" if cursor.get("watermark") else ""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow, this module's logger when called plainly (tests, bench)."""
    if "prefect" not in sys.modules:  # no flow can be running: skip Prefect's seconds-long import
        return logging.getLogger(__name__)
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
