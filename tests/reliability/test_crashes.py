"""SIGKILL at random points of an Epoch run, twenty times in a row: nothing lost, nothing corrupted.

Each run is `crash_driver.py` in a subprocess: the pipeline's own calls for one source (writer lock,
ingest, rebuild, publish) without Prefect, since what is promised here is the warehouse's, and
twenty runs under a Prefect server would take minutes. Kills are aimed in turn at the ingest (between
and during pages), the rebuild and the publishing, at a random moment within the phase; the seed is
fixed so a failure can be replayed.

After every kill: the work database opens and has every migration's schema; each raw record that
was there before the kill is there once (no duplicate version, no version repeating the content of
the one before); the published file is absent (before the first publish) or opens read-only with
all its tables. At the end the next run completes, and its raw tables and every published table and
view (but the times of its own runs) equal those of runs that were never interrupted.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb

from faulty_server import FaultyServer, ok
from flows.export import EXPORTED
from warehouse.connection import connect, open_work_db
from warehouse.migrations import available_migrations

DRIVER = Path(__file__).with_name("crash_driver.py")
EPOCH = Path(__file__).parents[1] / "fixtures" / "epoch"
KILLS = 20
PHASES = ("ingest", "page", "rebuild", "publish")
"""Where kills are aimed, in turn: the download, between/inside page commits, the transforms, the copy."""
SEED = 20261126
TIME_COLUMNS = ("first_seen_at", "updated_at")
"""When a release was first and last fetched: true of each warehouse's own history, not of the data."""


def snapshot(changed: bool) -> bytes:
    """Two genuine Epoch files in a zip (1,186 rows, two pages); `changed` re-dates three models."""
    notable = (EPOCH / "notable_ai_models_snapshot_2026-07-19.csv").read_bytes()
    older = (EPOCH / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv").read_bytes()
    if changed:
        notable = notable.replace(b",2026-07-", b",2026-06-", 3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notable_ai_models.csv", notable)
        archive.writestr("notable_ai_models_2025.csv", older)
    return buffer.getvalue()


def environment(db: Path, url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODEL_CENSUS_")}
    env.update({"MODEL_CENSUS_DB": str(db), "MODEL_CENSUS_EPOCH_URL": url, "MODEL_CENSUS_LOCK_WAIT_SECONDS": "30"})
    return env


def start(db: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER)], env=environment(db, url), cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_to_completion(db: Path, url: str) -> dict[str, float]:
    """An uninterrupted run; returns when each phase started, in seconds from launch."""
    started = time.monotonic()
    process = start(db, url)
    marks: dict[str, float] = {}
    for line in process.stdout:
        marks.setdefault(line.strip(), time.monotonic() - started)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors[-3000:]
    return marks


def run_and_kill(db: Path, url: str, phase: str, within_seconds: float, rng: random.Random) -> str:
    """Start a run, wait for `phase` to begin, SIGKILL it a random moment later; returns where it died."""
    process = start(db, url)
    last = "startup"
    for line in process.stdout:
        last = line.strip()
        if last == phase:
            break
    time.sleep(rng.uniform(0, within_seconds))
    process.send_signal(signal.SIGKILL)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), errors[-3000:]
    if process.returncode == 0:
        return "finished before the kill"
    return [last, *rest.split()][-1]


def raw_rows(db: Path) -> set[tuple[str, int, str]]:
    with connect(db.with_name("census.work.duckdb"), read_only=True) as con:
        return set(con.execute("select source_key, version, content_hash from raw_epoch__models").fetchall())


def check_after_kill(
    db: Path, before: set[tuple[str, int, str]], expected_tables: set[str], published_states: list[list[tuple]]
) -> set[tuple[str, int, str]]:
    work = db.with_name("census.work.duckdb")
    if work.exists():
        con = open_work_db(work)  # what the next run does first: recover the WAL, apply missing migrations
        try:
            tables = {row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()}
            assert expected_tables <= tables, expected_tables - tables
            versions = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
            assert versions == {version for version, _, _ in available_migrations()}
            assert con.execute(
                "select count(*) from (select source_key, version from raw_epoch__models group by all having count(*) > 1)"
            ).fetchone()[0] == 0
            repeated = con.execute(
                """
                select count(*) from (
                    select content_hash, lag(content_hash) over (partition by source_key order by version) as previous
                    from raw_epoch__models
                ) where content_hash = previous
                """
            ).fetchone()[0]
            assert repeated == 0, "a version repeats the content of the one before it"
        finally:
            con.close()
    after = raw_rows(db) if work.exists() else set()
    assert before <= after, f"{len(before - after)} raw records loaded before the kill are gone"
    if db.exists():
        with connect(db, read_only=True) as published:
            assert published.execute("select count(*) from release_cadence_quarterly").fetchone()[0] > 0
        assert releases(db) in published_states, "the published copy is neither the previous one nor the new one"
    return after


def releases(db: Path) -> list[tuple]:
    with connect(db, read_only=True) as con:
        columns = [
            row[0] for row in con.execute(
                "select column_name from duckdb_columns() where table_name = 'releases' order by column_index"
            ).fetchall() if row[0] not in TIME_COLUMNS
        ]
        return con.execute(f"select {', '.join(columns)} from releases order by release_id").fetchall()


def final_tables(db: Path) -> dict[str, list[tuple]]:
    """Every published table and view an analyst reads, rows sorted, without the times of each warehouse's own runs.

    `source_status` is left out: it counts the runs themselves, and the crashed warehouse had more of them.
    """
    with connect(db, read_only=True) as con:
        tables = {}
        for name in EXPORTED:
            if name == "source_status":
                continue
            columns = [
                f'"{column}"' for column, kind in con.execute(
                    "select column_name, data_type from duckdb_columns() where table_name = ? order by column_index",
                    [name],
                ).fetchall() if not kind.startswith("TIMESTAMP")
            ]
            tables[name] = con.execute(f'select {", ".join(columns)} from "{name}" order by all').fetchall()
        return tables


def test_twenty_sigkills_lose_nothing_and_the_next_run_matches_an_uninterrupted_one(
    tmp_path: Path, faulty_server: FaultyServer, fresh_db: duckdb.DuckDBPyConnection
) -> None:
    expected_tables = {row[0] for row in fresh_db.execute("select table_name from duckdb_tables()").fetchall()}
    reference, crashed = tmp_path / "reference" / "census.duckdb", tmp_path / "crashed" / "census.duckdb"
    rng = random.Random(SEED)
    where_killed: list[str] = []
    seen: set[tuple[str, int, str]] = set()

    published_states: list[list[tuple]] = []
    for changed in (False, True):
        # No ETag: every run downloads and lands the whole file again, so every run has an ingest to kill.
        url = faulty_server.script("/ai_models.zip", ok(snapshot(changed), "application/zip"))
        marks = run_to_completion(reference, url)
        published_states = [*published_states[-1:], releases(reference)]  # the old copy, or the new one
        spans = {
            "ingest": marks["page"] - marks["ingest"],
            "page": marks["rebuild"] - marks["page"],
            "rebuild": marks["publish"] - marks["rebuild"],
            "publish": marks["done"] - marks["publish"],
        }
        for kill in range(KILLS // 2):
            phase = PHASES[kill % len(PHASES)]
            where_killed.append(run_and_kill(crashed, url, phase, spans[phase], rng))
            seen = check_after_kill(crashed, seen, expected_tables, published_states)
        run_to_completion(crashed, url)
        seen = check_after_kill(crashed, seen, expected_tables, published_states[-1:])

    killed = [place for place in where_killed if place != "finished before the kill"]
    assert len(killed) >= KILLS - 3, where_killed
    assert {"ingest", "rebuild", "publish"} <= set(killed) | {"page"}, where_killed
    assert raw_rows(crashed) == raw_rows(reference)
    assert releases(crashed) == releases(reference)
    expected, final = final_tables(reference), final_tables(crashed)
    assert sum(len(rows) for rows in expected.values()) > 0
    assert {name: rows for name, rows in final.items() if rows != expected[name]} == {}, "tables differ after the kills"
    assert not list(crashed.parent.glob(".*publishing*")), "a killed publish left its temporary file behind"
    print(f"kills landed in: {where_killed}")
