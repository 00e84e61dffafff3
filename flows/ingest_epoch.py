"""Epoch AI: download the snapshot (unless unchanged since the last run) and land every row."""

from __future__ import annotations

from itertools import islice

import requests

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import epoch
from sources.polite_http import redact
from sources.records import SourceError

RAW_TABLE = "raw_epoch__models"
PAGE_ROWS = 1_000


def ingest_epoch(run: IngestRun, settings: Settings, window: Window) -> None:
    """Epoch ships whole snapshots, so every run (nightly or backfill) reads the whole file.

    The window does not filter rows here: staging keeps every model, and the views pick dates.
    """
    cursor = run.cursor() or {}
    same_url = cursor.get("url") == settings.epoch_url
    with requests.Session() as session:
        download = epoch.fetch(
            settings.epoch_url,
            session=session,
            timeout=settings.http_timeout_seconds,
            # A backfill re-reads the file even when unchanged: it is how a user repairs a warehouse.
            etag=cursor.get("etag") if same_url and not window.is_backfill else None,
            last_modified=cursor.get("last_modified") if same_url and not window.is_backfill else None,
        )
    run.requests += 1
    run.detail.update({"bytes": download.bytes_read, "not_modified": download.not_modified})
    if download.not_modified:
        return
    next_cursor = {"url": settings.epoch_url, "etag": download.etag, "last_modified": download.last_modified}
    watermark = download.last_modified or download.etag or "snapshot loaded"
    last = None
    with download.body as body:
        items = epoch.read_records(body, settings.epoch_url)
        while page := list(islice(items, PAGE_ROWS)):
            run.land(RAW_TABLE, page)
            last = page[-1]
    if epoch.ends_cut_short(last):
        # The rows before the cut have landed; without this, the saved ETag would answer "unchanged"
        # to every later run, and the rest of the file would never be read.
        raise SourceError("the file ended inside a record (a truncated download): the rows before it are kept, "
                          "and the next run reads the whole file again", url=redact(settings.epoch_url))
    # The cursor moves only once the whole snapshot has landed: a half-read file is read again.
    run.land(RAW_TABLE, [], cursor=next_cursor, watermark=watermark)
