"""The small staging tables: replaced whole, only when a raw table they read has grown or their rules changed.

Epoch's models, Papers With Code's papers and results and the Open LLM Leaderboard's results are each a
function of one or two raw tables that change rarely (the Papers With Code catalog is an archive now, an
Epoch snapshot mostly repeats the last one), yet rebuilding them every night took 1.0 to 1.3 s of a
full-size night, 0.74 s of it Papers With Code's 100,000 results (docs/PERFORMANCE.md). Raw tables only
grow: landing appends a version when a record changes and nothing updates or deletes a raw row. So a raw
table holds what it held while its row count and highest row id stay as they were, and a staging table
built from unchanged raw tables with the same SQL, under the same DuckDB, is the table it would be rebuilt
as. Its own row count is checked too, so a table emptied or edited by hand in a way that changes its
count is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import duckdb

from warehouse.connection import row_count, table_names
from warehouse.raw import RAW_TABLES
from warehouse.sql_files import read_sql, tables_read

STATE_TABLE = "_whole_staging"
CREATE_STATE = f"""
create table if not exists {STATE_TABLE} (model varchar primary key, inputs varchar not null, rows bigint not null)
"""
"""Per whole staging model: a digest of what its rows are a function of when it was built, and its rows then."""
RAW_EXTENT = "select count(*), coalesce(max(rowid), -1) from {raw_table}"
"""What identifies an append-only raw table's contents; {raw_table} is one of `RAW_TABLES`."""


@dataclass(frozen=True)
class StagedWhole:
    """A whole staging table's rows, and whether this rebuild replaced it."""

    rows: int
    rebuilt: bool


def stage_whole(con: duckdb.DuckDBPyConnection, name: str) -> StagedWhole:
    """Bring the staging table `name` up to date with raw; the caller holds the transaction."""
    sql = read_sql("staging", name)
    extents = [(table, *con.execute(RAW_EXTENT.format(raw_table=table)).fetchone()) for table in raw_inputs(sql)]
    inputs = hashlib.sha256(json.dumps([sql, duckdb.__version__, extents]).encode("utf-8")).hexdigest()[:16]
    con.execute(CREATE_STATE)
    if name in table_names(con):
        recorded = con.execute(f"select inputs, rows from {STATE_TABLE} where model = ?", [name]).fetchone()
        rows = row_count(con, name)
        if recorded == (inputs, rows):
            return StagedWhole(rows, rebuilt=False)
    con.execute(f"create or replace table {name} as {sql}")
    rows = row_count(con, name)
    con.execute(f"insert or replace into {STATE_TABLE} values (?, ?, ?)", [name, inputs, rows])
    return StagedWhole(rows, rebuilt=True)


def raw_inputs(sql: str) -> list[str]:
    """The raw tables `sql` reads (through their `_latest` views or not), as DuckDB's parser finds them.

    Raises ValueError when it reads anything else (another table, a file): the table's rows would then
    depend on more than the raw tables this module watches.
    """
    read = tables_read(sql)
    functions = {name for name in read if name.endswith("()")}
    raw = {table.removesuffix("_latest") for table in read - functions}
    if functions or not raw or not raw <= RAW_TABLES:
        others = sorted(raw - RAW_TABLES) + (["a table function"] if functions else [])
        raise ValueError(f"a whole staging model must read raw tables alone; this reads {', '.join(others) or 'none'}")
    return sorted(raw)
