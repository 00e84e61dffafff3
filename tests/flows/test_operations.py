"""Operations: which failures are retried, what task runs are called, progress, and one writer at a time."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import httpx
import pytest
import requests
from prefect.task_engine import TaskRunTimeoutError

from flows.ingest import IngestRun, Window
from flows.pipeline import IngestFailed, SourceOutcome, is_transient, task_run_name, validate_request
from flows.progress import IngestProgress, RunProgress
from sources.records import RawRecord, SourceError, SourceUnavailable
from warehouse.connection import WarehouseBusy, writer_lock
from warehouse.raw import LoadCounts


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:  # noqa: BLE001 - building the chain a task run would see
        return raised


def _http_status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/api/models")
    return httpx.HTTPStatusError("boom", request=request, response=httpx.Response(status, request=request))


FAILED = SourceOutcome("huggingface", "failed", LoadCounts())


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (SourceError("HTTP 503 Service Unavailable after 4 attempts", url="http://x/"), True),
        (SourceError("ConnectionError: refused after 4 attempts", url="http://x/"), True),
        (SourceError("empty page at start=200 of 1,000 after 5 attempts", url="http://x/"), True),
        (SourceError("HTTP 404 Not Found from http://x/a", url="http://x/a"), False),
        (SourceError("arXiv refused the query: incorrect id format", url="http://x/"), False),
        (SourceUnavailable("redirected to another site after 4 attempts", url="http://x/"), False),
        (requests.ConnectionError("refused"), True),
        (httpx.ConnectError("refused"), True),
        (_http_status_error(429), True),
        (_http_status_error(502), True),
        (_http_status_error(401), False),
        (TaskRunTimeoutError("Scope timed out after 5 second(s)."), False),
        (ValueError("a bug"), False),
        (_raised_from(IngestFailed(FAILED), requests.Timeout("slow")), True),
        (_raised_from(IngestFailed(FAILED), KeyError("payload")), False),
        (_raised_from(RuntimeError("wrapped"), ConnectionResetError("reset")), True),
        (None, False),
    ],
)
def test_only_transient_failures_are_retried(error: BaseException | None, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("window", "name"),
    [
        (Window(), "ingest-huggingface-2026-11-26"),
        (Window(date(2023, 3, 1), date(2023, 4, 1)), "ingest-huggingface-2023-03"),
        (Window(date(2023, 3, 5), date(2023, 3, 20)), "ingest-huggingface-2023-03"),
        (Window(date(2023, 3, 1), date(2023, 7, 1)), "ingest-huggingface-2023-03..2023-06"),
        (Window(date(2026, 10, 1)), "ingest-huggingface-2026-10..2026-11"),
    ],
)
def test_task_runs_are_named_for_the_source_and_the_months_they_load(window: Window, name: str) -> None:
    assert task_run_name("huggingface", window, date(2026, 11, 26)) == name


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (date(2024, 1, 1), date(2024, 1, 1), "must be before until"),
        (date(2024, 1, 1), date(2026, 11, 27), "until 2026-11-27 is in the future"),
        (date(2026, 11, 27), None, "since 2026-11-27 is in the future"),
    ],
)
def test_impossible_windows_are_refused_with_the_reason(since: date, until: date | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_request(["epoch"], since, until, today=date(2026, 11, 26))


class Recorder:
    """Stands in for Prefect's artifact calls: what a progress artifact would have been told."""

    def __init__(self) -> None:
        self.created: list[dict] = []
        self.updates: list[tuple[float, str]] = []
        self.now = 0.0

    def create(self, **kwargs: object) -> str:
        self.created.append(kwargs)
        return "artifact-1"

    def update(self, artifact_id: str, *, progress: float, description: str) -> str:
        self.updates.append((progress, description))
        return artifact_id


def test_progress_is_throttled_and_ends_at_100_percent(fresh_db: duckdb.DuckDBPyConnection) -> None:
    recorder = Recorder()
    progress = IngestProgress("epoch", "2015-01-01..2026-11-26", min_interval_seconds=5.0,
                              clock=lambda: recorder.now, create=recorder.create, update=recorder.update)
    run = IngestRun(fresh_db, "epoch", "run-1", on_progress=progress)

    run.land("raw_epoch__models", [RawRecord("a", '{"a": 1}')])
    run.progress(1, 4)
    recorder.now = 6.0
    run.land("raw_epoch__models", [RawRecord("b", '{"b": 1}')])
    progress.finish(run.counts, "success")

    assert recorder.created == [
        {"progress": 0.0, "key": "census-progress-epoch",
         "description": "epoch (2015-01-01..2026-11-26), running: " + LoadCounts().summary()}
    ]
    assert [percent for percent, _ in recorder.updates] == [25.0, 100.0]
    assert "new 2" in recorder.updates[0][1]
    assert recorder.updates[-1][1].startswith("epoch (2015-01-01..2026-11-26), success: fetched 2")


def test_a_failed_ingest_leaves_progress_where_it_stopped() -> None:
    recorder = Recorder()
    progress = IngestProgress("arxiv", "incremental", clock=lambda: recorder.now,
                              create=recorder.create, update=recorder.update)
    progress(LoadCounts(fetched=10, new=10), 40.0)
    progress.finish(LoadCounts(fetched=10, new=10), "failed")
    assert recorder.updates == [(40.0, "arxiv (incremental), failed: " + LoadCounts(fetched=10, new=10).summary())]


def test_the_run_progress_moves_as_each_source_ends() -> None:
    recorder = Recorder()
    progress = RunProgress(["epoch", "arxiv"], "2023-01-01..2023-02-01", create=recorder.create, update=recorder.update)
    progress.source_done("epoch", "success")
    progress.source_done("arxiv", "failed")
    assert recorder.created[0]["key"] == "census-run-progress"
    assert recorder.created[0]["description"] == "2023-01-01..2023-02-01: 0 of 2 source(s) ingested; next epoch"
    assert recorder.updates == [
        (50.0, "2023-01-01..2023-02-01: 1 of 2 source(s) ingested (epoch success); next arxiv"),
        (100.0, "2023-01-01..2023-02-01: 2 of 2 source(s) ingested (epoch success, arxiv failed); then rebuild and publish"),
    ]


HOLD_LOCK = """
import sys
from pathlib import Path
from warehouse.connection import writer_lock
with writer_lock(Path(sys.argv[1]), wait_seconds=0):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_waits_then_fails_naming_the_run_that_holds_the_lock(tmp_path: Path) -> None:
    work_db = tmp_path / "census.work.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(work_db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match=rf"another census run \(pid {holder.pid}\) is writing .*waited 1s"):
            with writer_lock(work_db, wait_seconds=1.0, poll_seconds=0.1):
                pytest.fail("two writers at once")
        assert time.monotonic() - started >= 1.0
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_second_writer_that_waits_long_enough_gets_the_lock(tmp_path: Path) -> None:
    work_db = tmp_path / "census.work.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(work_db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        holder.stdin.close()  # the first run finishes while the second is waiting
        with writer_lock(work_db, wait_seconds=10.0, poll_seconds=0.1):
            assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_ingest_task_retries_a_transient_failure_but_not_a_refusal(
    prefect_api: None, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from flows import pipeline
    from flows.concurrency import ensure_source_limits
    from flows.settings import Settings

    attempts: dict[str, int] = {"flaky": 0, "refused": 0}

    def flaky(run: IngestRun, settings: Settings, window: Window) -> None:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise SourceError("HTTP 503 Service Unavailable after 4 attempts", url="http://127.0.0.1/flaky")
        run.land("raw_epoch__models", [RawRecord("flaky-1", '{"id": 1}')])

    def refused(run: IngestRun, settings: Settings, window: Window) -> None:
        attempts["refused"] += 1
        raise SourceError("HTTP 403 Forbidden from http://127.0.0.1/refused", url="http://127.0.0.1/refused")

    monkeypatch.setitem(pipeline.INGESTERS, "flaky", flaky)
    monkeypatch.setitem(pipeline.INGESTERS, "refused", refused)

    @flow
    def two_sources() -> list[object]:
        ensure_source_limits(["flaky", "refused"])
        task = pipeline.ingest_source.with_options(retries=2, retry_delay_seconds=0)
        return [
            task(source, Settings(), Window(), "run-retries", return_state=True).result(raise_on_failure=False)
            for source in ("flaky", "refused")
        ]

    flaky_result, refused_result = two_sources()

    assert attempts == {"flaky": 2, "refused": 1}
    assert isinstance(flaky_result, SourceOutcome) and flaky_result.ok and flaky_result.counts.new == 1
    assert isinstance(refused_result, IngestFailed)
    assert refused_result.outcome.error == "HTTP 403 Forbidden from http://127.0.0.1/refused"
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        rows = con.execute("select source, status, new from ingestion_runs order by source").fetchall()
    assert rows == [("flaky", "success", 1), ("refused", "failed", 0)]


def test_a_second_run_waits_for_the_sources_slot_then_fails_clearly(prefect_api: None) -> None:
    from flows.concurrency import SourceBusy, ensure_source_limits, source_slot

    ensure_source_limits(["slot-test"])
    ensure_source_limits(["slot-test"])  # every run calls it: the second call changes nothing
    with source_slot("slot-test", wait_seconds=10):
        started = time.monotonic()
        with pytest.raises(SourceBusy, match="another census run has held census-source-slot-test for more than 2s"):
            with source_slot("slot-test", wait_seconds=2):
                pytest.fail("two runs talked to one source at once")
        assert time.monotonic() - started >= 2
    with source_slot("slot-test", wait_seconds=2):
        pass  # released when the first run was done with it


def test_a_missing_limit_fails_loudly_instead_of_limiting_nothing(prefect_api: None) -> None:
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    from flows.concurrency import source_slot

    with pytest.raises(ConcurrencySlotAcquisitionError):
        with source_slot("never-created", wait_seconds=2):
            pytest.fail("ran without its limit")


def test_an_ingest_past_its_timeout_is_stopped_and_recorded_as_failed(
    prefect_api: None, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from flows import pipeline
    from flows.concurrency import ensure_source_limits
    from flows.settings import Settings

    def hangs(run: IngestRun, settings: Settings, window: Window) -> None:
        run.land("raw_epoch__models", [RawRecord("slow-1", '{"id": 1}')])
        time.sleep(30)

    monkeypatch.setitem(pipeline.INGESTERS, "hangs", hangs)
    monkeypatch.setenv("MODEL_CENSUS_TASK_TIMEOUT_SECONDS", "1")

    @flow
    def one_source() -> object:
        ensure_source_limits(["hangs"])
        settings = Settings()
        task = pipeline.ingest_source.with_options(retries=2, retry_delay_seconds=0,
                                                   timeout_seconds=settings.task_timeout_seconds)
        return task("hangs", settings, Window(), "run-timeout", return_state=True).result(raise_on_failure=False)

    started = time.monotonic()
    result = one_source()

    assert time.monotonic() - started < 25, "the task timeout stopped the 30-second ingest"
    assert isinstance(result, TimeoutError)
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        row = con.execute("select status, new, error from ingestion_runs where run_id = 'run-timeout'").fetchone()
    assert row[:2] == ("failed", 1)
    assert "task timeout of 1s" in row[2]
