"""The Prefect flows: nightly, backfill, and one ingest flow per source.

Each flow checks its parameters, takes the writer lock, ingests its sources one after another (a
failed source is recorded and the others go on), rebuilds everything downstream of raw, and
publishes the analysts' copy. Logic lives in plain functions; the tasks here only name, retry,
limit and log it: an ingest task is retried only on transient failures, with exponential backoff
and jitter, is stopped after `task_timeout_seconds`, and holds its source's slot
(`flows.concurrency`) so two runs never talk to the same service at once.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal
from uuid import uuid4

import httpx
import requests
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.task_engine import TaskRunTimeoutError
from prefect.tasks import Task, exponential_backoff
from pydantic import Field

from flows.concurrency import ensure_source_limits, source_slot
from flows.ingest import IngestRun, SourceOutcome, Window
from flows.ingest_arxiv import ingest_arxiv
from flows.ingest_epoch import ingest_epoch
from flows.ingest_huggingface import ingest_huggingface
from flows.ingest_open_llm_leaderboard import ingest_open_llm_leaderboard
from flows.ingest_paperswithcode import ingest_paperswithcode
from flows.progress import IngestProgress, RunProgress
from flows.report import publish_report_artifact
from flows.settings import Settings
from sources.records import SourceError, SourceUnavailable
from transforms.rebuild import rebuild
from warehouse import runs
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
    the same.
    """
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
        # Connection and timeout errors of the OS and of both HTTP clients the sources use.
        if isinstance(exc, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                            httpx.TransportError)):
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
def ingest_source(source: str, settings: Settings, window: Window, run_id: str) -> SourceOutcome:
    """Run one source's ingest and record its outcome; raises `IngestFailed` (retried if transient).

    Each attempt starts the source's `ingestion_runs` row afresh; pages landed by an earlier
    attempt count as unchanged in the next, so the counts still reconcile.
    """
    logger = get_run_logger()
    con = open_work_db(settings.work_db)
    progress = IngestProgress(source, window.label())
    run = IngestRun(con, source, run_id, detail={"window": window.label()}, on_progress=progress)
    try:
        runs.start_run(con, run_id, source, run.detail)
        try:
            with source_slot(source, wait_seconds=settings.lock_wait_seconds):
                INGESTERS[source](run, settings, window)
        except BaseException as exc:
            outcome = failed_outcome(source, run, exc, timeout_seconds=settings.task_timeout_seconds)
            if isinstance(exc, Exception) and not isinstance(exc, SourceError):
                # A bug or an unexpected answer: recorded in full for the log, in one line for the table.
                logger.error("%s: unexpected error\n%s", source, traceback.format_exc())
            status = "unavailable: " + (outcome.error or "") if outcome.status == "unavailable" else outcome.status
            runs.finish_run(con, run_id, source, status=status, counts=run.counts, requests=run.requests,
                            url=outcome.url, error=outcome.error, detail=run.detail)
            progress.finish(run.counts, outcome.status)
            logger.error("%s: %s (%s); kept %s", source, outcome.status, outcome.error, run.counts.summary())
            if isinstance(exc, Exception):
                raise IngestFailed(outcome) from exc
            raise
        runs.finish_run(con, run_id, source, status="success", counts=run.counts, requests=run.requests,
                        detail=run.detail)
    finally:
        con.close()
    progress.finish(run.counts, "success")
    logger.info("%s: %s; %d request(s)", source, run.counts.summary(), run.requests)
    return SourceOutcome(source, "success", run.counts, run.requests)


def task_run_name(source: str, window: Window, today: date) -> str:
    """`ingest-huggingface-2023-03` for a backfill from March 2023 (`..2023-06` if it spans months),
    `ingest-huggingface-2026-11-26` for that night's incremental run."""
    if not window.is_backfill:
        return f"ingest-{source}-{today.isoformat()}"
    first = window.since.strftime("%Y-%m")
    last = (window.until - timedelta(days=1) if window.until else today).strftime("%Y-%m")
    return f"ingest-{source}-{first}" if first == last else f"ingest-{source}-{first}..{last}"


@task(cache_policy=NO_CACHE, task_run_name="rebuild-curated")
def rebuild_curated(settings: Settings) -> None:
    logger = get_run_logger()
    con = open_work_db(settings.work_db)
    try:
        for built in rebuild(con, settings.release_inputs()):
            logger.info("built %s %s: %s rows", built.layer, built.name, f"{built.rows:,}")
    finally:
        con.close()


@task(cache_policy=NO_CACHE, task_run_name="publish-warehouse")
def publish_warehouse(settings: Settings) -> None:
    con = open_work_db(settings.work_db)
    try:
        tables = publish(con, settings.db)
    finally:
        con.close()
    get_run_logger().info("published %d tables to %s", len(tables), settings.db)


def run_pipeline(sources: Sequence[str], window: Window) -> list[SourceOutcome]:
    """The body every flow shares; raises `SourcesFailed` after publishing if a source failed."""
    validate_request(sources, window.since, window.until, today=utc_today())
    settings = Settings()
    logger = get_run_logger()
    run_id = str(runtime.flow_run.id or uuid4())
    ensure_source_limits(sources)
    with writer_lock(settings.work_db, wait_seconds=settings.lock_wait_seconds):
        progress = RunProgress(list(sources), window.label())
        outcomes = []
        for source in sources:
            state: State = ingest_source.with_options(
                task_run_name=task_run_name(source, window, utc_today()),
                retries=settings.task_retries,
                retry_delay_seconds=exponential_backoff(settings.task_retry_delay_seconds),
                timeout_seconds=settings.task_timeout_seconds,
            )(source, settings, window, run_id, return_state=True)
            outcome = state.result(raise_on_failure=False)
            if isinstance(outcome, IngestFailed):
                outcome = outcome.outcome
            elif isinstance(outcome, BaseException):
                outcome = SourceOutcome(source, "failed", LoadCounts(), error=f"{type(outcome).__name__}: {outcome}")
            outcomes.append(outcome)
            progress.source_done(source, outcome.status)
        rebuild_curated(settings)
        publish_warehouse(settings)
    create_table_artifact(
        key="census-run-counts",
        table=[
            {
                "source": o.source, "status": o.status, "fetched": o.counts.fetched, "new": o.counts.new,
                "changed": o.counts.changed, "unchanged": o.counts.unchanged, "rejected": o.counts.rejected,
                "requests": o.requests, "error": o.error or "",
            }
            for o in outcomes
        ],
        description=f"Per-source counts of run {run_id} ({window.label()})",
    )
    publish_report_artifact(settings.db)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    logger.info("run %s: %d source(s) ok, %d failed", run_id, len(outcomes) - len(failed), len(failed))
    if failed:
        raise SourcesFailed(failed)
    return outcomes


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

    The window is checked first (known sources, since before until, nothing in the future): a bad
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
