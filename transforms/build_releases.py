"""Reads release candidates from staging, runs the release rules, writes the curated tables.

The rules themselves live in `transforms/releases.py` as pure functions; this module is only the
DuckDB side: the `int_members_*` selects in, `releases`, `release_members`, `release_exclusions`
and `overrides` out, each written in one bulk statement.
"""

from __future__ import annotations

import csv
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import duckdb

from transforms.organizations import Registry, load_registry
from transforms.releases import Member, Override, ReleaseBuild, ReleaseOptions, build_releases
from warehouse.sql_files import read_sql

MEMBER_MODELS = ("int_members_epoch", "int_members_huggingface", "int_members_arxiv", "int_members_paperswithcode")
MEMBER_COLUMNS = tuple(item.name for item in fields(Member))
DEFAULT_OVERRIDES = "data/overrides.csv"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseInputs:
    """What the rules need besides the data: thresholds, the registry and the analysts' overrides."""

    options: ReleaseOptions = ReleaseOptions()
    registry_path: Path | None = None
    overrides_path: Path | None = None


def read_members(con: duckdb.DuckDBPyConnection) -> list[Member]:
    """Every candidate member from every source's `int_members_*` select."""
    members = []
    select_list = ", ".join(MEMBER_COLUMNS)
    for model in MEMBER_MODELS:
        cursor = con.execute(f"select {select_list} from ({read_sql('intermediate', model)})")
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


def build_release_tables(con: duckdb.DuckDBPyConnection, inputs: ReleaseInputs = ReleaseInputs()) -> ReleaseBuild:
    """Replace the curated release tables; the caller holds the transaction."""
    registry: Registry = load_registry(inputs.registry_path)
    overrides = read_overrides(inputs.overrides_path)
    with _collector_paused():
        build = build_releases(read_members(con), registry, overrides, inputs.options)
    for note in build.notes:
        logger.warning("releases: %s", note)
    logger.info(
        "releases: %s releases from %s members; %s records excluded",
        f"{len(build.releases):,}", f"{len(build.members):,}", f"{len(build.exclusions):,}",
    )
    con.execute(read_sql("curated", "release_tables"))
    _insert(con, "overrides", [asdict(o) for o in overrides], ("action", "member_key", "field", "value", "other_member_key", "note"))
    _insert(con, "releases", build.releases, _columns(con, "releases"))
    _insert(con, "release_members", build.members, _columns(con, "release_members"))
    _insert(con, "release_exclusions", build.exclusions, _columns(con, "release_exclusions"))
    return build


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the build allocates millions of objects that all stay alive.

    Each collection walks every live object, and the allocations trigger one after another: 40% of
    the build's time at 20,000 repos, more at Hub scale, to find next to no garbage. Any cycle the build
    does drop is collected once the collector is back on.
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
