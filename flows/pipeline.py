"""The Prefect flows: nightly, backfill, and one ingest flow per source.

Each flow checks its parameters, takes the writer lock, ingests its sources one after another (a
failed source is recorded and the others go on), rebuilds everything downstream of raw, and
publishes the analysts' copy. Logic lives in plain functions; the tasks here only name, retry,
limit and log it. A source's share of a run is one ingest task, or for a backfill one task per
month (`flows.parts`); each is retried only on transient failures, with exponential backoff and
jitter, and stopped after `task_timeout_seconds`. The run holds the source's slot
(`flows.concurrency`) while its tasks run, so two runs never talk to the same service at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Annotated, Literal
from uuid import uuid4

import duckdb
import httpx
import httpx2
import requests
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS
from prefect.states import State
from prefect.task_engine import TaskRunTimeoutError
from prefect.tasks import Task, exponential_backoff
from pydantic import Field

from flows import OUR_LOGGERS
from flows.concurrency import SourceBusy, ensure_source_limits, source_slot
from flows.ingest import IngestRun, SourceOutcome, Window
from flows.ingest_arxiv import ingest_arxiv
from flows.ingest_epoch import ingest_epoch
from flows.ingest_huggingface import ingest_huggingface
from flows.ingest_open_llm_leaderboard import ingest_open_llm_leaderboard
from flows.ingest_paperswithcode import import_archive, ingest_paperswithcode
from flows.parts import (
    Completed,
    Part,
    SourceTally,
    add_part,
    completed_windows,
    merge_parts,
    part_settings,
    plan_parts,
    record,
    recorded_tally,
    scope,
)
from flows.progress import IngestProgress, RunProgress
from flows.report import publish_report_artifact
from flows.settings import Settings
from sources.polite_http import unreachable_reason
from sources.records import SourceError, SourceUnavailable
from transforms.rebuild import rebuild
from warehouse.connection import open_work_db, writer_lock
from warehouse.publish import publish
from warehouse.raw import LoadCounts

SourceName = Literal["epoch", "paperswithcode", "huggingface", "arxiv", "open_llm_leaderboard"]
"""Every source a run can name; the backfill form in the Prefect UI offers exactly these."""

INGESTERS: dict[str, Callable[[IngestRun, Settings, Window], None]] = {
    "arxiv": ingest_arxiv,
    "epoch": ingest_epoch,
    "huggingface": ingest_huggingface,
    "open_llm_leaderboard": ingest_open_llm_leaderboard,
    "paperswithcode": ingest_paperswithcode,
}
ALL_SOURCES: tuple[str, ...] = tuple(INGESTERS)
ARCHIVE_INGESTERS: dict[str, Callable[[IngestRun, Settings, Window], None]] = {"paperswithcode": import_archive}
"""A backfill's one-download part beside its months (see `flows.parts.plan_parts`)."""


class SourcesFailed(RuntimeError):
    """Some sources failed; the others were loaded, transformed and published all the same."""

    def __init__(self, outcomes: Sequence[SourceOutcome]) -> None:
        self.outcomes = list(outcomes)
        super().__init__("; ".join(failure_line(outcome) for outcome in outcomes))


def failure_line(outcome: SourceOutcome) -> str:
    """One line per failed source: source, URL, reason."""
    return f"{outcome.source}: {outcome.status} at {outcome.url or '(no URL)'}: {outcome.error}"


def validate_request(sources: Sequence[str], since: date | None, until: date | None, *, today: date) -> None:
    """Refuse a run that names unknown sources or an impossible window, before anything runs."""
    unknown = sorted(set(sources) - set(ALL_SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(ALL_SOURCES)}")
    if not sources:
        raise ValueError("no source named; known: " + ", ".join(ALL_SOURCES))
    if until is not None and since is None:
        raise ValueError("--until needs --since: a window has a start")
    if since is not None and since > today:
        raise ValueError(f"since {since} is in the future (today is {today}, UTC)")
    if until is not None and until > today:
        raise ValueError(f"until {until} is in the future (today is {today}, UTC)")
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since {since} must be before until {until}")


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
EXHAUSTED_RETRIES = re.compile(r" after \d+ attempts$")
"""How every source client words a transient failure (connection, 429, 5xx, an empty page mid-listing)
that outlasted its own quick retries; a failure it did not retry (other 4xx, an error feed) never says it."""


class IngestFailed(RuntimeError):
    """A source's ingest ended in error; carries the outcome (counts so far) for the run's table."""

    def __init__(self, outcome: SourceOutcome) -> None:
        self.outcome = outcome
        super().__init__(failure_line(outcome))


def is_transient(exc: BaseException | None) -> bool:
    """Worth asking again in a minute: the network or the service blinked, not our request or our code.

    A source's own client retries within seconds; this covers outages of minutes. A task timeout,
    a refused request (other 4xx), a changed service and a bug are never retried: the answer would be
    the same. Neither is a host that cannot be reached at all (offline, a wrong URL): the next night
    will tell, and a run without a network ends in seconds.
    """
    if unreachable_reason(exc) is not None:
        return False
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, IngestFailed):
            exc = exc.__cause__
            continue
        if isinstance(exc, (SourceUnavailable, TaskRunTimeoutError)):
            return False
        if isinstance(exc, SourceError):
            return bool(EXHAUSTED_RETRIES.search(str(exc)))
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int):
            return status in TRANSIENT_STATUS
        # Connection and timeout errors of the OS and of the HTTP clients the sources use (requests;
        # httpx under Prefect; httpx2, the fork huggingface_hub 2.x speaks through).
        if isinstance(exc, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                            httpx.TransportError, httpx2.TransportError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retry_if_transient(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's `retry_condition_fn`: retry the task only if what failed it was transient."""
    return is_transient(state.result(raise_on_failure=False))


def failed_outcome(source: str, run: IngestRun, exc: BaseException, *, timeout_seconds: float) -> SourceOutcome:
    """The outcome of an ingest that raised, in the words `census status` and the table show."""
    if isinstance(exc, SourceUnavailable):
        return SourceOutcome(source, "unavailable", run.counts, run.requests, exc.url, str(exc))
    if isinstance(exc, SourceError):
        return SourceOutcome(source, "failed", run.counts, run.requests, exc.url, str(exc))
    if isinstance(exc, asyncio.CancelledError):
        # Prefect stops a task at its timeout (or on cancellation) by raising a cancellation inside it.
        error = f"stopped at the task timeout of {timeout_seconds:.0f}s (MODEL_CENSUS_TASK_TIMEOUT_SECONDS) or cancelled"
        return SourceOutcome(source, "failed", run.counts, run.requests, None, error)
    return SourceOutcome(source, "failed", run.counts, run.requests, None, f"{type(exc).__name__}: {exc}")


@task(cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient, retry_jitter_factor=0.5)
def ingest_part(
    part: Part, settings: Settings, run_id: str, before: SourceTally, last: bool, progress: IngestProgress | None = None
) -> SourceTally:
    """Run one part of a source's ingest and add it to the source's row; raises `IngestFailed` (retried if transient).

    Every attempt adds itself to `before`, what the source's earlier parts recorded: pages landed by a
    failed attempt count as unchanged in the next one, so the counts still reconcile.
    """
    logger = get_run_logger()
    con = open_work_db(settings.work_db, memory_limit=settings.ingest_memory_limit)
    scope_key = scope(part.source, settings)
    run = IngestRun(con, part.source, run_id, detail={"window": part.window.label()}, on_progress=progress)
    if progress is not None:
        progress.start_part(part.label, before.counts)
    ingest = ARCHIVE_INGESTERS[part.source] if part.kind == "archive" else INGESTERS[part.source]
    try:
        try:
            ingest(run, part_settings(part, settings), part.window)
        except BaseException as exc:
            outcome = failed_outcome(part.source, run, exc, timeout_seconds=settings.task_timeout_seconds)
            if isinstance(exc, Exception) and not isinstance(exc, SourceError):
                # A bug or an unexpected answer: recorded in full for the log, in one line for the table.
                logger.error("%s: unexpected error\n%s", part.task_run_name, traceback.format_exc())
            status = "unavailable: " + (outcome.error or "") if outcome.status == "unavailable" else outcome.status
            after = add_part(before, part, status=status, counts=run.counts, requests=run.requests, scope_key=scope_key,
                             url=outcome.url, error=outcome.error, detail=run.detail, finished_at=utc_now())
            record(con, run_id, after, last=last)
            logger.error("%s: %s (%s); kept %s", part.task_run_name, outcome.status, outcome.error, run.counts.summary())
            if isinstance(exc, Exception):
                raise IngestFailed(outcome) from exc
            raise
        after = add_part(before, part, status="success", counts=run.counts, requests=run.requests, scope_key=scope_key,
                         detail=run.detail, finished_at=utc_now())
        record(con, run_id, after, last=last)
    finally:
        con.close()
    logger.info("%s: %s; %d request(s)", part.task_run_name, run.counts.summary(), run.requests)
    return after


def ingest_source(
    source: str, window: Window, settings: Settings, run_id: str, run_progress: RunProgress, *, now: datetime
) -> SourceTally:
    """Every part of one source, in order, holding the source's slot; a failed part does not stop the next.

    The same backfill run again skips the months an earlier run completed (see `flows.parts`).
    """
    logger = get_run_logger()
    parts = plan_parts(source, window, settings, now=now)
    run_progress.replan(source, len(parts))
    tally = SourceTally(source, window.label())
    scope_key = scope(source, settings)
    progress = IngestProgress(source, window.label(), parts=len(parts))
    con = open_work_db(settings.work_db, memory_limit=settings.ingest_memory_limit)
    try:
        completed = completed_windows(con, source, scope_key) if window.is_backfill else Completed()
        with source_slot(source, wait_seconds=settings.lock_wait_seconds):
            index = 0
            while index < len(parts):
                part, last = parts[index], index == len(parts) - 1
                if part.monthly and completed.covers(part.window):
                    tally = add_part(tally, part, status="skipped", counts=LoadCounts(), requests=0, scope_key=scope_key,
                                     finished_at=utc_now())
                    record(con, run_id, tally, last=last)
                    logger.info("%s: complete in an earlier run, skipped", part.task_run_name)
                else:
                    tally = run_part(con, part, settings, run_id, tally, last, progress)
                    rest = parts[index + 1:]
                    if source == "huggingface" and len(rest) > 1 and tally.parts[part.label].get("hub_stats_unavailable"):
                        # Every later month would fall back to a walk from the newest model: walk once instead.
                        parts = parts[: index + 1] + [merge_parts(rest, now.date())]
                        progress.parts = len(parts)
                        run_progress.replan(source, len(parts))
                        logger.warning("huggingface: hub-stats unusable; %s loads as one walk of the listing",
                                       parts[-1].task_run_name)
                progress.part_done(tally.counts)
                run_progress.part_done(source)
                index += 1
    except (SourceBusy, ConcurrencySlotAcquisitionError) as exc:
        # No slot (another run holds it, or its limit vanished): the source fails, the others go on.
        whole = Part(source, window, parts[0].label if len(parts) == 1 else "all")
        tally = add_part(tally, whole, status="failed", counts=LoadCounts(), requests=0, scope_key=scope_key,
                         error=str(exc), finished_at=utc_now())
        record(con, run_id, tally, last=True)
        logger.error("%s: %s", source, exc)
    finally:
        con.close()
    outcome = tally.outcome()
    progress.finish(tally.counts, outcome.status)
    run_progress.source_done(source, outcome.status)
    logger.info("%s: %s in %d part(s) (%d skipped as complete); %d request(s)",
                source, tally.counts.summary(), len(tally.parts), tally.skipped, tally.requests)
    return tally


def ingest_options(settings: Settings) -> dict[str, object]:
    """Retries (only of transient failures, see `retry_if_transient`) after exponentially growing
    delays, jittered by the task's `retry_jitter_factor`, and the timeout of each attempt."""
    return {
        "retries": settings.task_retries,
        "retry_delay_seconds": exponential_backoff(settings.task_retry_delay_seconds)(settings.task_retries),
        "timeout_seconds": settings.task_timeout_seconds,
    }


def run_part(con: duckdb.DuckDBPyConnection, part: Part, settings: Settings, run_id: str, before: SourceTally,
             last: bool, progress: IngestProgress) -> SourceTally:
    """One part as a Prefect task (named, retried, timed out), and the source's row as it left it (read on `con`)."""
    state: State = ingest_part.with_options(task_run_name=part.task_run_name, **ingest_options(settings))(
        part, settings, run_id, before, last, progress, return_state=True)
    result = state.result(raise_on_failure=False)
    after = recorded_tally(con, run_id, before)
    if not after.has(part):
        # The task ended before it could record itself (it never started, or Prefect stopped it).
        error = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else "ended unrecorded"
        after = add_part(before, part, status="failed", counts=LoadCounts(), requests=0,
                         scope_key=scope(part.source, settings), error=error, finished_at=utc_now())
        record(con, run_id, after, last=last)
    return after


@task(cache_policy=NO_CACHE, task_run_name="rebuild-curated")
def rebuild_curated(settings: Settings) -> None:
    logger = get_run_logger()
    con = open_work_db(settings.work_db, memory_limit=settings.rebuild_memory_limit)
    try:
        for built in rebuild(con, settings.release_inputs()):
            logger.info("%s", built.summary())
    finally:
        con.close()


@task(cache_policy=NO_CACHE, task_run_name="publish-warehouse")
def publish_warehouse(settings: Settings) -> None:
    con = open_work_db(settings.work_db)
    try:
        published = publish(con, settings.db)
    finally:
        con.close()
    get_run_logger().info("published %s: %s", settings.db, published.summary())


def our_loggers_at_prefect_level() -> None:
    """Give those of `OUR_LOGGERS` that `PREFECT_LOGGING_EXTRA_LOGGERS` names Prefect's logging level, unless
    their level is set already; for the rest of the process, as Prefect's own logging set-up is.

    Prefect hands the extra loggers its API handler but not its level, so ours kept the root logger's
    WARNING and their INFO lines reached neither the run log nor the console: a wait the Hub's rate
    limit asked for, an arXiv query split over the cap, how many members a night regrouped. Other
    loggers an operator names there keep Prefect's behaviour."""
    level = logging.getLogger("prefect.extra").level
    for name in set(OUR_LOGGERS) & set(PREFECT_LOGGING_EXTRA_LOGGERS.value()):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def run_pipeline(sources: Sequence[str], window: Window) -> list[SourceOutcome]:
    """The body every flow shares; raises `SourcesFailed` after publishing if a source failed."""
    our_loggers_at_prefect_level()
    validate_request(sources, window.since, window.until, today=utc_today())
    settings = Settings()
    logger = get_run_logger()
    run_id = str(runtime.flow_run.id or uuid4())
    now = utc_now()
    ensure_source_limits(sources)
    with writer_lock(settings.work_db, wait_seconds=settings.lock_wait_seconds):
        progress = RunProgress({source: len(plan_parts(source, window, settings, now=now)) for source in sources},
                               window.label())
        tallies = [ingest_source(source, window, settings, run_id, progress, now=now) for source in sources]
        rebuild_curated(settings)
        publish_warehouse(settings)
    create_table_artifact(key="census-run-counts", table=counts_table(tallies),
                          description=f"Per-source counts of run {run_id} ({window.label()})")
    publish_report_artifact(settings.db)
    outcomes = [tally.outcome() for tally in tallies]
    failed = [outcome for outcome in outcomes if not outcome.ok]
    logger.info("run %s: %d source(s) ok, %d failed", run_id, len(outcomes) - len(failed), len(failed))
    if failed:
        raise SourcesFailed(failed)
    return outcomes


def counts_table(tallies: Sequence[SourceTally]) -> list[dict[str, object]]:
    """One row per source, its parts added up: the same numbers as its `ingestion_runs` row."""
    rows = []
    for tally in tallies:
        outcome = tally.outcome()
        rows.append({
            "source": tally.source, "status": outcome.status, "fetched": tally.counts.fetched, "new": tally.counts.new,
            "changed": tally.counts.changed, "unchanged": tally.counts.unchanged, "rejected": tally.counts.rejected,
            "requests": tally.requests, "tasks": len(tally.parts) - tally.skipped, "skipped": tally.skipped,
            "error": outcome.error or "",
        })
    return rows


SourcesParam = Annotated[list[SourceName], Field(min_length=1)]

# Prefect builds the UI's run form from the signature and takes each parameter's description from
# the flow docstring's `Args:` section (not from `Field(description=...)`), hence the Args blocks.


@flow(name="census-nightly", log_prints=False)
def nightly(sources: SourcesParam = list(ALL_SOURCES)) -> list[SourceOutcome]:
    """Every source from its saved watermark, then transforms and publishing.

    Args:
        sources: Sources to load; all of them when left as is.
    """
    return run_pipeline(sources, Window())


@flow(name="census-backfill")
def backfill(
    since: date = date(2023, 1, 1),
    until: date | None = None,
    sources: SourcesParam = list(ALL_SOURCES),
) -> list[SourceOutcome]:
    """Load a past window of the named sources, then rebuild and publish; watermarks stay as they are.

    arXiv, Papers With Code and the Hub's hub-stats months load one task per month; run again, the
    backfill skips the months an earlier run completed. The window is checked first (known sources, since before until, nothing in the future): a bad
    one fails the run with the reason before anything is fetched or written.

    Args:
        since: First day to load (UTC), inclusive, as YYYY-MM-DD; not in the future.
        until: Day after the last day to load (UTC), exclusive, as YYYY-MM-DD; empty means today.
        sources: Sources to load; all of them when left as is.
    """
    return run_pipeline(sources, Window(since, until))


@flow(name="ingest-epoch")
def ingest_epoch_flow() -> list[SourceOutcome]:
    """Epoch AI alone, then rebuild and publish."""
    return run_pipeline(["epoch"], Window())


@flow(name="ingest-arxiv")
def ingest_arxiv_flow() -> list[SourceOutcome]:
    """arXiv alone (papers submitted since the watermark, then the RSS day's new versions), then rebuild and publish."""
    return run_pipeline(["arxiv"], Window())


@flow(name="ingest-huggingface")
def ingest_huggingface_flow() -> list[SourceOutcome]:
    """The Hub alone (new models since the watermark, then the popularity refresh), then rebuild and publish."""
    return run_pipeline(["huggingface"], Window())


@flow(name="ingest-paperswithcode")
def ingest_paperswithcode_flow() -> list[SourceOutcome]:
    """Papers With Code alone (papers since the saved date, their results), then rebuild and publish."""
    return run_pipeline(["paperswithcode"], Window())


@flow(name="ingest-open_llm_leaderboard")
def ingest_open_llm_leaderboard_flow() -> list[SourceOutcome]:
    """The Open LLM Leaderboard archives alone (downloaded only when a dataset's commit changed), then rebuild and publish."""
    return run_pipeline(["open_llm_leaderboard"], Window())
