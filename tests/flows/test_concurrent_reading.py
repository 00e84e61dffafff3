"""Analysts read the published file while a nightly run replaces it: no error, no half-written state, no lock."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.replay_server import ReplayServer
from transforms.rebuild import VIEWS

EPOCH = Path(__file__).parents[1] / "fixtures" / "epoch"
SMALL = EPOCH / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv"
LARGE = EPOCH / "notable_ai_models_snapshot_2026-07-19.csv"
pytestmark = pytest.mark.usefixtures("prefect_api")

SNAPSHOT_QUERY = """
select
    (select count(*) from releases),
    (select coalesce(sum(raw_records), 0) from source_status),
    (select coalesce(sum(releases), 0) from release_cadence_quarterly),
    (select count(*) from releases where is_notable and released_on <= current_date),
    (select count(*) from duckdb_views() where not internal and view_name in ({views}))
""".format(views=", ".join(f"'{name}'" for name in VIEWS))
"""One consistent reading of a published file: what an analyst would see in one session."""

LOOPER = """
import collections, json, pathlib, sys, duckdb
published, stop, query = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
seen, errors, reads = collections.Counter(), [], 0
while not stop.exists():
    try:
        con = duckdb.connect(str(published), read_only=True)
        try:
            seen[json.dumps(con.execute(query).fetchall()[0])] += 1
        finally:
            con.close()
        if len(seen) > 1:
            stop.with_name("changed").touch()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    reads += 1
    if reads == 1:
        print("ready", flush=True)
print(json.dumps({"seen": seen, "errors": errors[:5], "error_count": len(errors), "reads": reads}), flush=True)
"""
"""A fresh read-only session per query, as an analyst's script in a loop."""

IDLE = """
import json, pathlib, sys, time, duckdb
published, stop, query = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
con = duckdb.connect(str(published), read_only=True)
before = con.execute(query).fetchall()[0]
print("ready", flush=True)
while not stop.exists():
    time.sleep(0.05)
print(json.dumps({"before": before, "after": con.execute(query).fetchall()[0]}), flush=True)
"""
"""The analyst's forgotten session: opened before the run, still open after it."""


def reader(script: str, published: Path, stop: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(published), str(stop), SNAPSHOT_QUERY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
    return process


def snapshot(published: Path) -> list:
    with duckdb.connect(str(published), read_only=True) as con:
        return list(con.execute(SNAPSHOT_QUERY).fetchall()[0])


def test_readers_see_whole_runs_only_and_never_block_the_nightly_run(
    tmp_path: Path, census_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(SMALL, served / "notable_ai_models.csv")
    stop = tmp_path / "stop"
    with ReplayServer(served) as server:
        monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", f"{server.url}/notable_ai_models.csv")
        assert main(["run", "--source", "epoch"]) == 0
        before = snapshot(census_env)

        idle = reader(IDLE, census_env, stop)
        looper = reader(LOOPER, census_env, stop)
        try:
            shutil.copy(LARGE, served / "notable_ai_models.csv")
            started = time.monotonic()
            assert main(["run", "--source", "epoch"]) == 0, "an open read-only session must not fail the run"
            run_seconds = time.monotonic() - started
            after = snapshot(census_env)
            deadline = time.monotonic() + 30
            while not (tmp_path / "changed").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # until the loop has read the new file
        finally:
            stop.touch()
            looped, _ = looper.communicate(timeout=60)
            held, _ = idle.communicate(timeout=60)

    assert before[1] == 150 and after[1] > before[1] and after[0] > before[0], (before, after)
    for state in (before, after):
        assert state[2] == state[3], "the cadence view counts what the releases table holds"
        assert state[4] == len(VIEWS), "every view is there"
    loop = json.loads(looped)
    assert loop["error_count"] == 0, loop["errors"]
    assert {tuple(json.loads(state)) for state in loop["seen"]} == {tuple(before), tuple(after)}, (
        "the loop saw only the complete old and the complete new warehouse"
    )
    assert loop["reads"] > 10, f"the loop read only {loop['reads']} times during a {run_seconds:.1f}s run"
    forgotten = json.loads(held)
    assert forgotten["before"] == forgotten["after"] == before, "an open session keeps the snapshot it opened"
