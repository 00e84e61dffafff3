"""Reads release candidates from staging, runs the release rules, writes the curated tables.

The rules themselves live in `transforms/releases.py` as pure functions; this module is only the
DuckDB side: the `int_members_*` selects in, `releases`, `release_members`, `release_exclusions`
and `overrides` out, each written in a few bulk statements.

Release rows are rewritten only where they changed: `_release_digests` keeps each release's digests
from the last build, and `build_releases` reassembles only the releases whose digests differ (a
night's new models touch a few thousand of 1.7 million). A change of code, registry, overrides or
options (`rules_digest`) recreates the tables and writes every row, as a first build does.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import duckdb

from transforms import family, labels, organizations, releases
from transforms.organizations import Registry, load_registry, registry_text
from transforms.releases import Member, Override, ReleaseBuild, ReleaseOptions, StoredRelease, build_releases
from transforms.source_digest import source_digest
from warehouse.connection import table_names
from warehouse.sql_files import read_sql

MEMBER_MODELS = ("int_members_epoch", "int_members_huggingface", "int_members_arxiv", "int_members_paperswithcode")
MEMBER_COLUMNS = tuple(item.name for item in fields(Member) if item.name != "content_digest")
MOMENT_COLUMNS = ("first_seen_at", "last_seen_at")
"""Read as microseconds since 1970 (`Member.first_seen_at`)."""
DEFAULT_OVERRIDES = "data/overrides.csv"
DIGESTS_TABLE = "_release_digests"
DIGEST_COLUMNS = ("release_id", "cluster_digest", "row_digest")
RULES_TABLE = "_release_rules"
_CODE_DIGEST = source_digest(releases, labels, family, organizations, sys.modules[__name__])

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseInputs:
    """What the rules need besides the data: thresholds, the registry and the analysts' overrides."""

    options: ReleaseOptions = ReleaseOptions()
    registry_path: Path | None = None
    overrides_path: Path | None = None


def read_members(con: duckdb.DuckDBPyConnection) -> list[Member]:
    """Every candidate member from every source's `int_members_*` select, with a hash of its columns."""
    members = []
    select_list = ", ".join(f"epoch_us({column})" if column in MOMENT_COLUMNS else column for column in MEMBER_COLUMNS)
    hashed = ", ".join(MEMBER_COLUMNS)
    for model in MEMBER_MODELS:
        cursor = con.execute(f"select {select_list}, hash({hashed}) from ({read_sql('intermediate', model)})")
        while rows := cursor.fetchmany(50_000):
            members.extend(Member(*row) for row in rows)
    return members


def read_overrides(path: Path | None) -> list[Override]:
    """The overrides CSV (the packaged, empty one by default); a row with an unknown action is an error."""
    text = path.read_text(encoding="utf-8") if path else resources.files("transforms").joinpath(DEFAULT_OVERRIDES).read_text(encoding="utf-8")
    overrides = []
    for line_no, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        if row["action"] not in ("label", "merge", "split"):
            raise ValueError(f"overrides line {line_no}: action {row['action']!r} is not label, merge or split")
        overrides.append(Override(**{key: (value or "").strip() for key, value in row.items() if key}))
    return overrides


def rules_digest(inputs: ReleaseInputs, overrides: list[Override]) -> str:
    """What every release row is a function of besides its members: the rules' code and the tables'
    schema, the registry, the overrides and the options. Any change to them rewrites every row, as
    does another DuckDB version."""
    parts = (_CODE_DIGEST, read_sql("curated", "release_tables"), registry_text(inputs.registry_path), repr(overrides),
             repr(inputs.options), duckdb.__version__)  # DuckDB's `hash` gives the members' content digests
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def build_release_tables(con: duckdb.DuckDBPyConnection, inputs: ReleaseInputs = ReleaseInputs()) -> ReleaseBuild:
    """Bring the curated release tables up to date with staging; the caller holds the transaction."""
    registry: Registry = load_registry(inputs.registry_path)
    overrides = read_overrides(inputs.overrides_path)
    rules = rules_digest(inputs, overrides)
    with _collector_paused():
        previous = stored_releases(con, rules)
        build = build_releases(read_members(con), registry, overrides, inputs.options, previous=previous, rules=rules)
        for note in build.notes:
            logger.warning("releases: %s", note)
        logger.info(
            "releases: %s releases (%s rows written, with %s member rows; the rest unchanged); %s records excluded",
            f"{len(build.digests):,}", f"{len(build.releases):,}", f"{len(build.members):,}",
            f"{len(build.exclusions):,}",
        )
        _write(con, build, previous, overrides, rules)
    return build


def _write(
    con: duckdb.DuckDBPyConnection, build: ReleaseBuild, previous: dict[str, StoredRelease], overrides: list[Override],
    rules: str,
) -> None:
    """The build's rows in place of the stored ones it replaces; all tables anew when nothing was stored."""
    if previous:
        rewritten = set(previous) - build.kept_rows
        _delete(con, "releases", rewritten)
        _delete(con, "release_members", set(previous) - build.kept_members)
        _delete(con, DIGESTS_TABLE, rewritten)
        con.execute("delete from release_exclusions")
        con.execute("delete from overrides")
    else:
        con.execute(read_sql("curated", "release_tables"))
        con.execute(f"create or replace table {DIGESTS_TABLE} (release_id varchar primary key, "
                    "cluster_digest varchar, row_digest varchar)")
        con.execute(f"create or replace table {RULES_TABLE} as select ? as rules", [rules])
    _insert(con, "overrides", [asdict(o) for o in overrides], ("action", "member_key", "field", "value", "other_member_key", "note"))
    _insert(con, "releases", build.releases, _columns(con, "releases"))
    _insert(con, "release_members", build.members, _columns(con, "release_members"))
    _insert(con, "release_exclusions", build.exclusions, _columns(con, "release_exclusions"))
    digests = [dict(zip(DIGEST_COLUMNS, row)) for row in build.digests if row[0] not in build.kept_rows]
    _insert(con, DIGESTS_TABLE, digests, DIGEST_COLUMNS)


def stored_releases(con: duckdb.DuckDBPyConnection, rules: str) -> dict[str, StoredRelease]:
    """The last build's releases by id, if it ran under the same rules; else none (everything is rebuilt)."""
    if not {RULES_TABLE, DIGESTS_TABLE, "releases"} <= table_names(con):
        return {}
    if con.execute(f"select count(*) from {RULES_TABLE} where rules = ?", [rules]).fetchone()[0] != 1:
        return {}
    cursor = con.execute(
        f"select d.release_id, d.cluster_digest, d.row_digest, r.name from {DIGESTS_TABLE} d "
        "join releases r using (release_id)"
    )
    stored = {}
    while rows := cursor.fetchmany(100_000):
        stored.update((release_id, StoredRelease(*rest)) for release_id, *rest in rows)
    counts = con.execute(f"select (select count(*) from releases), (select count(*) from {DIGESTS_TABLE})").fetchone()
    if counts != (len(stored), len(stored)):
        # Rows without digests or digests without rows (edited by hand?): start from nothing rather than keep them.
        logger.warning("releases: %s release rows and %s digests do not match; rebuilding every release",
                       f"{counts[0]:,}", f"{counts[1]:,}")
        return {}
    return stored


def _delete(con: duckdb.DuckDBPyConnection, table: str, release_ids: set[str]) -> None:
    if release_ids:
        con.execute(f"delete from {table} where release_id in (select unnest($ids))", {"ids": sorted(release_ids)})


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the build allocates millions of objects that all stay alive.

    Each collection walks every live object, and the allocations trigger one after another: 40% of
    the build's time at 20,000 repos, more at Hub scale, to find next to no garbage; writing the rows
    out allocates a list per column and chunk, which with the collector on cost 10 s at 500,000 repos.
    Any cycle the build does drop is collected once the collector is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    rows = con.execute(
        "select column_name from duckdb_columns() where table_name = ? and database_name = current_database() "
        "order by column_index",
        [table],
    ).fetchall()
    return tuple(row[0] for row in rows)


INSERT_ROWS = 50_000
"""Rows per insert: binding a column converts every value at once, so a bounded chunk bounds the memory."""


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    """A few inserts per table: each column of a chunk bound as a list and unnested side by side."""
    select = ", ".join(f"unnest($c{i}) as {column}" for i, column in enumerate(columns))
    statement = f"insert into {table} ({', '.join(columns)}) select {', '.join(columns)} from (select {select})"
    for first in range(0, len(rows), INSERT_ROWS):
        chunk = rows[first : first + INSERT_ROWS]
        con.execute(statement, {f"c{i}": [row[column] for row in chunk] for i, column in enumerate(columns)})
