"""Publishing the analysts' copy of the warehouse, whole or not at all.

DuckDB lets one process open a file to write, or many to read, never both. So the pipeline writes
its private working file and, after each run, writes everything but the raw payloads into a
temporary file next to the published one and renames it over it. Renaming is atomic: a session
that has the old file open keeps reading the old snapshot, a new one sees the new, and no reader
ever holds a lock the writer needs.

Writing that file from nothing took 12 s a night at full Hub size, for a few thousand changed rows
among millions. So when the published file is the one this work database last published (both hold
its generation), the temporary file starts as a copy of it, and only the keys the night's writers
noted (`warehouse.journal`) are replaced in the large tables; each small one is copied whole unless its rows
are those the copy holds already (a row count and a sum of row hashes, 15 ms against 740 ms to copy Papers
With Code's 100,000 results, which a night rarely changes). A first
publish, a large table rewritten whole (a first build, a change of rules), a published file replaced or
touched by anything else, a schema migration, a change of any table's columns, a count that does not
match afterwards, or a file grown past `MAX_GROWTH` times its size when last written whole: each gives a
file written from nothing instead, as before.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import duckdb

from transforms.rebuild import VIEWS, create_view
from warehouse.connection import table_names
from warehouse.journal import JOURNAL_TABLE, JOURNALED
from warehouse.raw import transaction

logger = logging.getLogger(__name__)

NOT_PUBLISHED_PREFIXES = ("raw_", "schema_migrations", "_")
PUBLICATION_TABLE = "_publication"
"""In the published file: the generation it holds, and when it was published."""
LAST_PUBLICATION_TABLE = "_last_publication"
"""In the work database: the generation it last published, the file's size when last written whole and
the schema version it was published under."""
MAX_GROWTH = 1.5
GROWTH_ALLOWANCE_BYTES = 64 * 2**20
"""Replaced rows leave free blocks behind that DuckDB reuses only in part: past `MAX_GROWTH` times its size
when last written whole, plus this allowance, the published file is written whole again, compact. (A night
grew the 752 MB full-size file to 838 MB, after which it held steady; the 3 MB file of the tests' fixtures
grows to 5 to 7 MB, all free blocks, hence an allowance besides the factor.)"""

PUBLISHED_TABLES = (
    "select table_name from duckdb_tables() where database_name = current_database() "
    "and schema_name = 'main' and not temporary order by table_name"
)
COLUMNS_OF = (
    "select table_name, list(column_name || ' ' || data_type order by column_index) from duckdb_columns() "
    "where database_name = $catalog and schema_name = 'main' "
    "and table_oid in (select table_oid from duckdb_tables() where database_name = $catalog) group by table_name"
)
SCHEMA_VERSION = "select coalesce(max(version), 0) from schema_migrations"
ROWS_DIGEST = "select count(*), sum(hash(whole_row)) from {table} as whole_row"
"""A table's rows, as a multiset: equal for the same rows in any order, different (but for a 64-bit hash
collision) for any other; {table} is one of our own table names, qualified by its catalog."""
JOURNAL_ENTRIES = f"select table_name, count(distinct key), count(*) - count(key) from {JOURNAL_TABLE} group by table_name"
RECORD_PUBLICATION = f"""
create or replace table {LAST_PUBLICATION_TABLE} as
select $generation as generation, $whole_bytes::bigint as whole_bytes, $schema_version as schema_version
"""


class PublishFailed(RuntimeError):
    """The analysts' copy could not be written (a full disk, say); the one they had is left as it was."""


class _NotAsNoted(Exception):
    """A copy updated from the journal does not match the work database: it is written whole instead."""


@dataclass(frozen=True)
class Published:
    """What one publish wrote: its tables, and either the keys it replaced per journaled table or why it
    wrote every table."""

    tables: list[str]
    replaced_keys: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    """Tables not journaled whose rows the last published file held already, so not copied."""
    whole_because: str | None = None

    def summary(self) -> str:
        if self.whole_because is not None:
            return f"{len(self.tables)} tables written whole ({self.whole_because})"
        keys = ", ".join(f"{table} {count:,}" for table, count in sorted(self.replaced_keys.items())) or "none"
        copied = len(self.tables) - len(self.replaced_keys) - len(self.unchanged)
        return (f"{len(self.tables)} tables updated from the last publication: keys replaced {keys}; "
                f"of the other tables, {copied} copied whole and {len(self.unchanged)} unchanged")


def publish(con: duckdb.DuckDBPyConnection, target: Path) -> Published:
    """Copy the work database's tables (but raw) and views into `target`, atomically.

    The caller holds the writer lock (`warehouse.connection.writer_lock`), so any other temporary
    file beside `target` is what a killed run left behind, and is removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.publishing*"):
        leftover.unlink(missing_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.publishing")
    work_catalog = con.execute("select current_database()").fetchone()[0]
    tables = [row[0] for row in con.execute(PUBLISHED_TABLES).fetchall() if not row[0].startswith(NOT_PUBLISHED_PREFIXES)]
    generation = uuid4().hex
    schema_version = con.execute(SCHEMA_VERSION).fetchone()[0]
    try:
        published = _update_last(con, target, temporary, tables, work_catalog, generation, schema_version)
        if published.whole_because is not None:
            _remove(temporary)
            _copy_into(con, temporary, tables, work_catalog, generation)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    except BaseException as exc:
        _remove(temporary)
        if isinstance(exc, (duckdb.Error, OSError)):
            raise PublishFailed(f"could not publish {target}: {_reason(exc, target)}; the published warehouse is unchanged") from exc
        raise
    try:
        _record(con, generation, target.stat().st_size if published.whole_because is not None else None, schema_version)
    except duckdb.Error as exc:
        logger.warning("published %s, but could not record it in the work database (%s): the next publish "
                       "writes every table anew", target, " ".join(str(exc).split()))
    return published


def _update_last(
    con: duckdb.DuckDBPyConnection, target: Path, temporary: Path, tables: list[str], work_catalog: str,
    generation: str, schema_version: int,
) -> Published:
    """The last published file, copied to `temporary` and brought up to date from the journal, if it can be;
    otherwise a `Published` saying why the tables are to be written whole (and `temporary` may be left
    half-written for the caller to remove)."""
    last = _last_publication(con)
    if last is None:
        return Published(tables, whole_because="no earlier publication from this work database")
    last_generation, whole_bytes, last_schema = last
    if not target.exists():
        return Published(tables, whole_because=f"{target.name} is missing")
    if last_schema != schema_version:
        return Published(tables, whole_because="the schema was migrated since")
    if target.stat().st_size > MAX_GROWTH * whole_bytes + GROWTH_ALLOWANCE_BYTES:
        return Published(tables, whole_because=f"the file grew past {MAX_GROWTH}x its size when last written whole")
    entries = _journal_entries(con)
    rewritten = sorted(table for table, (_, wholes) in entries.items() if wholes)
    if rewritten:
        return Published(tables, whole_because=f"rewritten whole since: {', '.join(rewritten)}")
    shutil.copyfile(target, temporary)
    try:
        con.execute("attach ? as published", [str(temporary)])
    except duckdb.Error as exc:
        return Published(tables, whole_because=f"the published file does not open ({' '.join(str(exc).split())})")
    try:
        why = _why_not_in_step(con, tables, work_catalog, last_generation)
        if why is not None:
            return Published(tables, whole_because=why)
        try:
            replaced, unchanged = _apply_journal(con, tables, work_catalog, generation, entries)
        except _NotAsNoted as exc:
            logger.warning("publish: %s; writing every table anew", exc)
            return Published(tables, whole_because=str(exc))
        con.execute("checkpoint published")
    finally:
        con.execute("detach published")
    return Published(tables, replaced_keys=replaced, unchanged=unchanged)


def _last_publication(con: duckdb.DuckDBPyConnection) -> tuple[str, int, int] | None:
    if LAST_PUBLICATION_TABLE not in table_names(con):
        return None
    return con.execute(f"select generation, whole_bytes, schema_version from {LAST_PUBLICATION_TABLE}").fetchone()


def _why_not_in_step(con: duckdb.DuckDBPyConnection, tables: list[str], work_catalog: str, generation: str) -> str | None:
    """Why the attached copy of the last published file cannot be updated key by key, or None if it can."""
    held = con.execute("select table_name from duckdb_tables() where database_name = 'published'").fetchall()
    if (PUBLICATION_TABLE,) not in held:
        return "the published file holds no generation"
    if con.execute(f"select generation from published.main.{PUBLICATION_TABLE}").fetchall() != [(generation,)]:
        return "the published file is not the one this work database last published"
    work = dict(con.execute(COLUMNS_OF, {"catalog": work_catalog}).fetchall())
    published = dict(con.execute(COLUMNS_OF, {"catalog": "published"}).fetchall())
    del published[PUBLICATION_TABLE]
    if published != {table: work[table] for table in tables}:
        return "the tables or their columns changed"
    return None


def _journal_entries(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Per table noted since the last publish: (distinct keys, notes of the whole table)."""
    if JOURNAL_TABLE not in table_names(con):
        return {}
    return {table: (keys, wholes) for table, keys, wholes in con.execute(JOURNAL_ENTRIES).fetchall()}


def _apply_journal(
    con: duckdb.DuckDBPyConnection, tables: list[str], work_catalog: str, generation: str, entries: dict[str, tuple[int, int]]
) -> tuple[dict[str, int], list[str]]:
    """Replace the noted keys' rows of the journaled tables in the attached copy, and every other table whose
    rows differ, whole; returns the keys replaced per journaled table and the other tables left as they were.
    (A table noted whole makes the whole file written anew.)"""
    replaced, unchanged = {}, []
    for table in tables:
        if table in JOURNALED:
            keys = entries.get(table, (0, 0))[0]
            if keys:
                name, key = f"published.main.{_quoted(table)}", _quoted(JOURNALED[table])
                noted = f"(select key from main.{JOURNAL_TABLE} where table_name = $table)"
                work = f"main.{_quoted(table)}"
                con.execute(f"delete from {name} where {key} in {noted}", {"table": table})
                # By row id: a filter on the key alone reads every column of every row (3,410 of 1.7 million
                # releases: 0.8 to 1.7 s, 0.08 to 0.13 s this way; docs/PERFORMANCE.md).
                con.execute(f"insert into {name} select * from {work} where rowid in "
                            f"(select rowid from {work} where {key} in {noted})", {"table": table})
            replaced[table] = keys
        elif _rows_digest(con, f"published.main.{_quoted(table)}") == _rows_digest(con, f"main.{_quoted(table)}"):
            unchanged.append(table)
        else:
            _copy_table(con, table)
    for table in replaced:
        counts = [con.execute(f"select count(*) from {catalog}.main.{_quoted(table)}").fetchone()[0]
                  for catalog in ("published", _quoted(work_catalog))]
        if counts[0] != counts[1]:
            raise _NotAsNoted(f"{table} would hold {counts[0]:,} rows against the work database's {counts[1]:,} "
                              "(rows written without a journal entry)")
    _finish(con, work_catalog, generation)
    return replaced, unchanged


def _rows_digest(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int | None]:
    return con.execute(ROWS_DIGEST.format(table=table)).fetchone()


def _copy_into(con: duckdb.DuckDBPyConnection, temporary: Path, tables: list[str], work_catalog: str, generation: str) -> None:
    con.execute("attach ? as published", [str(temporary)])
    try:
        for table in tables:
            _copy_table(con, table)
        _finish(con, work_catalog, generation)
        con.execute("checkpoint published")
    finally:
        con.execute("detach published")


def _copy_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """The work database's `table`, whole, in the attached copy (in place of any it holds)."""
    con.execute(f"create or replace table published.main.{_quoted(table)} as select * from main.{_quoted(table)}")


def _finish(con: duckdb.DuckDBPyConnection, work_catalog: str, generation: str) -> None:
    """The views and the generation, in the attached copy."""
    con.execute(f"create or replace table published.main.{PUBLICATION_TABLE} as "
                "select ? as generation, now() as published_at", [generation])
    con.execute("use published")
    try:
        for view in VIEWS:
            create_view(con, view)
    finally:
        con.execute(f"use {_quoted(work_catalog)}")


def _record(con: duckdb.DuckDBPyConnection, generation: str, whole_bytes: int | None, schema_version: int) -> None:
    """After the rename: the work database's journal is spent, and the published file holds `generation`.
    A crash before this commits leaves the generations unequal, so the next publish writes whole."""
    with transaction(con):
        if whole_bytes is None:
            whole_bytes = con.execute(f"select whole_bytes from {LAST_PUBLICATION_TABLE}").fetchone()[0]
        if JOURNAL_TABLE in table_names(con):
            con.execute(f"delete from {JOURNAL_TABLE}")
        con.execute(RECORD_PUBLICATION, {"generation": generation, "whole_bytes": whole_bytes, "schema_version": schema_version})


def _remove(temporary: Path) -> None:
    temporary.unlink(missing_ok=True)
    temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def _reason(exc: BaseException, target: Path) -> str:
    """One line for the operator: a full disk said plainly (DuckDB nests it in two wrapped errors)."""
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc):
        return f"no space left on the device holding {target.parent}"
    return " ".join(str(exc).split()) or type(exc).__name__


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
