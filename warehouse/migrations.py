"""Versioned schema migrations: numbered SQL files, each applied once, in order, in a transaction.

An older warehouse file is upgraded in place; nothing is ever dropped and recreated, because raw
tables hold payloads that may no longer be fetchable.
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

MIGRATIONS_PACKAGE = "warehouse"
MIGRATIONS_DIR = "sql/migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file shipped with the package, in order."""
    folder = resources.files(MIGRATIONS_PACKAGE).joinpath(MIGRATIONS_DIR)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply what this file has not seen yet; returns the names applied."""
    con.execute(
        "create table if not exists schema_migrations "
        "(version integer primary key, name varchar not null, applied_at timestamptz not null)"
    )
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for version, name, sql in available_migrations():
        if version in done:
            continue
        con.execute("begin transaction")
        try:
            con.execute(sql)
            con.execute(
                "insert into schema_migrations values (?, ?, current_timestamp)", [version, name]
            )
        except Exception:
            con.execute("rollback")
            raise
        # Outside the `try`: a commit that fails (a full disk) has already ended the transaction, and
        # a rollback then would replace the real error with "no transaction is active".
        con.execute("commit")
        applied.append(f"{version:04d}_{name}")
    return applied
