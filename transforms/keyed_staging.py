"""Staging tables that follow a raw table key by key, brought up to date by restaging only what changed.

`stg_huggingface__models` and `stg_arxiv__papers` hold one row per raw key, a function of that key's
raw versions alone: its latest, and when its versions were landed (and, for arXiv, of the facts stored
for the latest version's payload). A night lands a few thousand new versions among millions, so a
rebuild unpacks only the keys whose latest version it has not staged yet: at full Hub size that saves
29.5 s of JSON unpacking a night (16.7 s for the Hub, 12.8 s for arXiv), and the commit writes a few
thousand rows instead of two whole tables. Those keys are found among the raw rows landed since the
last rebuild, by row id (`_restage_changed`).

`_staged_versions` records the raw version behind each staged row and `_staging_rules` what every
row of a table is a function of besides its raw record: the model's SQL, the DuckDB version that ran
it and any rules it joins. A change of those, or a table whose row count no longer matches the versions
recorded (rows deleted by hand, say), restages the whole table, as a first build does. Either way the table ends
with the same rows as `create table ... as` the model's SQL; only their physical order may differ.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import duckdb

from transforms.arxiv_facts import RULES_VERSION as ARXIV_FACTS_RULES
from warehouse.connection import row_count, table_names
from warehouse.journal import note_keys_in, note_whole
from warehouse.sql_files import read_sql

logger = logging.getLogger(__name__)

VERSIONS_TABLE = "_staged_versions"
RESTAGED_KEYS = "_restaged_keys"
"""Per keyed model, the keys restaged (key by key) on this connection since `forget_restaged`: what the release
build reads to look at only the members those keys give (`transforms.build_releases.StagingChanges`)."""
RULES_TABLE = "_staging_rules"
# No primary key on the versions: its index would sit in memory for millions of keys, and every write
# here goes through the statements below, which keep one row per (model, key).
CREATE_BOOKKEEPING = f"""
create table if not exists {VERSIONS_TABLE} (model varchar not null, source_key varchar not null, version integer not null);
create table if not exists {RULES_TABLE} (model varchar primary key, rules varchar not null);
create temporary table if not exists {RESTAGED_KEYS} (model varchar, source_key varchar);
"""
PENDING = f"""
create or replace temporary table _pending as
with landed as (
    select source_key, max(version) as version, arg_max(rowid, version) as raw_row
    from {{raw_table}} where rowid >= $since group by source_key
)
select source_key, version, raw_row from landed
anti join (
    select source_key, version from {VERSIONS_TABLE}
    where model = $model and source_key in (select source_key from landed)
) using (source_key, version)
"""
"""The keys with a raw row from row id `$since` on whose latest version is not the staged one, with that
version and its row id; {raw_table} is the model's."""
CAUGHT_UP = f"""
select (select coalesce(sum(version), 0) from {VERSIONS_TABLE} where model = $model), (select count(*) from {{raw_table}})
"""
RESTAGED_LATEST = "_restaged_latest"
"""The latest raw rows of the keys being restaged, read by the model's SQL in place of `<raw_table>_latest`."""


@dataclass(frozen=True)
class KeyedModel:
    """A staging model with one row per key of `raw_table`, the key in `key_column`."""

    name: str
    raw_table: str
    key_column: str
    joins: str = ""
    """A digest of anything else its rows are a function of (the arXiv facts' rules)."""

    def sql(self, latest: str | None = None) -> str:
        """The model's SQL, over `latest` in place of every key's latest raw row if given.

        DuckDB does not push a filter on the key through the model's window (`_latest`) and JSON
        unpacking, so restaging 10,000 of 500,000 repos by filtering the model's output unpacked them
        all (1.9 s, against 2.3 s for the whole table); the model reads the restaged keys alone instead.
        """
        sql = read_sql("staging", self.name)
        if latest is None:
            return sql
        source = f"from {self.raw_table}_latest\n"
        if sql.count(source) != 1:
            raise ValueError(f"{self.name}.sql must read {self.raw_table}_latest once, in a line `{source.strip()}`")
        return sql.replace(source, f"from {latest}\n")


KEYED_MODELS: dict[str, KeyedModel] = {
    model.name: model
    for model in (
        KeyedModel("stg_huggingface__models", "raw_huggingface__models", "repo_id"),
        KeyedModel("stg_arxiv__papers", "raw_arxiv__papers", "arxiv_id", joins=ARXIV_FACTS_RULES),
    )
}


@dataclass(frozen=True)
class Staged:
    """A staged table's rows, how many of them this rebuild (re)staged, and whether it staged the table whole."""

    rows: int
    restaged: int
    whole: bool = False


def stage_keyed(con: duckdb.DuckDBPyConnection, model: KeyedModel) -> Staged:
    """Bring `model`'s table up to date with raw; the caller holds the transaction."""
    con.execute(CREATE_BOOKKEEPING)
    sql = model.sql()
    rules = hashlib.sha256("\n".join((sql, model.joins, duckdb.__version__)).encode("utf-8")).hexdigest()[:16]
    if _in_step(con, model, rules):
        restaged = _restage_changed(con, model)
        rows = row_count(con, model.name)
        if rows == _recorded(con, model):
            return Staged(rows, restaged)
        logger.warning("%s: %s rows against %s recorded versions after restaging; staging it whole",
                       model.name, f"{rows:,}", f"{_recorded(con, model):,}")
    rows = _stage_whole(con, model, sql, rules)
    return Staged(rows, rows, whole=True)


def forget_restaged(con: duckdb.DuckDBPyConnection) -> None:
    """Start a rebuild's record of restaged keys afresh (`RESTAGED_KEYS`; `stage_keyed` creates it)."""
    con.execute(f"drop table if exists {RESTAGED_KEYS}")


def _in_step(con: duckdb.DuckDBPyConnection, model: KeyedModel, rules: str) -> bool:
    """Whether the table exists and was staged under these rules (its row count is checked after restaging)."""
    stored = con.execute(f"select rules from {RULES_TABLE} where model = ?", [model.name]).fetchone()
    return model.name in table_names(con) and stored == (rules,)


def _restage_changed(con: duckdb.DuckDBPyConnection, model: KeyedModel) -> int:
    """Replace the rows of keys whose latest raw version is not the one staged (new keys included).

    A raw table only grows, a row at a time at the end, and a key's versions run 1, 2, ... without gaps. So
    once every key is staged at its latest version, the staged versions add up to the raw table's row count,
    and the rows landed since have row ids from that sum on: only those are read, not every key (0.85 s a
    night for 2.5 million Hub repos). The sum is checked again after restaging; if it falls short (a staged
    record lost, rows landed out of step), every key is looked at.
    """
    staged, landed = _extent(con, model)
    restaged = _restage(con, model, since=staged if staged <= landed else 0)
    staged, landed = _extent(con, model)
    if staged != landed:
        missed = _restage(con, model, since=0)
        logger.warning("%s: %s keys with a new raw version were found only by reading every key",
                       model.name, f"{missed:,}")
        restaged += missed
    return restaged


def _extent(con: duckdb.DuckDBPyConnection, model: KeyedModel) -> tuple[int, int]:
    """The sum of the staged versions and the raw table's row count: equal when every key is staged at its latest."""
    return con.execute(CAUGHT_UP.format(raw_table=model.raw_table), {"model": model.name}).fetchone()


def _restage(con: duckdb.DuckDBPyConnection, model: KeyedModel, *, since: int) -> int:
    """Restage the keys whose latest raw version is not the staged one, among those with a row from row id `since` on."""
    con.execute(PENDING.format(raw_table=model.raw_table), {"model": model.name, "since": since})
    pending = row_count(con, "_pending")
    if pending:
        # Read by row id (stable within this transaction): a join on the key and version scans every payload
        # of the raw table, 0.7 s more a night at 2.5 million Hub repos (docs/PERFORMANCE.md).
        con.execute(f"create or replace temporary table {RESTAGED_LATEST} as "
                    f"select * from {model.raw_table} where rowid in (select raw_row from _pending)")
        con.execute(f"delete from {model.name} where {model.key_column} in (select source_key from _pending)")
        con.execute(f"delete from {VERSIONS_TABLE} where model = ? and source_key in (select source_key from _pending)",
                    [model.name])
        con.execute(f"insert into {model.name} {model.sql(RESTAGED_LATEST)}")
        con.execute(f"insert into {VERSIONS_TABLE} select ?, source_key, version from _pending", [model.name])
        con.execute(f"insert into {RESTAGED_KEYS} select ?, source_key from _pending", [model.name])
        note_keys_in(con, model.name, "_pending", "source_key")
        con.execute(f"drop table {RESTAGED_LATEST}")
    con.execute("drop table _pending")
    return pending


def _stage_whole(con: duckdb.DuckDBPyConnection, model: KeyedModel, sql: str, rules: str) -> int:
    con.execute(f"create or replace table {model.name} as {sql}")
    con.execute(f"delete from {VERSIONS_TABLE} where model = ?", [model.name])
    con.execute(f"insert into {VERSIONS_TABLE} select ?, source_key, max(version) from {model.raw_table} group by source_key",
                [model.name])
    con.execute(f"insert or replace into {RULES_TABLE} values (?, ?)", [model.name, rules])
    note_whole(con, model.name)
    return row_count(con, model.name)


def _recorded(con: duckdb.DuckDBPyConnection, model: KeyedModel) -> int:
    return con.execute(f"select count(*) from {VERSIONS_TABLE} where model = ?", [model.name]).fetchone()[0]
