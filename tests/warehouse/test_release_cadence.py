"""release_cadence_quarterly on hand-made releases, including the quarter in progress."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from transforms.rebuild import create_view


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute("create table releases (released_on date, is_notable boolean)")
    return con


def cadence(con: duckdb.DuckDBPyConnection, releases: list[tuple[date, bool]]) -> list[tuple]:
    con.executemany("insert into releases values (?, ?)", releases)
    create_view(con, "release_cadence_quarterly")
    return con.execute(
        "select quarter, quarter_start, releases, avg_per_month, is_partial, projected_releases, qoq_growth_pct "
        "from release_cadence_quarterly order by quarter_start"
    ).fetchall()


def test_complete_quarters_count_notable_releases_only(con: duckdb.DuckDBPyConnection) -> None:
    rows = cadence(
        con,
        [(date(2023, 1, 5), True), (date(2023, 3, 31), True), (date(2023, 2, 1), False), (date(2023, 4, 1), True)],
    )
    assert rows == [
        ("2023-Q1", date(2023, 1, 1), 2, 0.67, False, 2, None),
        ("2023-Q2", date(2023, 4, 1), 1, 0.33, False, 1, -50.0),
    ]


def test_a_quarter_with_no_releases_has_no_row_and_breaks_growth(con: duckdb.DuckDBPyConnection) -> None:
    rows = cadence(con, [(date(2022, 1, 5), True), (date(2022, 7, 5), True)])
    assert [(row[0], row[6]) for row in rows] == [("2022-Q1", None), ("2022-Q3", None)]


def test_the_quarter_in_progress_is_projected_to_its_end(con: duckdb.DuckDBPyConnection) -> None:
    today = con.execute("select current_date").fetchone()[0]
    start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    end = date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    days_in_quarter = (end - start).days
    elapsed = (today - start).days + 1
    rows = cadence(con, [(start, True), (today, True), (today + timedelta(days=1), True)])
    quarter = rows[-1]
    assert quarter[2] == 2, "a release dated in the future is not counted"
    if elapsed < days_in_quarter:
        assert quarter[4] is True
        assert quarter[5] == round(2 * days_in_quarter / elapsed)
        assert quarter[3] == pytest.approx(2 / (3 * elapsed / days_in_quarter), abs=0.01)
