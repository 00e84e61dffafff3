"""How one source's share of a run is cut into task runs, and how their bookkeeping adds up.

A nightly run is one task per source. A backfill of a listing source (arXiv, Papers With Code, the
Hub read from hub-stats) is one task per calendar month, the first and last cut where the window
says: a failure costs one month, the UI shows the backfill month by month, and the same backfill
run again skips the months an earlier one completed. A source whose backfill is one download
(Epoch, the Open LLM Leaderboard archives, the Papers With Code archive import) stays one task, and
so does the Hub's listing path, which can only start at the newest model: one walk down through
every month beats one walk per month.

`ingestion_runs` keeps one row per source per run whatever the split: each part adds its counts to
what the parts before it recorded, and `detail.parts` keeps each part's own outcome, which is also
where the next backfill learns which months are complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import duckdb

from flows.ingest import SourceOutcome, Window
from flows.ingest_huggingface import HUB_STATS_MIN_AGE
from flows.settings import Settings
from warehouse import runs
from warehouse.raw import LoadCounts

MONTHLY_SOURCES = frozenset({"arxiv", "paperswithcode", "huggingface"})
"""Sources whose backfill lists by date, so a month is a unit of work of its own."""
SETTLED = timedelta(days=7)
"""A month counts as complete only if its part ran this long after the month ended: arXiv announces
a paper up to a long weekend after submission, and catalogs index late; a month loaded sooner is
loaded again by the next backfill."""

Kind = Literal["ingest", "archive"]


@dataclass(frozen=True)
class Part:
    """One task run: a source, the window it loads, and the label its task run is named by."""

    source: str
    window: Window
    label: str
    kind: Kind = "ingest"
    monthly: bool = False
    """One calendar month (or the cut first or last one) of a backfill: skipped when already complete."""

    @property
    def task_run_name(self) -> str:
        return f"ingest-{self.source}-{self.label}"


def month_windows(window: Window, today: date) -> list[Window]:
    """The backfill window cut at each first of the month; an open end stays open in the last one."""
    assert window.since is not None, "only a backfill is cut into months"
    end = window.until or today
    windows: list[Window] = []
    start = window.since
    while start < end:
        next_month = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        windows.append(Window(start, next_month if next_month < end else window.until))
        start = next_month
    return windows


def span_label(window: Window, today: date) -> str:
    """`2023-03` for a window within one month, `2023-01..2023-06` across months (`until` exclusive)."""
    assert window.since is not None
    first = window.since.strftime("%Y-%m")
    last = ((window.until or today) - timedelta(days=1)).strftime("%Y-%m")
    return first if last <= first else f"{first}..{last}"


def plan_parts(source: str, window: Window, settings: Settings, *, now: datetime) -> list[Part]:
    """The task runs one source's share of the run is made of, in the order they run (oldest first)."""
    today = now.date()
    if not window.is_backfill:
        return [Part(source, window, today.isoformat())]
    if source not in MONTHLY_SOURCES:
        return [Part(source, window, span_label(window, today))]
    months = [Part(source, month, span_label(month, today), monthly=True) for month in month_windows(window, today)]
    if source == "huggingface":
        listed = [part for part in months if _hub_reads_listing(part.window, settings, now)]
        if listed:
            # Contiguous: a month is read from the listing only when it ended recently.
            months = months[: len(months) - len(listed)] + [merge_parts(listed, today)]
    if source == "paperswithcode" and settings.pwc_import_archive:
        months.append(Part(source, window, "archive", kind="archive"))
    return months


def _hub_reads_listing(window: Window, settings: Settings, now: datetime) -> bool:
    """What `flows.ingest_huggingface` decides for this window: the listing rather than hub-stats."""
    if settings.hf_backfill_via != "auto":
        return settings.hf_backfill_via == "api"
    end = datetime.combine(window.until or now.date(), datetime.min.time(), tzinfo=timezone.utc)
    return end > now - HUB_STATS_MIN_AGE


def merge_parts(parts: Sequence[Part], today: date) -> Part:
    """Consecutive parts as one task: the Hub's months once hub-stats turned out unusable."""
    window = Window(parts[0].window.since, parts[-1].window.until)
    return Part(parts[0].source, window, span_label(window, today))


def part_settings(part: Part, settings: Settings) -> Settings:
    """A month of Papers With Code lists papers only: the archive is imported by a part of its own."""
    if part.source == "paperswithcode" and part.kind == "ingest" and part.window.is_backfill:
        return settings.model_copy(update={"pwc_import_archive": False})
    return settings


def scope(source: str, settings: Settings) -> str:
    """What a month's content depends on besides its dates: a month loaded from another server, or
    for other arXiv categories, is not complete for this one."""
    if source == "arxiv":
        return f"{settings.arxiv_url} {','.join(settings.arxiv_categories)}"
    if source == "paperswithcode":
        return settings.pwc_url
    if source == "huggingface":
        return settings.hf_url
    return ""


# --- what earlier backfills completed ------------------------------------------------------------

RECORDED_PARTS_SQL = """
select detail -> '$.parts' as parts
from ingestion_runs
where source = $source and json_exists(detail, '$.parts')
"""


@dataclass(frozen=True)
class Completed:
    """Windows of a source that earlier runs loaded completely, for one scope."""

    windows: tuple[Window, ...] = ()

    def covers(self, window: Window) -> bool:
        return window.until is not None and any(
            done.since <= window.since and done.until is not None and window.until <= done.until
            for done in self.windows
        )


def completed_windows(con: duckdb.DuckDBPyConnection, source: str, scope_key: str) -> Completed:
    """Every month part of `source` recorded as complete (see `is_complete`) under `scope_key`."""
    windows = []
    for (parts,) in con.execute(RECORDED_PARTS_SQL, {"source": source}).fetchall():
        for part in json.loads(parts).values():
            if part.get("complete") and part.get("scope") == scope_key:
                since, until = part["window"].split("..")
                windows.append(Window(date.fromisoformat(since), date.fromisoformat(until)))
    return Completed(tuple(windows))


def is_complete(part: Part, status: str, detail: dict[str, Any], finished_at: datetime) -> bool:
    """A month loaded whole, long enough after it ended that nothing more will appear in it.

    Not complete: a failure, a stop at the request budget, a window the source answered only in
    part, a month with an open end (today's), or one that ended less than `SETTLED` before.
    """
    window = part.window
    return (
        part.monthly
        and status == "success"
        and window.until is not None
        and not detail.get("stopped_at_budget")
        and not detail.get("incomplete")
        and finished_at.date() >= window.until + SETTLED
    )


# --- one row per source per run, whatever the number of parts ------------------------------------


@dataclass
class SourceTally:
    """The parts of one source so far: what `ingestion_runs` shows, and the table artifact's row."""

    source: str
    label: str
    counts: LoadCounts = field(default_factory=LoadCounts)
    requests: int = 0
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each part's own outcome by its label, in the order they ran: status, window, counts, URL, error, detail."""

    @property
    def skipped(self) -> int:
        return sum(part["status"] == "skipped" for part in self.parts.values())

    @property
    def failures(self) -> list[tuple[str, dict[str, Any]]]:
        return [(label, part) for label, part in self.parts.items() if part["status"] not in ("success", "skipped")]

    def status(self) -> str:
        """`success`, or the first failure's status (`failed`, `unavailable: <reason>`)."""
        failures = self.failures
        return failures[0][1]["status"] if failures else "success"

    def url(self) -> str | None:
        failures = self.failures
        return failures[0][1].get("url") if failures else None

    def error(self) -> str | None:
        """The failed parts' reasons, each with its month when there are several parts."""
        failures = self.failures
        if not failures:
            return None
        if len(self.parts) == 1:
            return failures[0][1].get("error")
        return "; ".join(f"{label}: {part.get('error')}" for label, part in failures)

    def detail(self) -> dict[str, Any]:
        return {"window": self.label, "parts": self.parts}

    def outcome(self) -> SourceOutcome:
        status = self.status()
        short = "unavailable" if status.startswith("unavailable") else status
        return SourceOutcome(self.source, short, self.counts, self.requests, self.url(), self.error())

    def has(self, part: Part) -> bool:
        return part.label in self.parts


def add_part(
    tally: SourceTally,
    part: Part,
    *,
    status: str,
    counts: LoadCounts,
    requests: int,
    scope_key: str,
    url: str | None = None,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
    finished_at: datetime,
) -> SourceTally:
    """A new tally with `part` added: a retried part is added once, with its last attempt's counts."""
    total = LoadCounts()
    total.add(tally.counts)
    total.add(counts)
    own = dict(detail or {})
    recorded = {**own, "window": part.window.label(), "status": status, "scope": scope_key,
                "fetched": counts.fetched, "new": counts.new, "requests": requests, "url": url, "error": error,
                "complete": is_complete(part, status, own, finished_at)}
    return SourceTally(tally.source, tally.label, total, tally.requests + requests, {**tally.parts, part.label: recorded})


ROW_EXISTS_SQL = "select 1 from ingestion_runs where run_id = $run_id and source = $source"
RECORD_PART_SQL = """
update ingestion_runs set
    finished_at = case when $last then current_timestamp end,
    status = $status, fetched = $fetched, new = $new, changed = $changed, unchanged = $unchanged,
    rejected = $rejected, requests = $requests, url = $url, error = $error, detail = $detail::json
where run_id = $run_id and source = $source
"""


def record(con: duckdb.DuckDBPyConnection, run_id: str, tally: SourceTally, *, last: bool) -> None:
    """Write the source's row: `running` until its last part, then the outcome of all of them.

    The first write creates the row, so a run killed in its first part still shows `running`.
    """
    if not con.execute(ROW_EXISTS_SQL, {"run_id": run_id, "source": tally.source}).fetchone():
        runs.start_run(con, run_id, tally.source, tally.detail())
    counts = tally.counts
    con.execute(RECORD_PART_SQL, {
        "last": last, "status": tally.status() if last else "running",
        "fetched": counts.fetched, "new": counts.new, "changed": counts.changed, "unchanged": counts.unchanged,
        "rejected": counts.rejected, "requests": tally.requests, "url": tally.url(), "error": tally.error(),
        "detail": json.dumps(tally.detail()), "run_id": run_id, "source": tally.source,
    })


RECORDED_ROW_SQL = """
select fetched, new, changed, unchanged, rejected, requests, detail
from ingestion_runs
where run_id = $run_id and source = $source
"""


def recorded_tally(con: duckdb.DuckDBPyConnection, run_id: str, tally: SourceTally) -> SourceTally:
    """The source's row as its parts left it: also what a part stopped at its timeout recorded.

    Prefect reports a timed-out task as a bare `TimeoutError`; the part wrote its counts before it
    stopped, so the row, not the task's result, is what the next part adds to.
    """
    row = con.execute(RECORDED_ROW_SQL, {"run_id": run_id, "source": tally.source}).fetchone()
    if row is None:
        return tally
    *numbers, requests, detail = row
    counts = LoadCounts(*numbers)
    parts = (json.loads(detail) or {}).get("parts") or {}
    return SourceTally(tally.source, tally.label, counts, requests, parts)
