"""`transforms.build_releases._insert_dicts` (rows sent as JSON text) and `_insert_tuples` (columns bound): any
number of columns, across chunks, every type of the release tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from transforms import build_releases
from transforms.build_releases import _insert_dicts, _insert_tuples


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
    if as_dicts:
        _insert_dicts(con, "wide", [dict(zip(COLUMNS, row)) for row in ROWS])
    else:
        _insert_tuples(con, "wide", ROWS, COLUMNS)
    assert con.execute("select * from wide order by id").fetchall() == ROWS


@pytest.mark.parametrize("as_dicts", [True, False], ids=["dicts", "tuples"])
def test_a_single_column_lands_from_dicts_and_tuples(con: duckdb.DuckDBPyConnection, as_dicts: bool) -> None:
    """One column: a dict row lands as one value, and a 1-tuple's column binds as a list of strings, not characters."""
    if as_dicts:
        _insert_dicts(con, "narrow", [{"id": "alpha"}, {"id": "beta"}])
    else:
        _insert_tuples(con, "narrow", [("alpha",), ("beta",)], ("id",))
    assert con.execute("select id from narrow order by id").fetchall() == [("alpha",), ("beta",)]


def test_dict_rows_land_by_column_name_whatever_their_key_order(con: duckdb.DuckDBPyConnection) -> None:
    _insert_dicts(con, "wide", [{"score": 1.5, "tags": ["x"], "id": "a", "day": date(2023, 5, 1)}])
    assert con.execute("select * from wide").fetchall() == [("a", date(2023, 5, 1), ["x"], 1.5)]


def test_no_rows_insert_nothing(con: duckdb.DuckDBPyConnection) -> None:
    _insert_dicts(con, "wide", [])
    _insert_tuples(con, "wide", [], COLUMNS)
    assert con.execute("select count(*) from wide").fetchone() == (0,)


def test_dict_rows_land_as_bound_tuples_land_whatever_the_values(con: duckdb.DuckDBPyConnection) -> None:
    """Dicts go as JSON text: every type of the release tables, and awkward values of each, land as binding lands them."""
    columns = ("text", "day", "moment", "count", "flag", "score", "names", "reasons")
    ddl = "(text varchar, day date, moment timestamptz, count bigint, flag boolean, score double, names varchar[], reasons json)"
    con.execute(f"create table as_json {ddl}")
    con.execute(f"create table as_bound {ddl}")
    moment = datetime(2026, 11, 29, 2, 48, 2, 206947, tzinfo=timezone.utc)
    rows = [
        ("plain", date(2023, 7, 18), moment, 2**63 - 1, True, 0.1, ["a", "b"], '{"org_type": "registry: Meta AI"}'),
        ('quo"te \\ back\nline\ttab \u00e9 \u4e2d \U0001f600 \x00', date(1, 1, 1), moment - timedelta(days=10**5), -(2**63),
         False, float("nan"), [], '{"k": "v \\"quoted\\"", "n": null}'),
        (None, None, None, None, None, float("inf"), None, None),
        ("", date(9999, 12, 31), moment.astimezone(timezone(timedelta(hours=-5))), 0, None, -float("inf"), ["", "x,y"], "{}"),
        ("small", date(2024, 2, 29), moment, 7, True, 1e-300, ["\u00e9"], '{"a": [1, 2.5, true]}'),
    ]
    _insert_dicts(con, "as_json", [dict(zip(columns, row)) for row in rows])
    _insert_tuples(con, "as_bound", rows, columns)
    check = f"select count(*), sum(hash(({', '.join(columns)}))) from {{}}"
    assert con.execute(check.format("as_json")).fetchone() == con.execute(check.format("as_bound")).fetchone()
    assert con.execute("select count(*) from (select * from as_json except select * from as_bound)").fetchone() == (0,)


def test_a_dict_row_missing_a_column_fails_loudly(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.InvalidInputException, match="does not have key"):
        _insert_dicts(con, "wide", [{"id": "a", "day": date(2023, 5, 1), "tags": []}])
