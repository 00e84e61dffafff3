"""`transforms.build_releases._insert`: rows as dicts or tuples, any number of columns, across chunks."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from transforms import build_releases
from transforms.build_releases import _insert


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("create table wide (id varchar, day date, tags varchar[], score double)")
    connection.execute("create table narrow (id varchar)")
    return connection


ROWS = [(f"r{n}", date(2023, 1, 1 + n % 28), [f"t{n}"] if n % 3 else [], None if n % 5 == 0 else n / 2) for n in range(7)]
COLUMNS = ("id", "day", "tags", "score")


@pytest.mark.parametrize("as_dicts", [False, True])
def test_every_row_lands_whole_across_chunks(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, as_dicts: bool) -> None:
    monkeypatch.setattr(build_releases, "INSERT_ROWS", 3)  # 7 rows: chunks of 3, 3 and 1
    rows = [dict(zip(COLUMNS, row)) for row in ROWS] if as_dicts else ROWS
    _insert(con, "wide", rows, COLUMNS)
    assert con.execute("select * from wide order by id").fetchall() == ROWS


@pytest.mark.parametrize("rows", [[{"id": "alpha"}, {"id": "beta"}], [("alpha",), ("beta",)]], ids=["dicts", "tuples"])
def test_a_single_column_lands_from_dicts_and_tuples(con: duckdb.DuckDBPyConnection, rows: list) -> None:
    """A one-column `itemgetter` returns the value itself, not a 1-tuple: a string would be cut into characters."""
    _insert(con, "narrow", rows, ("id",))
    assert con.execute("select id from narrow order by id").fetchall() == [("alpha",), ("beta",)]


def test_dict_rows_land_by_column_name_whatever_their_key_order(con: duckdb.DuckDBPyConnection) -> None:
    _insert(con, "wide", [{"score": 1.5, "tags": ["x"], "id": "a", "day": date(2023, 5, 1)}], COLUMNS)
    assert con.execute("select * from wide").fetchall() == [("a", date(2023, 5, 1), ["x"], 1.5)]


def test_no_rows_insert_nothing(con: duckdb.DuckDBPyConnection) -> None:
    _insert(con, "wide", [], COLUMNS)
    assert con.execute("select count(*) from wide").fetchone() == (0,)
