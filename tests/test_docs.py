"""docs/DATA.md documents every view, curated and bookkeeping table, and every column, and nothing that is gone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from flows.export import CURATED_TABLES
from transforms.rebuild import VIEWS, build_over_releases
from warehouse.connection import open_work_db
from warehouse.sql_files import read_sql

DATA_MD = (Path(__file__).parents[1] / "docs" / "DATA.md").read_text(encoding="utf-8")
BOOKKEEPING = ("ingestion_runs", "ingestion_state", "rejects")
DOCUMENTED_OBJECTS = (*CURATED_TABLES, *BOOKKEEPING, *VIEWS)


def sections() -> dict[str, str]:
    """`### \\`name\\`` headings and the text up to the next heading."""
    parts = re.split(r"^### `([a-z_]+)`\s*$", DATA_MD, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def documented_columns(section: str) -> list[str]:
    return re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every published object, empty: migrations, the release tables, curated models and views."""
    con = open_work_db(tmp_path_factory.mktemp("docs") / "census.work.duckdb")
    con.execute(read_sql("curated", "release_tables"))
    build_over_releases(con)
    yield con
    con.close()


def columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [row[0] for row in con.execute(
        "select column_name from duckdb_columns() where table_name = ? order by column_index", [name]
    ).fetchall()]


def test_every_view_and_table_has_a_section() -> None:
    missing = sorted(set(DOCUMENTED_OBJECTS) - set(sections()))
    assert not missing, f"not documented in docs/DATA.md: {missing}"


@pytest.mark.parametrize("name", DOCUMENTED_OBJECTS)
def test_every_column_is_documented_and_no_documented_column_is_gone(
    warehouse: duckdb.DuckDBPyConnection, name: str
) -> None:
    actual = columns(warehouse, name)
    assert actual, f"{name} does not exist"
    documented = documented_columns(sections().get(name, ""))
    assert sorted(set(actual) - set(documented)) == [], f"{name}: columns missing from docs/DATA.md"
    assert sorted(set(documented) - set(actual)) == [], f"{name}: docs/DATA.md names columns that do not exist"


@pytest.mark.parametrize("name", DOCUMENTED_OBJECTS)
def test_each_example_query_runs(warehouse: duckdb.DuckDBPyConnection, name: str) -> None:
    queries = re.findall(r"```sql\n(.*?)```", sections().get(name, ""), flags=re.DOTALL)
    assert len(queries) == 1, f"{name}: give exactly one example query"
    warehouse.execute(queries[0]).fetchall()
