"""The Prefect flows: nightly, backfill, and one ingest flow per source.

Each flow takes the writer lock, ingests its sources one after another (a failed source is
recorded and the others go on), rebuilds everything downstream of raw, and publishes the
analysts' copy. Logic lives in plain functions; the tasks here only name, retry and log it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Annotated, Literal
from uuid import uuid4

from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from pydantic import Field

from flows.ingest import IngestRun, SourceOutcome, Window
from flows.ingest_epoch import ingest_epoch
from flows.settings import Settings
from sources.records import SourceError, SourceUnavailable
from transforms.rebuild import rebuild
from warehouse import runs
from warehouse.connection import open_work_db, writer_lock
from warehouse.publish import publish
from warehouse.raw import LoadCounts

SourceName = Literal["epoch"]
"""Every source a run can name; the backfill form in the Prefect UI offers exactly these."""

INGESTERS: dict[str, Callable[[IngestRun, Settings, Window], None]] = {
    "epoch": ingest_epoch,
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


@task(cache_policy=NO_CACHE, retries=0)
def ingest_source(source: str, settings: Settings, window: Window, run_id: str) -> SourceOutcome:
    """Run one source's ingest and record its outcome; a source's failure never stops the run."""
    logger = get_run_logger()
    con = open_work_db(settings.work_db)
    run = IngestRun(con, source, run_id, detail={"window": window.label()})
    try:
        runs.start_run(con, run_id, source, run.detail)
        status, url, error = "success", None, None
        try:
            INGESTERS[source](run, settings, window)
        except SourceUnavailable as exc:
            status, url, error = f"unavailable: {exc}", exc.url, str(exc)
        except SourceError as exc:
            status, url, error = "failed", exc.url, str(exc)
        except Exception as exc:
            # A bug or an unexpected answer: recorded in full for the log, in one line for the table.
            logger.error("%s: unexpected error\n%s", source, traceback.format_exc())
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        runs.finish_run(
            con, run_id, source, status=status, counts=run.counts, requests=run.requests,
            url=url, error=error, detail=run.detail,
        )
    finally:
        con.close()
    outcome = SourceOutcome(source, "success" if status == "success" else status.split(":")[0], run.counts,
                            run.requests, url, error)
    if outcome.ok:
        logger.info("%s: %s; %d request(s)", source, run.counts.summary(), run.requests)
    else:
        logger.error("%s: %s (%s); kept %s", source, outcome.status, error, run.counts.summary())
    return outcome


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
    run_label = window.since.strftime("%Y-%m") if window.is_backfill else utc_today().isoformat()
    with writer_lock(settings.work_db, wait_seconds=settings.lock_wait_seconds):
        outcomes = []
        for source in sources:
            state: State = ingest_source.with_options(task_run_name=f"ingest-{source}-{run_label}")(
                source, settings, window, run_id, return_state=True
            )
            outcome = state.result(raise_on_failure=False)
            if isinstance(outcome, BaseException):
                outcome = SourceOutcome(source, "failed", LoadCounts(), error=f"{type(outcome).__name__}: {outcome}")
            outcomes.append(outcome)
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
    failed = [outcome for outcome in outcomes if not outcome.ok]
    logger.info("run %s: %d source(s) ok, %d failed", run_id, len(outcomes) - len(failed), len(failed))
    if failed:
        raise SourcesFailed(failed)
    return outcomes


SourcesParam = Annotated[
    list[SourceName],
    Field(description="Sources to load; all of them when left as is.", min_length=1),
]


@flow(name="census-nightly", log_prints=False)
def nightly(sources: SourcesParam = list(ALL_SOURCES)) -> list[SourceOutcome]:
    """Every source from its saved watermark, then transforms and publishing."""
    return run_pipeline(sources, Window())


@flow(name="census-backfill")
def backfill(
    since: Annotated[date, Field(description="First day to load (UTC), inclusive.")] = date(2023, 1, 1),
    until: Annotated[
        date | None, Field(description="Day after the last day to load (UTC); empty means today.")
    ] = None,
    sources: SourcesParam = list(ALL_SOURCES),
) -> list[SourceOutcome]:
    """Load a past window of the named sources, then rebuild and publish; watermarks stay as they are."""
    return run_pipeline(sources, Window(since, until))


@flow(name="ingest-epoch")
def ingest_epoch_flow() -> list[SourceOutcome]:
    """Epoch AI alone, then rebuild and publish."""
    return run_pipeline(["epoch"], Window())
