"""The Hub ingest against a local Hub of a few thousand models: nightly, refresh, kill, budget, backfill."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from flows.demo_huggingface import HubReplay
from flows.ingest import IngestRun, Window
from flows.ingest_huggingface import RAW_TABLE, ingest_with
from flows.replay_server import ReplayServer
from flows.settings import Settings
from sources.huggingface import HubListing
from warehouse.connection import open_work_db

FIXTURES = Path(__file__).parents[1] / "fixtures" / "huggingface"
SLICE = json.loads((FIXTURES / "api_models_page_2026-09-28_from_slice.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 9, 28, 12, 0, tzinfo=timezone.utc)
MODELS = 3_500
"""Four pages of 1,000: enough to cross page boundaries in every scenario."""


def hub_models(count: int, *, newest: datetime = NOW, step: timedelta = timedelta(minutes=1), prefix: str = "") -> list[dict]:
    """`count` models shaped like the real slice's records, one a minute going back from `newest`."""
    models = []
    for index in range(count):
        model = dict(SLICE[index % len(SLICE)])
        model["id"] = f"{model['id']}-{prefix}{index}"
        model["createdAt"] = (newest - index * step).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        models.append(model)
    return models


@pytest.fixture
def hub() -> Iterator[tuple[HubReplay, str]]:
    replay = HubReplay(hub_models(MODELS))
    with ReplayServer(Path("/nonexistent"), replay.routes()) as server:
        yield replay, server.url


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = open_work_db(tmp_path / "census.work.duckdb")
    yield connection
    connection.close()


def nightly(con: duckdb.DuckDBPyConnection, url: str, *, now: datetime = NOW, budget: int = 400,
            lookback_days: int = 3, refresh_days: int = 90, window: Window = Window(), **settings: object) -> IngestRun:
    run = IngestRun(con, "huggingface", f"run-{time.monotonic_ns()}")
    options = Settings(hf_url=url, hf_lookback_days=lookback_days, hf_refresh_days=refresh_days,
                       hf_max_requests=budget, **settings)
    ingest_with(run, options, window, HubListing(url, max_requests=budget), now=now)
    return run


def raw_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    return con.execute(f"select count(distinct source_key), count(*) from {RAW_TABLE}").fetchone()


def cursor(con: duckdb.DuckDBPyConnection) -> dict:
    return json.loads(con.execute("select cursor from ingestion_state where source = 'huggingface'").fetchone()[0])


def test_nightly_loads_all_then_nothing_then_exactly_the_changes(hub: tuple[HubReplay, str], con) -> None:
    replay, url = hub

    first = nightly(con, url)
    assert (first.counts.new, first.counts.fetched, first.requests) == (MODELS, MODELS, 4)
    assert raw_counts(con) == (MODELS, MODELS)
    assert cursor(con)["watermark"] == "2026-09-28T12:00:00+00:00"

    second = nightly(con, url, now=NOW + timedelta(hours=1))
    assert (second.counts.new, second.counts.changed, second.counts.unchanged) == (0, 0, MODELS)

    replay.add(hub_models(3, newest=NOW + timedelta(hours=2), prefix="new"))
    for model in (replay.models[10], replay.models[2_500]):
        model["likes"] += 150
    third = nightly(con, url, now=NOW + timedelta(hours=3))
    assert (third.counts.new, third.counts.changed) == (3, 2)
    assert raw_counts(con) == (MODELS + 3, MODELS + 5)
    assert cursor(con)["watermark"] == "2026-09-28T14:00:00+00:00"


def test_a_first_run_reaches_back_its_lookback_only(hub: tuple[HubReplay, str], con) -> None:
    replay, url = hub
    replay.models[:] = hub_models(100, step=timedelta(hours=1))  # 100 hours: just over 4 days

    run = nightly(con, url, lookback_days=2)

    assert run.counts.new == 49  # created at NOW - 0h .. NOW - 48h


def test_a_run_killed_midway_then_rerun_has_every_model_once(tmp_path: Path) -> None:
    replay = HubReplay(hub_models(MODELS))
    asked: list[str] = []

    def slow_after_two_pages(request):
        asked.append(request.path)
        if len(asked) > 2:
            time.sleep(10)  # the child is killed while it waits for page 3
        return replay.listing(request)

    database = tmp_path / "killed.work.duckdb"
    open_work_db(database).close()
    with ReplayServer(Path("/nonexistent"), {**replay.routes(), "/api/models": slow_after_two_pages}) as server:
        child = textwrap.dedent(f"""
            from datetime import datetime
            from pathlib import Path
            from flows.ingest import IngestRun, Window
            from flows.ingest_huggingface import ingest_with
            from flows.settings import Settings
            from sources.huggingface import HubListing
            from warehouse.connection import open_work_db
            con = open_work_db(Path({str(database)!r}))
            run = IngestRun(con, "huggingface", "killed-run")
            ingest_with(run, Settings(hf_url={server.url!r}), Window(), HubListing({server.url!r}),
                        now=datetime.fromisoformat({NOW.isoformat()!r}))
        """)
        process = subprocess.Popen([sys.executable, "-c", child], cwd=Path(__file__).parents[2],
                                   env={**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"})
        deadline = time.monotonic() + 60
        while len(asked) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        assert len(replay.requests) == 2

    with ReplayServer(Path("/nonexistent"), replay.routes()) as server:
        con = open_work_db(database)
        try:
            assert raw_counts(con) == (2_000, 2_000)  # two pages committed before the kill
            rerun = nightly(con, server.url)
            assert raw_counts(con) == (MODELS, MODELS)
            assert rerun.counts.new == MODELS - 2_000
            assert con.execute(f"select max(version) from {RAW_TABLE}").fetchone()[0] == 1
        finally:
            con.close()


def test_a_budget_of_k_stops_at_k_and_the_next_run_goes_on(hub: tuple[HubReplay, str], con) -> None:
    _, url = hub

    first = nightly(con, url, budget=2)
    assert (first.requests, first.counts.new, first.detail["stopped_at_budget"]) == (2, 2_000, True)
    assert "watermark" not in cursor(con) and "new" in cursor(con)

    second = nightly(con, url, budget=2)
    assert (second.requests, second.counts.new, second.detail["stopped_at_budget"]) == (2, 1_500, False)
    assert raw_counts(con) == (MODELS, MODELS)
    assert cursor(con)["watermark"] == "2026-09-28T12:00:00+00:00" and "new" not in cursor(con)


def test_new_models_come_before_a_refresh_the_budget_cut_short(hub: tuple[HubReplay, str], con) -> None:
    replay, url = hub
    nightly(con, url)  # covers the 3,500 models, 4 requests
    replay.add(hub_models(500, newest=NOW + timedelta(hours=3), prefix="late"))
    replay.models[3_000]["likes"] += 1

    cut = nightly(con, url, now=NOW + timedelta(hours=4), budget=2)  # new + start of the refresh
    assert cut.counts.new == 500 and cut.detail["stopped_at_budget"] and "refresh" in cursor(con)

    replay.add(hub_models(5, newest=NOW + timedelta(hours=5), prefix="later"))
    after = nightly(con, url, now=NOW + timedelta(hours=6))
    assert after.counts.new == 5 and after.counts.changed == 1
    assert "refresh" not in cursor(con) and after.detail["refresh_pages"] >= 2


def test_an_api_backfill_lands_its_window_only_and_leaves_the_watermark(hub: tuple[HubReplay, str], con) -> None:
    replay, url = hub
    replay.models[:] = hub_models(3_000, step=timedelta(hours=1))  # 125 days back from NOW
    nightly(con, url, lookback_days=1)
    before = cursor(con)["watermark"]

    run = nightly(con, url, window=Window(date(2026, 7, 1), date(2026, 7, 8)), hf_backfill_via="api")

    created = [row[0] for row in con.execute(f"select payload->>'createdAt' from {RAW_TABLE}_latest").fetchall()]
    in_window = [moment for moment in created if "2026-07-01" <= moment < "2026-07-08"]
    assert run.counts.new == len(in_window) == 7 * 24
    assert run.detail["backfill_via"] == "api" and run.detail["paged_past_newer"] == 1_981  # 12:00 on 28 Sep back to 00:00 on 8 Jul
    assert cursor(con)["watermark"] == before


HUB_STATS_LAYOUT = (FIXTURES / "hub_stats_layout.sql").read_text(encoding="utf-8")
HUB_STATS_PATH = "/datasets/cfahlgren1/hub-stats/resolve/main/models.parquet"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hub file cache of this test's own: a copy cached by another test would stand in for a missing dataset."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


def hub_stats_body(tmp_path: Path, models: list[dict], select: str = "*") -> bytes:
    """`models` as hub-stats' models.parquet (layout in tests/fixtures/huggingface/README.md)."""
    source, parquet = tmp_path / "models.json", tmp_path / "models.parquet"
    source.write_text(json.dumps(models), encoding="utf-8")
    with duckdb.connect() as scratch:
        scratch.execute(f"create table hub_stats as {HUB_STATS_LAYOUT}", {"source": str(source)})
        scratch.execute(f"copy (select {select} from hub_stats) to '{parquet}' (format parquet)")
    return parquet.read_bytes()


def serve_hub_stats(httpserver, body: bytes | None) -> None:
    """The dataset's file as the Hub serves it, or (None) the Hub's 404 for a repository that is gone."""
    if body is None:
        httpserver.expect_request(HUB_STATS_PATH).respond_with_data(
            '{"error":"Repository not found"}', status=404, headers={"X-Error-Code": "RepoNotFound"})
    else:
        headers = {"X-Repo-Commit": hashlib.sha1(body).hexdigest(), "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                   "Content-Length": str(len(body))}
        httpserver.expect_request(HUB_STATS_PATH).respond_with_data(body, headers=headers)
    httpserver.expect_request("/api/agent-harnesses").respond_with_data("", status=404)


@pytest.mark.parametrize("served", ["missing", "createdAt renamed"])
def test_auto_backfill_falls_back_to_the_api_when_hub_stats_does_not_fit(
        httpserver, con, tmp_path: Path, hub_cache: Path, caplog: pytest.LogCaptureFixture, served: str) -> None:
    """A dataset gone (404) or with a needed column renamed: the listing loads the window, and the log and the
    run's record say why and what it cost."""
    models = hub_models(48, newest=datetime(2026, 7, 2, tzinfo=timezone.utc), step=timedelta(hours=1))
    body = None if served == "missing" else hub_stats_body(tmp_path, models, "* rename (createdAt as created_at)")
    serve_hub_stats(httpserver, body)
    httpserver.expect_request("/api/models").respond_with_json(models)

    with caplog.at_level(logging.INFO, logger="flows.ingest_huggingface"):
        run = nightly(con, httpserver.url_for("").rstrip("/"), window=Window(date(2026, 7, 1), date(2026, 7, 2)))

    on_hub_stats = 1 if body is None else 2  # the HEAD that failed; or HEAD and GET of a file that did not fit
    assert run.detail["backfill_via"] == "api" and run.counts.new == 24  # 00:00 to 23:00 on 1 July
    reason = "RepositoryNotFoundError" if body is None else "schema no longer fits: createdAt (missing)"
    assert reason in run.detail["hub_stats_unavailable"]
    assert (run.detail["hub_stats_requests"], run.detail["fallback_requests"], run.requests) == (
        on_hub_stats, 1, on_hub_stats + 1)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("falling back to the api listing" in line and reason in line for line in warnings)
    assert f"the api fallback used 1 requests (after {on_hub_stats} on hub-stats)" in " ".join(warnings)


def test_an_old_window_backfills_from_hub_stats_in_two_requests_then_one(httpserver, con, tmp_path: Path,
                                                                          hub_cache: Path) -> None:
    """`auto` picks hub-stats for a window that ended over 30 days ago; the listing is never asked. The same
    file again (the next month of a backfill) costs only the HEAD that finds the cached copy current."""
    body = hub_stats_body(tmp_path, hub_models(3_000, step=timedelta(hours=1)))
    serve_hub_stats(httpserver, body)
    url = httpserver.url_for("").rstrip("/")

    run = nightly(con, url, window=Window(date(2026, 7, 1), date(2026, 7, 8)))
    again = nightly(con, url, window=Window(date(2026, 6, 24), date(2026, 7, 1)))

    assert run.detail["backfill_via"] == again.detail["backfill_via"] == "hub-stats"
    assert (run.counts.new, run.requests, run.detail["hub_stats_bytes"]) == (7 * 24, 2, len(body))
    assert (again.counts.new, again.requests) == (7 * 24, 1)
    assert not any(request.path == "/api/models" for request, _ in httpserver.log)
    assert set(cursor(con)) == {"spent"}  # no watermark moved, no listing walk saved
    landed = json.loads(con.execute(f"select payload from {RAW_TABLE} where payload->>'createdAt' like '2026-07-01T00%'")
                        .fetchone()[0])
    assert landed["createdAt"] == "2026-07-01T00:00:00.000Z"  # as the listing writes it


def test_a_saved_cursor_the_hub_refuses_restarts_the_walk_from_the_top(hub: tuple[HubReplay, str], con) -> None:
    _, url = hub
    nightly(con, url, budget=1)
    state = cursor(con)
    state["new"]["next_url"] = url + "/api/models?cursor=bm90LWEtY3Vyc29y&sort=createdAt&limit=1000"
    con.execute("update ingestion_state set cursor = ? where source = 'huggingface'", [json.dumps(state)])

    run = nightly(con, url)

    assert run.detail["cursor_restarts"] == 1
    assert raw_counts(con) == (MODELS, MODELS) and "new" not in cursor(con)


def test_a_retried_attempt_of_the_same_run_spends_only_what_is_left_of_the_budget(
    hub: tuple[HubReplay, str], con
) -> None:
    _, url = hub
    run = IngestRun(con, "huggingface", "one-run")
    settings = Settings(hf_url=url, hf_max_requests=3)
    ingest_with(run, settings, Window(), HubListing(url, max_requests=2), now=NOW)  # a first attempt: 2 requests

    retry = IngestRun(con, "huggingface", "one-run")
    ingest_with(retry, settings, Window(), HubListing(url, max_requests=3), now=NOW)

    assert (retry.requests, retry.detail["stopped_at_budget"]) == (1, True)
    assert cursor(con)["spent"] == {"run_id": "one-run", "requests": 3}
