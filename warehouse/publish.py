"""Publishing the analysts' copy of the warehouse, whole or not at all.

DuckDB lets one process open a file to write, or many to read, never both. So the pipeline writes
its private working file and, after each run, copies everything but the raw payloads into a
temporary file next to the published one and renames it over it. Renaming is atomic: a session
that has the old file open keeps reading the old snapshot, a new one sees the new, and no reader
ever holds a lock the writer needs. The cost is one copy of the curated tables per run.
"""

from __future__ import annotations

import errno
import glob
import os
from pathlib import Path

import duckdb

from transforms.rebuild import VIEWS, create_view

NOT_PUBLISHED_PREFIXES = ("raw_", "schema_migrations", "_")


class PublishFailed(RuntimeError):
    """The analysts' copy could not be written (a full disk, say); the one they had is left as it was."""


def publish(con: duckdb.DuckDBPyConnection, target: Path) -> list[str]:
    """Copy the work database's tables (but raw) and views into `target`, atomically; returns the tables.

    The caller holds the writer lock (`warehouse.connection.writer_lock`), so any other temporary
    file beside `target` is what a killed run left behind, and is removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.publishing*"):
        leftover.unlink(missing_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.publishing")
    work_catalog = con.execute("select current_database()").fetchone()[0]
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'main' and not temporary order by table_name"
        ).fetchall()
        if not row[0].startswith(NOT_PUBLISHED_PREFIXES)
    ]
    try:
        _copy_into(con, temporary, tables, work_catalog)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
        if isinstance(exc, (duckdb.Error, OSError)):
            raise PublishFailed(f"could not publish {target}: {_reason(exc, target)}; the published warehouse is unchanged") from exc
        raise
    return tables


def _reason(exc: BaseException, target: Path) -> str:
    """One line for the operator: a full disk said plainly (DuckDB nests it in two wrapped errors)."""
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc):
        return f"no space left on the device holding {target.parent}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _copy_into(con: duckdb.DuckDBPyConnection, temporary: Path, tables: list[str], work_catalog: str) -> None:
    con.execute("attach ? as published", [str(temporary)])
    try:
        for table in tables:
            con.execute(f"create table published.main.{_quoted(table)} as select * from main.{_quoted(table)}")
        con.execute("use published")
        try:
            for view in VIEWS:
                create_view(con, view)
        finally:
            con.execute(f"use {_quoted(work_catalog)}")
        con.execute("checkpoint published")
    finally:
        con.execute("detach published")


def _quoted(identifier: str) -> str:
    """A quoted SQL identifier: the work catalog is named after the file, whatever characters it has."""
    return '"' + identifier.replace('"', '""') + '"'


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk, so a power cut cannot publish a file of zeros."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
