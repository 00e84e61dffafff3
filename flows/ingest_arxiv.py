"""arXiv: papers by submission-date window from the API, then the day's new versions from the RSS feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

import duckdb

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import arxiv

RAW_TABLE = "raw_arxiv__papers"
OVERLAP = timedelta(days=4)
"""A nightly run re-lists this much before its watermark: arXiv announces a paper up to a long
weekend after its submission, and the API shows it only from then on."""
PENDING_DAYS = 7
"""How long an announced version the API does not serve yet is asked for again, night after night."""
MISSING_SHOWN = 20


def listing_range(window: Window, cursor: dict, *, now: datetime, lookback_days: int) -> tuple[datetime, datetime]:
    """The submission times this run lists, [since, until) in UTC.

    A backfill lists its window (`until` is the day after its last day). A nightly run lists from
    its watermark minus `OVERLAP`, or `lookback_days` back on its first run, up to now.
    """
    if window.is_backfill:
        until = _midnight(window.until) if window.until else now
        return _midnight(window.since), min(until, now)
    through = cursor.get(arxiv.CURSOR_FIELD)
    if through is None:
        return now - timedelta(days=lookback_days), now
    return datetime.fromisoformat(through) - OVERLAP, now


def ingest_arxiv(run: IngestRun, settings: Settings, window: Window) -> None:
    """List the window page by page; on a nightly run, then fetch the versions the RSS announced.

    Each page lands in its own transaction. Only a nightly run moves the watermark, with the
    listing's last page; a backfill leaves it alone, so a backfill never makes a nightly skip days,
    but it records each finished window, so the same backfill run again after a kill goes on from there.
    """
    cursor = dict(run.cursor() or {})
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    since, until = listing_range(window, cursor, now=now, lookback_days=settings.arxiv_lookback_days)
    progress = cursor.get("backfill") or {}
    if window.is_backfill and progress.get("window") == window.label():
        # The same backfill was stopped part-way: its finished windows need not be listed again.
        since = max(since, datetime.fromisoformat(progress["done_until"]))
    run.detail.update({"listing": f"{since:%Y-%m-%d %H:%M}..{until:%Y-%m-%d %H:%M}", "windows": 0,
                       "truncated_windows": []})
    client = arxiv.ArxivClient(
        settings.arxiv_url,
        settings.arxiv_rss_url,
        delay_seconds=settings.arxiv_delay_seconds,
        timeout=settings.http_timeout_seconds,
        # Backoff starts at the delay: 3 s, 6 s, 12 s against arXiv; a local mirror at delay 0 retries at once.
        backoff_seconds=settings.arxiv_delay_seconds,
    )
    try:
        with client:
            for listed in arxiv.listing_pages(client, settings.arxiv_categories, since, until, cap=arxiv.RESULT_CAP):
                run.detail["windows"] += int(listed.last_of_window)
                if listed.truncated and listed.last_of_window:
                    run.detail["truncated_windows"].append(f"{listed.since:%Y-%m-%d %H:%M}")
                saves = listed.last_of_window and (window.is_backfill or listed.last)
                if window.is_backfill and listed.last:
                    cursor.pop("backfill", None)
                elif window.is_backfill and listed.last_of_window:
                    cursor["backfill"] = {"window": window.label(), "done_until": listed.until.isoformat()}
                elif listed.last:
                    cursor[arxiv.CURSOR_FIELD] = until.isoformat()
                run.land(RAW_TABLE, listed.page.items, cursor=cursor if saves else None,
                         watermark=_watermark(cursor) if saves else None)
                run.requests = client.requests
            if not window.is_backfill:
                land_new_versions(run, client, settings.arxiv_categories, cursor, today=now.date())
    finally:
        run.requests = client.requests


def land_new_versions(
    run: IngestRun, client: arxiv.ArxivClient, categories: Sequence[str], cursor: dict, *, today: date
) -> None:
    """Fetch, by id, every paper the RSS announced in a newer version than the warehouse holds.

    Date windows filter on a paper's first version, so new versions of older papers (`replace`
    announcements), and cross-lists of papers first submitted elsewhere, reach us only this way.
    The API can lag the announcement: a version it does not serve yet stays pending in the cursor
    and is asked for again on the next runs, for up to `PENDING_DAYS`.
    """
    feed = client.announcements(categories)
    announced: dict[str, int] = {}
    for item in feed.items:
        announced[item.arxiv_id] = max(item.version, announced.get(item.arxiv_id, 0))
    pending = {key: value for key, value in (cursor.get("pending_versions") or {}).items()
               if date.fromisoformat(value["since"]) >= today - timedelta(days=PENDING_DAYS)}
    for arxiv_id, value in pending.items():
        announced[arxiv_id] = max(value["version"], announced.get(arxiv_id, 0))
    held = held_versions(run.con, list(announced))
    wanted = [arxiv_id for arxiv_id, version in announced.items() if held.get(arxiv_id, 0) < version]
    missing: list[str] = []
    for found in arxiv.id_pages(client, wanted):
        missing.extend(found.missing)
        run.land(RAW_TABLE, found.page.items)
        run.requests = client.requests
    held = held_versions(run.con, wanted)
    cursor["pending_versions"] = {
        arxiv_id: {"version": announced[arxiv_id], "since": pending.get(arxiv_id, {}).get("since", today.isoformat())}
        for arxiv_id in wanted
        if held.get(arxiv_id, 0) < announced[arxiv_id]
    }
    cursor["rss_published"] = feed.published
    run.detail.update({
        "rss_items": len(feed.items),
        "rss_replaced": sum(item.announce_type.startswith("replace") for item in feed.items),
        "versions_fetched": len(wanted),
        "versions_pending": len(cursor["pending_versions"]),
        "missing_ids": missing[:MISSING_SHOWN],
        "missing_count": len(missing),
    })
    run.land(RAW_TABLE, [], cursor=cursor, watermark=_watermark(cursor))


def held_versions(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, int]:
    """The arXiv version (`vN` of the entry id) of each paper's latest landed payload."""
    if not ids:
        return {}
    rows = con.execute(
        f"""
        select source_key, try_cast(regexp_extract(payload ->> '$.id[0]', 'v([0-9]+)$', 1) as integer)
        from {RAW_TABLE}_latest
        where source_key in (select unnest($ids))
        """,
        {"ids": ids},
    ).fetchall()
    return {key: version or 0 for key, version in rows}


def _watermark(cursor: dict) -> str:
    """What `census status` shows: how far the nightly listing got, and the last RSS day read."""
    through = cursor.get(arxiv.CURSOR_FIELD)
    listed = f"submitted through {datetime.fromisoformat(through):%Y-%m-%d %H:%M} UTC" if through else "no nightly run yet"
    rss = f"RSS of {cursor['rss_published']}" if cursor.get("rss_published") else "no RSS day read"
    progress = f"; backfill done until {cursor['backfill']['done_until'][:16]}" if cursor.get("backfill") else ""
    return f"{listed}; {rss}{progress}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)
