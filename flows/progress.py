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
    """Creates the artifact at 0 % and moves it as the ingest reports, at most every few seconds."""

    def __init__(
        self,
        source: str,
        label: str,
        *,
        min_interval_seconds: float = MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        create: Callable[..., UUID] = create_progress_artifact,
        update: Callable[..., UUID] = update_progress_artifact,
    ) -> None:
        self.source, self.label = source, label
        self.percent = 0.0
        self._min_interval, self._clock, self._update = min_interval_seconds, clock, update
        self._last = clock()
        self.artifact_id = create(progress=0.0, key=progress_key(source), description=self._describe(LoadCounts()))

    def __call__(self, counts: LoadCounts, percent: float | None = None) -> None:
        """The ingest's latest counts, and its percentage when it knows one."""
        if percent is not None:
            self.percent = min(max(percent, 0.0), 100.0)
        now = self._clock()
        if now - self._last >= self._min_interval:
            self._last = now
            self._update(self.artifact_id, progress=self.percent, description=self._describe(counts))

    def finish(self, counts: LoadCounts, status: str) -> None:
        """The final state whatever the outcome: 100 % on success, where it stopped otherwise."""
        if status == "success":
            self.percent = 100.0
        self._update(self.artifact_id, progress=self.percent, description=self._describe(counts, status))

    def _describe(self, counts: LoadCounts, status: str = "running") -> str:
        return f"{self.source} ({self.label}), {status}: {counts.summary()}"


class RunProgress:
    """The run as a whole: the share of its sources done, so the bar moves even when no source knows its total."""

    KEY = "census-run-progress"

    def __init__(
        self,
        sources: list[str],
        label: str,
        *,
        create: Callable[..., UUID] = create_progress_artifact,
        update: Callable[..., UUID] = update_progress_artifact,
    ) -> None:
        self.sources, self.label, self._update = list(sources), label, update
        self.done: list[str] = []
        self.artifact_id = create(progress=0.0, key=self.KEY, description=self._describe())

    def source_done(self, source: str, status: str) -> None:
        self.done.append(f"{source} {status}")
        percent = 100.0 * len(self.done) / len(self.sources) if self.sources else 100.0
        self._update(self.artifact_id, progress=percent, description=self._describe())

    def _describe(self) -> str:
        left = self.sources[len(self.done):]
        return (f"{self.label}: {len(self.done)} of {len(self.sources)} source(s) ingested"
                + (f" ({', '.join(self.done)})" if self.done else "")
                + (f"; next {left[0]}" if left else "; then rebuild and publish"))
