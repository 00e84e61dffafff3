"""A nearly full file system under the warehouse: a clear error, and the published copy unchanged.

The warehouse lives on a small tmpfs mounted for the test (root may mount; elsewhere the tests skip
and say why). The disk is filled with a plain file up to a few kilobytes, then a run is tried.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from faulty_server import FaultyServer, ok
from flows.ingest import IngestRun, Window
from flows.ingest_epoch import ingest_epoch
from flows.settings import Settings
from transforms.rebuild import rebuild
from warehouse.connection import connect, open_work_db
from warehouse.publish import PublishFailed, publish

EPOCH = Path(__file__).parents[1] / "fixtures" / "epoch"
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


def snapshot(changed: bool) -> bytes:
    notable = (EPOCH / "notable_ai_models_snapshot_2026-07-19.csv").read_bytes()
    if changed:
        notable = notable.replace(b",2026-07-", b",2026-06-", 3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notable_ai_models.csv", notable)
    return buffer.getvalue()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Write a file that leaves only `leave_bytes` free on `disk`."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(stats.f_bavail * stats.f_frsize - leave_bytes, 0))
    return filler


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release_dates(db: Path) -> list[tuple]:
    with connect(db, read_only=True) as con:
        return con.execute("select release_id, released_on from releases order by release_id").fetchall()


def load_and_build(settings: Settings, run_id: str) -> None:
    con = open_work_db(settings.work_db)
    try:
        ingest_epoch(IngestRun(con, "epoch", run_id), settings, Window())
        rebuild(con, settings.release_inputs())
    finally:
        con.close()


def test_publishing_onto_a_full_disk_says_so_and_leaves_the_published_copy_as_it_was(
    small_disk: Path, faulty_server: FaultyServer
) -> None:
    url = faulty_server.script("/ai_models.zip", ok(snapshot(False)))
    settings = Settings(db=small_disk / "census.duckdb", epoch_url=url)
    load_and_build(settings, "run-1")
    with open_work_db(settings.work_db) as con:
        publish(con, settings.db)
    before, dates_before = digest(settings.db), release_dates(settings.db)

    faulty_server.script("/ai_models.zip", ok(snapshot(True)))
    load_and_build(settings, "run-2")
    filler = fill(small_disk, 256 << 10)
    with open_work_db(settings.work_db) as con:
        with pytest.raises(PublishFailed) as raised:
            publish(con, settings.db)
    assert str(raised.value) == (
        f"could not publish {settings.db}: no space left on the device holding {small_disk}; "
        "the published warehouse is unchanged"
    )
    assert digest(settings.db) == before and release_dates(settings.db) == dates_before
    assert not list(small_disk.glob(".*publishing*")), "the half-written copy was removed"

    filler.unlink()
    with open_work_db(settings.work_db) as con:
        publish(con, settings.db)
    assert release_dates(settings.db) != dates_before, "with room again, the new data is published"


@pytest.mark.usefixtures("prefect_api")
def test_a_run_on_a_full_disk_fails_clearly_and_the_next_one_recovers(
    small_disk: Path, faulty_server: FaultyServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    url = faulty_server.script("/ai_models.zip", ok(snapshot(False)))
    db = small_disk / "census.duckdb"
    monkeypatch.setenv("MODEL_CENSUS_DB", str(db))
    monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", url)
    monkeypatch.setenv("MODEL_CENSUS_TASK_RETRIES", "0")
    monkeypatch.setenv("MODEL_CENSUS_LOCK_WAIT_SECONDS", "5")
    assert main(["run", "--source", "epoch"]) == 0
    before, dates_before = digest(db), release_dates(db)

    faulty_server.script("/ai_models.zip", ok(snapshot(True)))
    filler = fill(small_disk, 48 << 10)
    capsys.readouterr()
    assert main(["run", "--source", "epoch"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("census:")]
    assert errors and "no space left" in errors[-1].lower(), errors
    assert digest(db) == before

    filler.unlink()
    assert main(["run", "--source", "epoch"]) == 0
    assert release_dates(db) != dates_before
