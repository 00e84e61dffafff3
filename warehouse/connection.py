"""Opening the warehouse: one UTC connection, migrations applied, and one writer at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from pydantic import ByteSize, TypeAdapter

from warehouse.migrations import apply_migrations


class WarehouseBusy(RuntimeError):
    """Another run holds the writer lock for longer than this run was willing to wait."""


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection whose date parts are UTC whatever the machine's zone."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    return con


INDEX_BYTES_PER_RAW_ROW = 80
"""What a raw table's primary-key index takes in memory per row, with room to spare: DuckDB holds the
whole index in memory to insert into the table, 155 MB for 2.5 million Hub models (62 bytes a key)."""


def open_work_db(path: Path, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """The pipeline's private database, created if missing and upgraded in place if older.

    `memory_limit` caps DuckDB's buffer memory (e.g. '128MB') beyond the largest raw table's key index,
    which is added to it (`INDEX_BYTES_PER_RAW_ROW`): an insert cannot spill that index, so a fixed 128 MB
    failed every Hub landing once the table held 2.5 million models. Without a limit DuckDB may keep 80%
    of the machine's RAM in cache: an ingest kept every block it wrote (775 MB after 1 M Hub records), and
    a full-size rebuild held its staging tables in memory until Python ran out (docs/PERFORMANCE.md).
    The limit belongs to the database, not the connection: every connection this process holds to
    `path` shares it, so each opener sets the one it needs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    apply_migrations(con)
    if memory_limit is not None:
        con.execute("set memory_limit = ?", [f"{memory_limit_with_raw_index(con, memory_limit)}B"])
    return con


def memory_limit_with_raw_index(con: duckdb.DuckDBPyConnection, memory_limit: str) -> int:
    """`memory_limit` (a size such as '128MB'; pydantic's units are DuckDB's) in bytes, plus room for the
    largest raw table's key index."""
    rows = con.execute(
        "select coalesce(max(estimated_size), 0) from duckdb_tables() "
        "where database_name = current_database() and starts_with(table_name, 'raw_')"
    ).fetchone()[0]
    return int(TypeAdapter(ByteSize).validate_python(memory_limit)) + rows * INDEX_BYTES_PER_RAW_ROW


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables of the connection's current database (what a derived table's bookkeeping checks first)."""
    return {row[0] for row in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database()").fetchall()}


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows of `table`, one of our own table or view names (never user input)."""
    return con.execute(f"select count(*) from {table}").fetchone()[0]


@contextmanager
def writer_lock(work_db: Path, *, wait_seconds: float, poll_seconds: float = 1.0) -> Iterator[None]:
    """Serialize writers: a second run waits up to `wait_seconds`, then fails saying who holds the lock.

    An OS file lock rather than DuckDB's own, so the waiting run can wait instead of failing at
    once, and the lock dies with its process (a killed run never leaves a stale lock behind).
    """
    lock_path = work_db.with_name(work_db.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise WarehouseBusy(
                        f"another census run ({holder}) is writing {work_db}; waited {wait_seconds:.0f}s. "
                        "Try again when it has finished, or raise MODEL_CENSUS_LOCK_WAIT_SECONDS."
                    ) from None
                time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
