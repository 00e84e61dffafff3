"""Operations: which failures are retried, what task runs are called, progress, and one writer at a time."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import httpx
import httpx2
import pytest
import requests
from prefect.task_engine import TaskRunTimeoutError

from flows.ingest import IngestRun, Window
from flows.parts import Part, SourceTally, add_part, completed_windows, month_windows, plan_parts, record, recorded_tally
from flows.pipeline import IngestFailed, SourceOutcome, counts_table, is_transient, validate_request
from flows.progress import IngestProgress, RunProgress
from flows.settings import Settings
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
        (httpx2.ConnectError("refused"), True),
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


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def names(source: str, window: Window, **settings: object) -> list[str]:
    return [part.task_run_name for part in plan_parts(source, window, Settings(**settings), now=NOW)]


def test_a_nightly_run_is_one_task_per_source_named_for_the_day() -> None:
    assert names("huggingface", Window()) == ["ingest-huggingface-2026-11-26"]
    assert names("arxiv", Window()) == ["ingest-arxiv-2026-11-26"]


def test_a_backfill_of_a_listing_source_is_one_task_per_month() -> None:
    assert names("arxiv", Window(date(2023, 1, 15), date(2023, 4, 10))) == [
        "ingest-arxiv-2023-01", "ingest-arxiv-2023-02", "ingest-arxiv-2023-03", "ingest-arxiv-2023-04"]
    assert names("arxiv", Window(date(2023, 3, 1), date(2023, 4, 1))) == ["ingest-arxiv-2023-03"]
    assert names("arxiv", Window(date(2026, 10, 5))) == ["ingest-arxiv-2026-10", "ingest-arxiv-2026-11"]


def test_the_months_are_cut_where_the_window_says_and_an_open_end_stays_open() -> None:
    assert month_windows(Window(date(2022, 12, 15), date(2023, 2, 10)), date(2026, 11, 26)) == [
        Window(date(2022, 12, 15), date(2023, 1, 1)),
        Window(date(2023, 1, 1), date(2023, 2, 1)),
        Window(date(2023, 2, 1), date(2023, 2, 10)),
    ]
    assert month_windows(Window(date(2026, 10, 5)), date(2026, 11, 26)) == [
        Window(date(2026, 10, 5), date(2026, 11, 1)), Window(date(2026, 11, 1), None)]
    assert month_windows(Window(date(2026, 11, 26)), date(2026, 11, 26)) == []


def test_a_single_download_source_stays_one_task() -> None:
    assert names("epoch", Window(date(2023, 1, 1), date(2023, 7, 1))) == ["ingest-epoch-2023-01..2023-06"]
    assert names("open_llm_leaderboard", Window(date(2023, 3, 5), date(2023, 3, 20))) == [
        "ingest-open_llm_leaderboard-2023-03"]


def test_papers_with_code_imports_its_archive_in_a_task_of_its_own() -> None:
    window = Window(date(2023, 1, 1), date(2023, 3, 1))
    assert names("paperswithcode", window) == [
        "ingest-paperswithcode-2023-01", "ingest-paperswithcode-2023-02", "ingest-paperswithcode-archive"]
    assert names("paperswithcode", window, pwc_import_archive=False) == [
        "ingest-paperswithcode-2023-01", "ingest-paperswithcode-2023-02"]


def test_the_hub_splits_the_months_it_reads_from_hub_stats_and_walks_the_recent_ones_once() -> None:
    # `auto`: months that ended over 30 days before now come from hub-stats, one task each; the
    # months after them are one walk down the listing, which can only start at the newest model.
    assert names("huggingface", Window(date(2026, 8, 10))) == [
        "ingest-huggingface-2026-08", "ingest-huggingface-2026-09", "ingest-huggingface-2026-10..2026-11"]
    assert names("huggingface", Window(date(2026, 8, 10)), hf_backfill_via="hub-stats") == [
        "ingest-huggingface-2026-08", "ingest-huggingface-2026-09", "ingest-huggingface-2026-10",
        "ingest-huggingface-2026-11"]
    assert names("huggingface", Window(date(2026, 8, 10)), hf_backfill_via="api") == [
        "ingest-huggingface-2026-08..2026-11"]


def test_a_papers_with_code_month_leaves_the_archive_to_its_own_task() -> None:
    from flows.parts import part_settings

    month, archive = plan_parts("paperswithcode", Window(date(2023, 1, 1), date(2023, 2, 1)), Settings(), now=NOW)
    assert part_settings(month, Settings()).pwc_import_archive is False
    assert part_settings(archive, Settings()).pwc_import_archive is True


def _month(source: str, since: date, until: date | None) -> object:
    return plan_parts(source, Window(since, until), Settings(), now=NOW)[0]


def test_the_months_of_a_source_add_up_to_one_row_and_one_table_line(fresh_db: duckdb.DuckDBPyConnection) -> None:
    parts = plan_parts("arxiv", Window(date(2023, 1, 1), date(2023, 4, 1)), Settings(), now=NOW)
    tally = SourceTally("arxiv", "2023-01-01..2023-04-01")
    for part, counts, status in zip(parts, [LoadCounts(10, 10), LoadCounts(5, 3, 1, 1), LoadCounts(2, 2)],
                                    ["success", "failed", "success"]):
        tally = add_part(tally, part, status=status, counts=counts, requests=2, scope_key="s",
                         error="HTTP 503 after 4 attempts" if status == "failed" else None,
                         url="http://127.0.0.1/q" if status == "failed" else None, finished_at=NOW)
        record(fresh_db, "run-1", tally, last=part is parts[-1])
        if part is parts[0]:
            assert fresh_db.execute("select status, finished_at from ingestion_runs").fetchone() == ("running", None)

    row = fresh_db.execute("select status, fetched, new, changed, unchanged, rejected, requests, url, error "
                           "from ingestion_runs where run_id = 'run-1' and source = 'arxiv'").fetchone()
    assert row == ("failed", 17, 15, 1, 1, 0, 6, "http://127.0.0.1/q", "2023-02: HTTP 503 after 4 attempts")
    assert recorded_tally(fresh_db, "run-1", SourceTally("arxiv", "")).counts == tally.counts
    [line] = counts_table([tally])
    assert (line["fetched"], line["new"], line["requests"], line["tasks"], line["status"]) == (17, 15, 6, 3, "failed")


def test_a_retried_month_counts_once_with_its_last_attempt() -> None:
    part = _month("arxiv", date(2023, 1, 1), date(2023, 2, 1))
    before = add_part(SourceTally("arxiv", ""), _month("arxiv", date(2022, 12, 1), date(2023, 1, 1)), status="success",
                      counts=LoadCounts(4, 4), requests=1, scope_key="s", finished_at=NOW)
    failed = add_part(before, part, status="failed", counts=LoadCounts(3, 3), requests=1, scope_key="s",
                      error="HTTP 503 after 4 attempts", finished_at=NOW)
    retried = add_part(before, part, status="success", counts=LoadCounts(5, 2, 0, 3), requests=2, scope_key="s",
                       finished_at=NOW)
    assert failed.status() == "failed"
    assert (retried.status(), retried.counts, retried.requests) == ("success", LoadCounts(9, 6, 0, 3), 3)


@pytest.mark.parametrize(
    ("since", "until", "status", "detail", "finished", "complete"),
    [
        (date(2023, 1, 1), date(2023, 2, 1), "success", {}, NOW, True),
        (date(2023, 1, 1), date(2023, 2, 1), "failed", {}, NOW, False),
        (date(2023, 1, 1), date(2023, 2, 1), "success", {"stopped_at_budget": True}, NOW, False),
        (date(2023, 1, 1), date(2023, 2, 1), "success", {"incomplete": ["2023-01-03..2023-01-03"]}, NOW, False),
        (date(2023, 1, 1), date(2023, 2, 1), "success", {}, datetime(2023, 2, 3, tzinfo=timezone.utc), False),
        (date(2026, 11, 1), None, "success", {}, NOW, False),  # open end: this month, up to today
    ],
    ids=["loaded", "failed", "stopped-at-budget", "answered-in-part", "not-settled-yet", "open-end"],
)
def test_only_a_settled_month_loaded_whole_counts_as_complete(
    since: date, until: date | None, status: str, detail: dict, finished: datetime, complete: bool
) -> None:
    part = _month("arxiv", since, until)
    tally = add_part(SourceTally("arxiv", ""), part, status=status, counts=LoadCounts(), requests=0, scope_key="s",
                     detail=detail, finished_at=finished)
    assert tally.parts[part.label]["complete"] is complete


def test_a_later_backfill_finds_the_complete_months_of_its_scope_only(fresh_db: duckdb.DuckDBPyConnection) -> None:
    parts = plan_parts("arxiv", Window(date(2023, 1, 1), date(2023, 3, 1)), Settings(), now=NOW)
    tally = SourceTally("arxiv", "")
    for part, status in zip(parts, ["success", "failed"]):
        tally = add_part(tally, part, status=status, counts=LoadCounts(), requests=0, scope_key="url cs.CL",
                         finished_at=NOW)
    record(fresh_db, "run-1", tally, last=True)

    done = completed_windows(fresh_db, "arxiv", "url cs.CL")
    assert done.covers(Window(date(2023, 1, 1), date(2023, 2, 1)))
    assert done.covers(Window(date(2023, 1, 15), date(2023, 2, 1)))
    assert not done.covers(Window(date(2023, 2, 1), date(2023, 3, 1))), "the failed month is loaded again"
    assert not done.covers(Window(date(2022, 12, 15), date(2023, 1, 15)))
    assert not completed_windows(fresh_db, "arxiv", "url cs.CL,cs.LG").covers(Window(date(2023, 1, 1), date(2023, 2, 1)))


def test_each_ingest_task_retries_with_doubling_jittered_delays_and_has_a_timeout() -> None:
    from flows.pipeline import ingest_options, ingest_part

    options = ingest_options(Settings(task_retries=3, task_retry_delay_seconds=60, task_timeout_seconds=3600))
    assert options == {"retries": 3, "retry_delay_seconds": [60, 120, 240], "timeout_seconds": 3600}
    configured = ingest_part.with_options(**options)
    assert (configured.retries, configured.retry_delay_seconds, configured.timeout_seconds) == (3, [60, 120, 240], 3600)
    assert configured.retry_jitter_factor == 0.5 and configured.retry_condition_fn is not None
    assert Settings(task_retries=0).task_retries == 0 and ingest_options(Settings(task_retries=0))["retry_delay_seconds"] == []


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


def test_a_backfill_moves_its_sources_progress_month_by_month_at_most_every_few_seconds() -> None:
    recorder = Recorder()
    progress = IngestProgress("arxiv", "2023-01-01..2023-04-01", parts=3, min_interval_seconds=5.0,
                              clock=lambda: recorder.now, create=recorder.create, update=recorder.update)
    progress.start_part("2023-01", LoadCounts())
    progress.part_done(LoadCounts(fetched=10, new=10))  # within 5 s of the last update: kept back
    progress.start_part("2023-02", LoadCounts(fetched=10, new=10))
    recorder.now = 6.0
    progress(LoadCounts(fetched=4, new=4), 50.0)  # half of the second month
    progress.part_done(LoadCounts(fetched=20, new=20))
    recorder.now = 12.0
    progress.part_done(LoadCounts(fetched=20, new=20))
    progress.finish(LoadCounts(fetched=20, new=20), "success")

    assert recorder.updates == [
        (50.0, "arxiv (2023-01-01..2023-04-01), running, 1 of 3 parts done, now 2023-02: "
               + LoadCounts(fetched=14, new=14).summary()),
        (100.0, "arxiv (2023-01-01..2023-04-01), success, 3 of 3 parts done: " + LoadCounts(fetched=20, new=20).summary()),
    ]


def test_the_run_progress_moves_as_tasks_and_sources_end() -> None:
    recorder = Recorder()
    progress = RunProgress({"epoch": 1, "arxiv": 3}, "2023-01-01..2023-04-01", min_interval_seconds=5.0,
                           clock=lambda: recorder.now, create=recorder.create, update=recorder.update)
    progress.part_done("epoch")  # kept back: a source's end says it a moment later
    progress.source_done("epoch", "success")
    recorder.now = 6.0
    progress.part_done("arxiv")
    progress.part_done("arxiv")
    progress.source_done("arxiv", "failed")
    assert recorder.created[0]["key"] == "census-run-progress"
    assert recorder.created[0]["description"] == (
        "2023-01-01..2023-04-01: 0 of 4 ingest task(s) done, 0 of 2 source(s); now epoch")
    assert recorder.updates == [
        (25.0, "2023-01-01..2023-04-01: 1 of 4 ingest task(s) done, 1 of 2 source(s) (epoch success); now arxiv"),
        (50.0, "2023-01-01..2023-04-01: 2 of 4 ingest task(s) done, 1 of 2 source(s) (epoch success); now arxiv"),
        (100.0, "2023-01-01..2023-04-01: 4 of 4 ingest task(s) done, 2 of 2 source(s) (epoch success, arxiv failed); "
                "then rebuild and publish"),
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
        task = pipeline.ingest_part.with_options(retries=2, retry_delay_seconds=0)
        return [
            task(Part(source, Window(), "2026-11-26"), Settings(), "run-retries", SourceTally(source, "incremental"),
                 True, return_state=True).result(raise_on_failure=False)
            for source in ("flaky", "refused")
        ]

    flaky_result, refused_result = two_sources()

    assert attempts == {"flaky": 2, "refused": 1}
    assert isinstance(flaky_result, SourceTally) and flaky_result.outcome().ok and flaky_result.counts.new == 1
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

    # The wait bounds the whole acquisition, the API's first answer included, and a missing limit fails at
    # that answer: a long wait costs nothing here, and a 2 s one once ran out on a busy clean-clone CI run.
    with pytest.raises(ConcurrencySlotAcquisitionError):
        with source_slot("never-created", wait_seconds=30):
            pytest.fail("ran without its limit")


def test_an_ingest_past_its_timeout_is_stopped_and_recorded_as_failed(
    prefect_api: None, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from flows import pipeline

    def hangs(run: IngestRun, settings: Settings, window: Window) -> None:
        run.land("raw_epoch__models", [RawRecord("slow-1", '{"id": 1}')])
        time.sleep(30)

    monkeypatch.setitem(pipeline.INGESTERS, "hangs", hangs)
    monkeypatch.setenv("MODEL_CENSUS_TASK_TIMEOUT_SECONDS", "1")

    @flow
    def one_source() -> object:
        settings = Settings()
        task = pipeline.ingest_part.with_options(retries=2, retry_delay_seconds=0,
                                                 timeout_seconds=settings.task_timeout_seconds)
        return task(Part("hangs", Window(), "2026-11-26"), settings, "run-timeout", SourceTally("hangs", "incremental"),
                    True, return_state=True).result(raise_on_failure=False)

    started = time.monotonic()
    result = one_source()

    assert time.monotonic() - started < 25, "the task timeout stopped the 30-second ingest"
    assert isinstance(result, TimeoutError)
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        row = con.execute("select status, new, error from ingestion_runs where run_id = 'run-timeout'").fetchone()
    assert row[:2] == ("failed", 1)
    assert "task timeout of 1s" in row[2]


def three_months_of_arxiv() -> object:
    """30 copies of genuine arXiv entries, ten submitted in each month of the first quarter of 2023."""
    from flows.demo_arxiv import ArxivReplay

    fixtures = Path(__file__).parents[1] / "fixtures" / "arxiv"
    template = min(ArxivReplay.from_feeds(sorted(fixtures.glob("api_query_*.xml"))).entries, key=lambda e: len(e.text))
    return ArxivReplay([
        template.copy_as(f"230{month}.{day:05d}", datetime(2023, month, day, 12, tzinfo=timezone.utc), "cs.CL")
        for month in (1, 2, 3) for day in range(1, 11)
    ])


def test_a_backfill_runs_month_by_month_and_its_rerun_skips_the_complete_months(
    prefect_api: None, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    from flows import pipeline
    from flows.replay_server import ReplayServer

    replay = three_months_of_arxiv()
    with ReplayServer(routes=replay.routes()) as server:
        monkeypatch.setenv("MODEL_CENSUS_ARXIV_URL", f"{server.url}/arxiv/api/query")
        monkeypatch.setenv("MODEL_CENSUS_ARXIV_DELAY_SECONDS", "0")
        monkeypatch.setenv("MODEL_CENSUS_ARXIV_CATEGORIES", "cs.CL")
        runs = [pipeline.backfill(since=date(2023, 1, 1), until=date(2023, 4, 1), sources=["arxiv"], return_state=True)
                for _ in range(2)]
        requests_after = len(replay.log)
    assert all(state.is_completed() for state in runs)
    first, second = (str(state.state_details.flow_run_id) for state in runs)

    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        rows = {run_id: tuple(rest) for run_id, *rest in con.execute(
            "select run_id, status, fetched, new, unchanged, requests from ingestion_runs where source = 'arxiv'").fetchall()}
        assert con.execute("select count(*) from raw_arxiv__papers").fetchone()[0] == 30
    assert rows[first] == ("success", 30, 30, 0, 3)
    assert rows[second] == ("success", 0, 0, 0, 0), "every month was complete: nothing asked again"
    assert requests_after == 3

    with get_client(sync_client=True) as client:
        def task_names(flow_run_id: str) -> list[str]:
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return sorted(run.name for run in task_runs if run.name.startswith("ingest-"))

        def artifacts(flow_run_id: str) -> dict[str, object]:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
            return {artifact.key: artifact.data for artifact in found if artifact.key}

        def run_log(flow_run_id: str) -> list[tuple[int, str, str]]:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            return [(log.level, log.name, log.message) for log in logs]

        assert task_names(first) == ["ingest-arxiv-2023-01", "ingest-arxiv-2023-02", "ingest-arxiv-2023-03"]
        assert task_names(second) == []
        made = artifacts(first)
        skipped = artifacts(second)
        APILogWorker.drain_all(timeout=10)
        first_log, second_log = run_log(first), run_log(second)
    # Our modules' INFO lines reach the run log (Prefect gives their loggers its handler, not its level).
    assert any(level == logging.INFO and name == "transforms.build_releases" and message.startswith("releases: ")
               for level, name, message in first_log), first_log
    assert "built staging stg_arxiv__papers: 30 rows (staged whole)" in [message for _, _, message in first_log]
    lines = [message for _, _, message in second_log]
    assert "built staging stg_arxiv__papers: 30 rows (0 restaged)" in lines, lines
    assert "kept staging stg_epoch__models: 0 rows (its raw tables and rules are unchanged)" in lines, lines
    assert float(made["census-progress-arxiv"]) == 100.0 and float(made["census-run-progress"]) == 100.0
    [line] = made["census-run-counts"] if isinstance(made["census-run-counts"], list) else json.loads(made["census-run-counts"])
    assert (line["fetched"], line["new"], line["requests"], line["tasks"], line["skipped"]) == (30, 30, 3, 3, 0)
    [line] = skipped["census-run-counts"] if isinstance(skipped["census-run-counts"], list) else json.loads(skipped["census-run-counts"])
    assert (line["fetched"], line["tasks"], line["skipped"], line["status"]) == (0, 0, 3, "success")


def test_a_run_that_cannot_get_a_sources_slot_fails_that_source_with_the_reason(
    prefect_api: None, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import pipeline
    from flows.concurrency import ensure_source_limits, source_slot

    monkeypatch.setenv("MODEL_CENSUS_LOCK_WAIT_SECONDS", "2")
    ensure_source_limits(["arxiv"])
    with source_slot("arxiv", wait_seconds=10):  # another run, on another machine, is talking to arXiv
        state = pipeline.backfill(since=date(2023, 1, 1), until=date(2023, 3, 1), sources=["arxiv"], return_state=True)

    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, pipeline.SourcesFailed)
    assert "another census run has held census-source-arxiv for more than 2s" in failure.outcomes[0].error
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        status, fetched, error = con.execute("select status, fetched, error from ingestion_runs").fetchone()
    assert (status, fetched) == ("failed", 0) and "census-source-arxiv" in error
    assert census_env.exists(), "the run still rebuilt and published"
