"""What changed in the large published tables since the last publish, so that publishing copies only that.

A night restages a few thousand of 2.5 million Hub repos and regroups a few thousand of 1.7 million
releases, yet copying every table into a new published file took 12 s at full Hub size. So the writers
of the tables below note the keys whose rows they replaced, and `warehouse.publish` applies just those
keys to a copy of the last published file. A writer that replaces a whole table says so instead.

Every write to a table of `JOURNALED` must go through a writer that notes it here, in the same
transaction; anything else (a hand edit, say) is caught only if it changes the table's row count, which
publishing checks before it keeps a copy made this way.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

JOURNAL_TABLE = "_publish_journal"
CREATE_JOURNAL = f"create table if not exists {JOURNAL_TABLE} (table_name varchar not null, key varchar)"
"""One row per (table, key) replaced since the last publish, repeats allowed; a null key: the whole table."""

JOURNALED: dict[str, str] = {
    "stg_huggingface__models": "repo_id",
    "stg_arxiv__papers": "arxiv_id",
    "releases": "release_id",
    "release_members": "release_id",
    "release_exclusions": "member_key",
}
"""Published tables that publishing updates key by key, with the column its journal's keys are values of.
Each of a key's rows is replaced together: its rows in the work database are its rows after publishing."""

NOTE_KEYS = f"insert into {JOURNAL_TABLE} select $table, unnest($keys)"
FORGET_KEYS = f"delete from {JOURNAL_TABLE} where table_name = $table"
NOTE_WHOLE = f"insert into {JOURNAL_TABLE} values ($table, null)"


def note_keys(con: duckdb.DuckDBPyConnection, table: str, keys: Iterable[str]) -> None:
    """Record that the rows of `keys` in `table` were replaced, added or deleted."""
    keys = sorted(set(keys))
    if keys:
        con.execute(CREATE_JOURNAL)
        con.execute(NOTE_KEYS, {"table": _journaled(table), "keys": keys})


def note_keys_in(con: duckdb.DuckDBPyConnection, table: str, source: str, column: str) -> None:
    """`note_keys` with the keys read from `column` of the table `source` (one of ours), without moving them
    through Python."""
    con.execute(CREATE_JOURNAL)
    con.execute(f"insert into {JOURNAL_TABLE} select distinct $table, {column} from {source}", {"table": _journaled(table)})


def note_whole(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Record that `table` was written whole: the next publish copies all of it."""
    con.execute(CREATE_JOURNAL)
    con.execute(FORGET_KEYS, {"table": _journaled(table)})
    con.execute(NOTE_WHOLE, {"table": table})


def _journaled(table: str) -> str:
    if table not in JOURNALED:
        raise ValueError(f"{table} is not published key by key; add it to JOURNALED with its key column")
    return table
