"""What every source's ingest shares: its window, its bookkeeping, and landing pages with their cursor.

A source's ingest (`flows/ingest_<source>.py`) fetches pages from its client and hands each one to
`IngestRun.land`, which commits the page, its rejects and the cursor after it in one transaction:
a run killed between two pages loses nothing, and the next run resumes from the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from sources.records import RawRecord, Rejected
from warehouse import runs
from warehouse.raw import LoadCounts, land_page, transaction


@dataclass(frozen=True)
class Window:
    """The dates a run covers: `since` None means incremental, from the source's saved cursor."""

    since: date | None = None
    until: date | None = None

    @property
    def is_backfill(self) -> bool:
        return self.since is not None

    def label(self) -> str:
        if not self.is_backfill:
            return "incremental"
        return f"{self.since.isoformat()}..{(self.until or date.today()).isoformat()}"


@dataclass
class IngestRun:
    """One source's share of one run: counts, requests, and the connection pages land on."""

    con: duckdb.DuckDBPyConnection
    source: str
    run_id: str
    counts: LoadCounts = field(default_factory=LoadCounts)
    requests: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    on_progress: Callable[[LoadCounts, float | None], None] | None = None
    """Told the counts after each page (and a percentage via `progress`); the flow shows them as an artifact."""

    def progress(self, done: float, total: float) -> None:
        """Say how far a long ingest is when the source knows its total (rows in a file, results of a query)."""
        if self.on_progress is not None and total > 0:
            self.on_progress(self.counts, 100.0 * done / total)

    def land(
        self,
        raw_table: str,
        items: Iterable[RawRecord | Rejected],
        *,
        cursor: dict[str, Any] | None = None,
        watermark: str | None = None,
    ) -> LoadCounts:
        """Land one page (records and rejects) and, with it, the cursor that follows it."""
        records: list[RawRecord] = []
        rejected: list[Rejected] = []
        for item in items:
            (records if isinstance(item, RawRecord) else rejected).append(item)
        with transaction(self.con):
            page = land_page(self.con, raw_table, records, run_id=self.run_id)
            page.rejected = runs.record_rejects(self.con, self.source, rejected, run_id=self.run_id)
            page.fetched += page.rejected
            if cursor is not None:
                runs.set_cursor(self.con, self.source, cursor, watermark=watermark or "", run_id=self.run_id)
        self.counts.add(page)
        if self.on_progress is not None:
            self.on_progress(self.counts, None)
        return page

    def cursor(self) -> dict[str, Any] | None:
        return runs.get_cursor(self.con, self.source)


@dataclass(frozen=True)
class SourceOutcome:
    """How one source's ingest ended, for the CLI's lines and the run's table artifact."""

    source: str
    status: str
    counts: LoadCounts
    requests: int = 0
    url: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"
