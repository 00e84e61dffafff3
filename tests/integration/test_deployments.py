"""deployments.yaml for real: a Prefect server, a process work pool, a worker, and backfills run through it.

What a user does, by the same commands: `prefect server start` on loopback (own PREFECT_HOME), create
the pool, `prefect deploy --prefect-file deployments.yaml --all --no-prompt`, `prefect worker start`,
then `prefect deployment run census-backfill/census-backfill --param ...`. The sources are the demo
snapshot served by the replay server in their real formats; the worker gets the settings pointing
at it through its environment, as a worker on a real machine would. Every process started here is
stopped at the end by its own id, also when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import httpx
import pytest

from flows.demo import DEMO_SINCE, demo_environment, demo_routes
from flows.pipeline import ALL_SOURCES
from flows.progress import progress_key
from flows.replay_server import DEMO_SNAPSHOT, ReplayServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
DEPLOYMENT = "census-backfill/census-backfill"
STARTUP_SECONDS = 90
RUN_SECONDS = 150
LOG_SECONDS = 30
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Stack:
    api: str
    env: dict[str, str]
    db: Path
    logs: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A `prefect` command as a user types it, from the checkout, against this stack's server."""
        done = subprocess.run(
            [PREFECT, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def post(self, path: str, body: dict) -> list[dict]:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> dict:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def task_runs(self, flow_run_id: str) -> list[dict]:
        """Every task run of the flow run, page by page (the API answers at most 200 at a time)."""
        found: list[dict] = []
        while True:
            page = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}},
                                                   "offset": len(found), "limit": 200})
            found += page
            if len(page) < 200:
                return found

    def run_backfill(self, *params: str) -> subprocess.CompletedProcess[str]:
        args = ["deployment", "run", DEPLOYMENT]
        for param in params:
            args += ["--param", param]
        return self.cli(*args, check=False)

    def wait_for(self, flow_run_id: str) -> dict:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            flow_run = self.get(f"/flow_runs/{flow_run_id}")
            if flow_run["state"]["type"] in TERMINAL:
                return flow_run
            time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} not finished after {RUN_SECONDS}s; worker log:\n{self.tail()}")

    def logger_names(self, flow_run_id: str, text: str, expected: str) -> set[str]:
        """Names of the loggers whose INFO lines of the run hold `text`, once `expected` is among them or after
        LOG_SECONDS. The run's last log batches reach the API after its state turns COMPLETED (Prefect's log
        worker sends them in the background), so a single query right after `wait_for` can miss them."""
        deadline = time.monotonic() + LOG_SECONDS
        while True:
            logs = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]},
                                                       "level": {"ge_": 20, "le_": 20}, "text": {"query": text}}})
            names = {log["name"] for log in logs}
            if expected in names or time.monotonic() > deadline:
                return names
            time.sleep(0.5)

    def tail(self, lines: int = 60) -> str:
        text = "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(home: Path, port: int) -> dict[str, str]:
    """The calling shell's environment without any Prefect or census setting, plus this stack's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "MODEL_CENSUS_")) and key not in {"HF_TOKEN", "HF_ENDPOINT"}
    }
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "HF_HOME": str(home / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running process in its own process group, so stopping it stops its children too."""
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def child_groups(pid: int) -> set[int]:
    """Process groups of `pid`'s children: the worker starts each flow run in a group of its own."""
    groups = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            groups.add(int(fields[2]))
    return groups - {os.getpgid(pid)}


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (and to any flow run it started), SIGKILL after 15 seconds."""
    if process.poll() is not None:
        return
    groups = [process.pid, *child_groups(process.pid)]
    for group in groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            pass  # a flow run that ended on its own just now
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    for group in groups[1:]:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it stopped on the SIGTERM


def wait_healthy(api: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"prefect server exited {server.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {STARTUP_SECONDS}s:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("prefect-stack")
    logs = home / "logs"
    logs.mkdir()
    port = free_port()
    env = clean_environment(home, port)
    api = env["PREFECT_API_URL"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, logs / "server.log")
        )
        wait_healthy(api, processes[0], logs / "server.log")
        with ReplayServer(DEMO_SNAPSHOT, demo_routes()) as sources:
            db = home / "census.duckdb"
            stack = Stack(api, env, db, logs)
            stack.cli("work-pool", "create", "census", "--type", "process")
            stack.cli("deploy", "--prefect-file", "deployments.yaml", "--all", "--no-prompt")
            worker_env = {
                **env,
                **demo_environment(sources.url, db),
                "MODEL_CENSUS_HOME": str(REPO),
                "MODEL_CENSUS_TASK_RETRIES": "0",
                "PREFECT_WORKER_QUERY_SECONDS": "1",
            }
            processes.append(
                start([PREFECT, "worker", "start", "--pool", "census", "--type", "process"], worker_env,
                      logs / "worker.log")
            )
            yield stack
    finally:
        for process in reversed(processes):
            stop(process)


def demo_months() -> list[str]:
    """`2015-01` .. this month: the months a backfill from `DEMO_SINCE` to today covers."""
    today = datetime.now(timezone.utc).date()
    months, year, month = [], DEMO_SINCE.year, DEMO_SINCE.month
    while (year, month) <= (today.year, today.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def created_run_id(done: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout)
    assert done.returncode == 0 and match, f"no flow run created:\n{done.stdout}\n{done.stderr}"
    return match.group(1)


HOLD_SLOT = """
import sys, time
from flows.concurrency import ensure_source_limits, source_slot
ensure_source_limits(["lease-test"])
with source_slot("lease-test", wait_seconds=10):
    print("held", flush=True)
    time.sleep(600)
"""
LEASE_DEADLINE_SECONDS = 120
"""`SLOT_LEASE_SECONDS` (60), plus the server's pass over expired leases (every 15 s), plus slack."""


@pytest.fixture(scope="module")
def killed_holder(stack: Stack) -> float:
    """A run that took the `lease-test` source slot and was SIGKILLed holding it; when it died."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SLOT], cwd=REPO, env=stack.env, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=15)
    return time.monotonic()


def test_a_run_killed_holding_a_source_slot_keeps_it_taken_for_now(stack: Stack, killed_holder: float) -> None:
    assert stack.get("/v2/concurrency_limits/census-source-lease-test")["active_slots"] == 1


def test_deploy_creates_the_nightly_schedule_and_the_backfill_form(stack: Stack) -> None:
    nightly = stack.get("/deployments/name/census-nightly/census-nightly")
    backfill = stack.get("/deployments/name/census-backfill/census-backfill")

    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in nightly["schedules"]] == [("0 3 * * *", "UTC")]
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert backfill["schedules"] == []
    assert backfill["enforce_parameter_schema"] is True
    assert nightly["work_pool_name"] == backfill["work_pool_name"] == "census"
    for deployment in (nightly, backfill):
        assert deployment["job_variables"] == {"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "sources,warehouse,transforms"}}
    assert backfill["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $MODEL_CENSUS_HOME }}"}}
    ]
    form = backfill["parameter_openapi_schema"]["properties"]
    assert set(form) == {"since", "until", "sources"}
    for name, field in form.items():
        assert field.get("description"), f"{name} has no description for the UI form"
        assert "default" in field, f"{name} has no default"
    assert set(form["sources"]["items"]["enum"]) == set(ALL_SOURCES)
    pool = stack.get("/work_pools/census")
    assert pool["type"] == "process"


def test_backfill_through_the_worker_loads_the_warehouse_and_shows_its_artifacts(stack: Stack) -> None:
    flow_run_id = created_run_id(
        stack.run_backfill(f"since={DEMO_SINCE.isoformat()}", f"sources={json.dumps(list(ALL_SOURCES))}")
    )
    flow_run = stack.wait_for(flow_run_id)
    assert flow_run["state"]["type"] == "COMPLETED", f"{flow_run['state']['message']}\n{stack.tail()}"

    with duckdb.connect(str(stack.db), read_only=True) as con:
        releases = con.execute("select count(*) from releases").fetchone()[0]
        quarters = con.execute("select count(*) from release_cadence_quarterly").fetchone()[0]
    assert releases > 0 and quarters > 0
    with duckdb.connect(str(stack.db.with_name("census.work.duckdb")), read_only=True) as con:
        statuses = dict(con.execute("select source, status from ingestion_runs where run_id = ?", [flow_run_id]).fetchall())
    assert statuses == {source: "success" for source in ALL_SOURCES}

    artifacts = stack.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    by_key = {artifact["key"]: artifact for artifact in artifacts if artifact["key"]}
    counts = by_key["census-run-counts"]
    assert counts["type"] == "table"
    rows = json.loads(counts["data"]) if isinstance(counts["data"], str) else counts["data"]
    assert {row["source"]: row["status"] for row in rows} == {source: "success" for source in ALL_SOURCES}
    assert all(row["fetched"] == row["new"] + row["changed"] + row["unchanged"] + row["rejected"] for row in rows)
    assert sum(row["fetched"] for row in rows) > 0
    assert float(by_key["census-run-progress"]["data"]) == 100.0
    for source in ALL_SOURCES:
        progress = by_key[progress_key(source)]
        assert progress["type"] == "progress" and float(progress["data"]) == 100.0

    with duckdb.connect(str(stack.db.with_name("census.work.duckdb")), read_only=True) as con:
        recorded = {source: (fetched, new, requests) for source, fetched, new, requests in con.execute(
            "select source, fetched, new, requests from ingestion_runs where run_id = ?", [flow_run_id]).fetchall()}
    assert {row["source"]: (row["fetched"], row["new"], row["requests"]) for row in rows} == recorded, \
        "the table adds up each source's months as its ingestion_runs row does"

    names = {task_run["name"] for task_run in stack.task_runs(flow_run_id)}
    months = demo_months()
    first, last = months[0], months[-1]
    for source in ("arxiv", "paperswithcode"):
        assert {name for name in names if name.startswith(f"ingest-{source}-")} == {
            f"ingest-{source}-{month}" for month in months}, f"{source}: one task run per month"
    for source in ("epoch", "open_llm_leaderboard"):
        assert {name for name in names if name.startswith(f"ingest-{source}-")} == {f"ingest-{source}-{first}..{last}"}
    # The demo serves no hub-stats: the first month falls back to the listing, the rest is one walk of it.
    assert {name for name in names if name.startswith("ingest-huggingface-")} == {
        f"ingest-huggingface-{first}", f"ingest-huggingface-{months[1]}..{last}"}
    assert {"rebuild-curated", "publish-warehouse"} <= names
    assert "transforms.build_releases" in stack.logger_names(flow_run_id, "rows written", "transforms.build_releases"), \
        "the run log holds our modules' INFO lines"
    for source in ALL_SOURCES:
        assert stack.get(f"/v2/concurrency_limits/census-source-{source}")["limit"] == 1


def test_unknown_source_is_refused_when_the_run_is_created(stack: Stack) -> None:
    done = stack.run_backfill('sources=["nope"]')
    assert done.returncode != 0
    message = " ".join((done.stdout + done.stderr).split())
    assert "Validation failed" in message and "'nope' is not one of" in message, message


def test_a_window_in_the_future_fails_the_run_with_the_reason_before_anything_runs(stack: Stack) -> None:
    flow_run_id = created_run_id(stack.run_backfill("since=2999-01-01"))
    flow_run = stack.wait_for(flow_run_id)
    assert flow_run["state"]["type"] == "FAILED"
    assert "since 2999-01-01 is in the future" in flow_run["state"]["message"]
    assert stack.task_runs(flow_run_id) == [], "nothing may run for a refused window"


def test_the_killed_runs_slot_is_freed_when_its_lease_runs_out(stack: Stack, killed_holder: float) -> None:
    """Runs last, so the backfill above has used the lease's minute: no run waits on a dead one for long."""
    while stack.get("/v2/concurrency_limits/census-source-lease-test")["active_slots"] != 0:
        assert time.monotonic() - killed_holder < LEASE_DEADLINE_SECONDS, \
            f"the slot of a killed run still taken after {LEASE_DEADLINE_SECONDS}s"
        time.sleep(2)
    assert time.monotonic() - killed_holder >= 30, "freed by its lease, not released by the killed run"
