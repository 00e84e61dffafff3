"""Rebuild staging, curated tables and views from raw, in dependency order, on a caller's connection.

Everything downstream of raw is derived: two rebuilds from the same raw tables give identical
tables, and a bug fix reaches history without refetching. The small staging tables are replaced
whole when a raw table they read has grown (`transforms.whole_staging`); the two that follow
millions of raw keys restage only the keys with a new raw version (`transforms.keyed_staging`),
and the release build regroups only the clusters the changed members reach and keeps the rows whose
inputs did not change (`transforms.build_releases`), which gives the same tables as replacing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from transforms.arxiv_facts import build_paper_facts
from transforms.build_releases import ReleaseInputs, StagingChanges, build_release_tables
from transforms.keyed_staging import KEYED_MODELS, forget_restaged, stage_keyed
from transforms.whole_staging import stage_whole
from warehouse.connection import row_count
from warehouse.raw import transaction
from warehouse.sql_files import parse_sql, read_sql, unparse_sql

STAGING: tuple[str, ...] = ("stg_epoch__models", "stg_paperswithcode__papers", "stg_paperswithcode__results", "stg_huggingface__models", "stg_arxiv__papers", "stg_open_llm_leaderboard__results")
CURATED: tuple[str, ...] = ("source_status",)
VIEWS: tuple[str, ...] = (
    "release_cadence_quarterly",
    "releases_by_org_type",
    "releases_by_modality",
    "releases_by_quality_tier",
    "derivative_releases",
    "derivative_bursts",
    "evaluation_coverage",
    "open_source_share",
)
"""Models of each layer, in the order they must be built; each is `warehouse/sql/<layer>/<name>.sql`.

The release tables (`releases`, `release_members`, ...) are built between staging and the other
curated models by `transforms.build_releases`, since matching and labelling are Python."""


@dataclass(frozen=True)
class Built:
    """A model of a rebuild, for its log line."""

    layer: str
    name: str
    rows: int
    kept: bool = False
    """Left as the last rebuild made it: a small staging table whose raw tables and rules did not change."""
    restaged: int | None = None
    """Of a staging table that follows its raw table key by key: the rows this rebuild staged again."""
    staged_whole: bool = False
    """Of such a table: staged whole (new, or its rules changed) rather than key by key."""

    def summary(self) -> str:
        """`built staging stg_huggingface__models: 2,505,000 rows (5,000 restaged)`, and the like."""
        if self.kept:
            return f"kept {self.layer} {self.name}: {self.rows:,} rows (its raw tables and rules are unchanged)"
        if self.staged_whole:
            how = " (staged whole)"
        elif self.restaged is not None:
            how = f" ({self.restaged:,} restaged)"
        else:
            how = ""
        return f"built {self.layer} {self.name}: {self.rows:,} rows{how}"


def rebuild(con: duckdb.DuckDBPyConnection, inputs: ReleaseInputs = ReleaseInputs()) -> list[Built]:
    """Bring every staging and curated table and every view up to date with raw, in one transaction.

    Returns row counts per model for the run's log. A failure leaves the previous build in place.
    """
    built = []
    with transaction(con):
        build_paper_facts(con)  # Python facts `stg_arxiv__papers` joins (DuckDB runs no Python UDFs without numpy)
        forget_restaged(con)
        for name in STAGING:
            if name in KEYED_MODELS:
                staged = stage_keyed(con, KEYED_MODELS[name])
                built.append(Built("staging", name, staged.rows, restaged=staged.restaged, staged_whole=staged.whole))
            else:
                whole = stage_whole(con, name)
                built.append(Built("staging", name, whole.rows, kept=not whole.rebuilt))
        build_release_tables(con, inputs, StagingChanges(
            kept=frozenset(b.name for b in built if b.kept),
            restaged=frozenset(b.name for b in built if b.restaged is not None and not b.staged_whole),
        ))
        built.extend(Built("curated", name, row_count(con, name)) for name in ("releases", "release_members", "release_exclusions"))
        built.extend(build_over_releases(con))
    return built


def build_over_releases(con: duckdb.DuckDBPyConnection) -> list[Built]:
    """The curated models and the views, over release tables already filled: the end of `rebuild`, and how
    tests build every published object over release rows of their own."""
    built = [_build_table(con, "curated", name) for name in CURATED]
    for name in VIEWS:
        create_view(con, name)
        built.append(Built("views", name, view_rows(con, name)))
    return built


def _build_table(con: duckdb.DuckDBPyConnection, layer: str, name: str) -> Built:
    con.execute(f"create or replace table {name} as {read_sql(layer, name)}")
    return Built(layer, name, row_count(con, name))


def create_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"create or replace view {name} as {read_sql('views', name)}")


def view_rows(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rows of the view `name`, counted over its query without the final ORDER BY (see `unordered`)."""
    return con.execute(f"select count(*) from ({unordered(con, read_sql('views', name))})").fetchone()[0]


def unordered(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """`query` without its final ORDER BY, unless a LIMIT or OFFSET makes the order choose the rows.

    DuckDB sorts the rows of a view it only counts: at full Hub scale, 0.50 of the 0.65 s a night spent
    counting `derivative_releases` for the log went to ordering its 596,255 rows. DuckDB's own parser
    takes the order off (`json_serialize_sql`), so comments, strings and inner orders are left alone.
    """
    tree = parse_sql(con, query)
    node = tree["statements"][0]["node"]
    if [modifier["type"] for modifier in node["modifiers"]] == ["ORDER_MODIFIER"]:
        node["modifiers"] = []
    return unparse_sql(con, tree)
