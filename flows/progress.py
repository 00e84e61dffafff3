"""A progress artifact per source ingest, so a long backfill shows how far it is in the Prefect UI.

The ingest reports through `IngestRun`: every landed page refreshes the counts, and an ingester that
knows its total (rows in a file, results of a query) calls `run.progress(done, total)` for a
percentage. Updates are throttled: a page lands in milliseconds, the API need not hear of each one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from warehouse.raw import LoadCounts

MIN_INTERVAL_SECONDS = 5.0


def progress_key(source: str) -> str:
    """The artifact's key (lowercase, digits and dashes only: `open_llm_leaderboard` becomes
    `census-progress-open-llm-leaderboard`), so the Artifacts page lists its history."""
    return f"census-progress-{source.replace('_', '-')}"


class IngestProgress:
    """One artifact per source per run, created at 0 % and moved as its parts report, at most every few seconds.

    A backfill cut into months moves it month by month: each part is an equal share of the bar, and
    the counts shown are the source's so far (earlier parts plus the running one).
    """

    def __init__(
        self,
        source: str,
        label: str,
        *,
        parts: int = 1,
        min_interval_seconds: float = MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        create: Callable[..., UUID] = create_progress_artifact,
        update: Callable[..., UUID] = update_progress_artifact,
    ) -> None:
        self.source, self.label, self.parts = source, label, max(parts, 1)
        self.percent = 0.0
        self.parts_done = 0
        self.part_label: str | None = None
        self.before = LoadCounts()
        self._min_interval, self._clock, self._update = min_interval_seconds, clock, update
        self._last = clock()
        self.artifact_id = create(progress=0.0, key=progress_key(source), description=self._describe(LoadCounts()))

    def start_part(self, label: str, before: LoadCounts) -> None:
        """A part begins; `before` is what the source's earlier parts loaded."""
        self.part_label, self.before = label, before

    def __call__(self, counts: LoadCounts, percent: float | None = None) -> None:
        """The running part's latest counts, and its own percentage when it knows one."""
        if percent is not None:
            share = min(max(percent, 0.0), 100.0) / self.parts
            self.percent = 100.0 * self.parts_done / self.parts + share
        now = self._clock()
        if now - self._last >= self._min_interval:
            self._last = now
            self._update(self.artifact_id, progress=self.percent, description=self._describe(self._total(counts)))

    def part_done(self, total: LoadCounts) -> None:
        """A part ended (or was skipped); `total` is the source's counts so far."""
        self.parts_done += 1
        self.percent = 100.0 * self.parts_done / self.parts
        now = self._clock()
        if self.parts_done < self.parts and now - self._last >= self._min_interval:
            self._last = now
            self._update(self.artifact_id, progress=self.percent, description=self._describe(total))

    def finish(self, counts: LoadCounts, status: str) -> None:
        """The final state whatever the outcome: 100 % on success, where it stopped otherwise."""
        if status == "success":
            self.percent = 100.0
        self.part_label = None
        self._update(self.artifact_id, progress=self.percent, description=self._describe(counts, status))

    def _total(self, counts: LoadCounts) -> LoadCounts:
        total = LoadCounts()
        total.add(self.before)
        total.add(counts)
        return total

    def _describe(self, counts: LoadCounts, status: str = "running") -> str:
        where = ""
        if self.parts > 1:
            where = f", {self.parts_done} of {self.parts} parts done" + (
                f", now {self.part_label}" if self.part_label and status == "running" else "")
        return f"{self.source} ({self.label}), {status}{where}: {counts.summary()}"


class RunProgress:
    """The run as a whole: the share of its ingest tasks done, so the bar moves even when no source knows its total."""

    KEY = "census-run-progress"

    def __init__(
        self,
        parts: dict[str, int],
        label: str,
        *,
        min_interval_seconds: float = MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        create: Callable[..., UUID] = create_progress_artifact,
        update: Callable[..., UUID] = update_progress_artifact,
    ) -> None:
        """`parts`: each source with the number of ingest tasks it plans, in the order they run."""
        self.parts, self.label, self._update = dict(parts), label, update
        self._min_interval, self._clock = min_interval_seconds, clock
        self._last = clock()
        self.parts_done: dict[str, int] = {source: 0 for source in parts}
        self.done: list[str] = []
        self.finished: set[str] = set()
        self.artifact_id = create(progress=0.0, key=self.KEY, description=self._describe())

    def replan(self, source: str, parts: int) -> None:
        """A source changed its plan (the Hub's months merged into one walk): the bar keeps its meaning."""
        self.parts[source] = parts

    def part_done(self, source: str) -> None:
        """A task ended: a backfill of many short months tells the API at most every few seconds."""
        self.parts_done[source] += 1
        now = self._clock()
        if now - self._last >= self._min_interval:
            self._last = now
            self._update(self.artifact_id, progress=self._percent(), description=self._describe())

    def source_done(self, source: str, status: str) -> None:
        self.done.append(f"{source} {status}")
        self.finished.add(source)
        self.parts_done[source] = self.parts[source]
        self._last = self._clock()
        self._update(self.artifact_id, progress=self._percent(), description=self._describe())

    def _percent(self) -> float:
        total = sum(self.parts.values())
        return 100.0 * sum(self.parts_done.values()) / total if total else 100.0

    def _describe(self) -> str:
        total, finished = sum(self.parts.values()), sum(self.parts_done.values())
        left = [source for source in self.parts if source not in self.finished]
        return (f"{self.label}: {finished} of {total} ingest task(s) done, {len(self.done)} of {len(self.parts)} source(s)"
                + (f" ({', '.join(self.done)})" if self.done else "")
                + (f"; now {left[0]}" if left else "; then rebuild and publish"))
