"""Rebuild staging, curated tables and views from raw, in dependency order, on a caller's connection.

Everything downstream of raw is derived, so it is replaced whole on every run: two rebuilds from
the same raw tables give identical tables, and a bug fix reaches history without refetching.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import duckdb

STAGING: tuple[str, ...] = ("stg_epoch__models",)
CURATED: tuple[str, ...] = ("releases", "source_status")
VIEWS: tuple[str, ...] = ("release_cadence_quarterly",)
"""Models of each layer, in the order they must be built; each is `warehouse/sql/<layer>/<name>.sql`."""


@dataclass(frozen=True)
class Built:
    layer: str
    name: str
    rows: int


def model_sql(layer: str, name: str) -> str:
    """The select statement of one model, read from the package's SQL folder."""
    return resources.files("warehouse").joinpath(f"sql/{layer}/{name}.sql").read_text(encoding="utf-8")


def rebuild(con: duckdb.DuckDBPyConnection) -> list[Built]:
    """Replace every staging and curated table and every view, in one transaction.

    Returns row counts per model for the run's log. A failure leaves the previous build in place.
    """
    built = []
    con.execute("begin transaction")
    try:
        for layer, names in (("staging", STAGING), ("curated", CURATED)):
            for name in names:
                con.execute(f"create or replace table {name} as {model_sql(layer, name)}")
                built.append(Built(layer, name, con.execute(f"select count(*) from {name}").fetchone()[0]))
        for name in VIEWS:
            create_view(con, name)
            built.append(Built("views", name, con.execute(f"select count(*) from {name}").fetchone()[0]))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return built


def create_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"create or replace view {name} as {model_sql('views', name)}")
