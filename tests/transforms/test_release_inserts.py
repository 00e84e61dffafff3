"""`transforms.build_releases.Inserts`, which sends rows as JSON text from a thread of its own: any number of
columns, across chunks, every type of the release tables, as DuckDB's own binding lands them; and a failure,
on either side of the thread, stops what follows it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from transforms import build_releases
from transforms.build_releases import Inserts


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("create table wide (id varchar, day date, tags varchar[], score double)")
    connection.execute("create table narrow (id varchar)")
    return connection


def _insert_dicts(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Mapping[str, object]]) -> None:
    """One table's rows through the thread, as `_write_rows` sends each table's."""
    with Inserts(con) as inserts:
        inserts.dicts(table, rows)


def _insert_tuples(
    con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[object]], columns: tuple[str, ...]
) -> None:
    with Inserts(con) as inserts:
        inserts.tuples(table, rows, columns)


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
    """One column: a dict row lands as one value, and a 1-tuple as an array of one item, the whole string."""
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


@pytest.mark.parametrize("as_dicts", [True, False], ids=["dicts", "tuples"])
def test_rows_land_as_binding_lands_them_whatever_the_values(con: duckdb.DuckDBPyConnection, as_dicts: bool) -> None:
    """Every type of the release tables, with awkward values of each (NaN and the infinities, which JSON has no
    word for, among them), lands as DuckDB's binding of each value lands it."""
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
        ("naive and whole", date(2024, 2, 29), datetime(2024, 2, 29, 23, 59, 59), 2**53 + 1, False, 1e300, ["\u2028"], "[]"),
    ]
    if as_dicts:
        _insert_dicts(con, "as_json", [dict(zip(columns, row)) for row in rows])
    else:
        _insert_tuples(con, "as_json", rows, columns)
    con.executemany(f"insert into as_bound values ({', '.join('?' * len(columns))})", rows)
    check = f"select count(*), sum(hash(({', '.join(columns)}))) from {{}}"
    assert con.execute(check.format("as_json")).fetchone() == con.execute(check.format("as_bound")).fetchone()
    assert con.execute("select count(*) from (select * from as_json except select * from as_bound)").fetchone() == (0,)
    assert con.execute("select count(*) from as_json where isnan(score)").fetchone() == (1,)


def test_a_dict_row_missing_a_column_fails_loudly(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.InvalidInputException, match="does not have key"):
        _insert_dicts(con, "wide", [{"id": "a", "day": date(2023, 5, 1), "tags": []}])


def test_a_tuple_of_another_length_than_its_columns_fails_loudly(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="values for the"):
        _insert_tuples(con, "wide", [("a", date(2023, 5, 1), [])], COLUMNS)
    with pytest.raises(ValueError, match="values for the"):
        _insert_tuples(con, "narrow", [("a", "b")], ("id",))
    assert con.execute("select count(*) from wide").fetchone() == (0,)


@pytest.mark.parametrize("as_dicts", [True, False], ids=["dicts", "tuples"])
def test_a_value_of_the_wrong_type_fails_loudly(con: duckdb.DuckDBPyConnection, as_dicts: bool) -> None:
    """Not a NULL in its place: `json_transform_strict` refuses it, as binding it would."""
    row = ("a", "not a date", [], 1.0)
    with pytest.raises(duckdb.InvalidInputException, match="not a date"):
        if as_dicts:
            _insert_dicts(con, "wide", [dict(zip(COLUMNS, row))])
        else:
            _insert_tuples(con, "wide", [row], COLUMNS)
    assert con.execute("select count(*) from wide").fetchone() == (0,)


def test_a_failing_chunk_stops_the_chunks_after_it(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each statement commits on its own here (no transaction): the first chunk lands, the second fails in the
    sending thread, and neither the third nor the other table's rows are sent after it."""
    monkeypatch.setattr(build_releases, "INSERT_ROWS", 3)  # 7 rows: chunks of 3, 3 and 1
    rows = [dict(zip(COLUMNS, row)) for row in ROWS]
    rows[4]["day"] = "not a date"
    with pytest.raises(duckdb.InvalidInputException, match="not a date"):
        with Inserts(con) as inserts:
            inserts.dicts("wide", rows)
            inserts.tuples("narrow", [("later",)], ("id",))
    assert con.execute("select id from wide order by id").fetchall() == [("r0",), ("r1",), ("r2",)]
    assert con.execute("select count(*) from narrow").fetchone() == (0,)


class _Held:
    """The connection, with each insert held until the connection is interrupted (or 30 s pass): a statement still
    running, and one waiting, when the block ends."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.released = threading.Event()

    def execute(self, statement: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        if statement.startswith("insert"):
            self.released.wait(30)
        return self.con.execute(statement, parameters)

    def interrupt(self) -> None:
        self.released.set()


def test_a_failing_block_stops_the_thread_before_its_error_leaves(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block's own error stands; the statement running is interrupted (here it lands once released), the
    chunk waiting is dropped, and the thread has ended, so the caller may roll back on the connection at once."""
    monkeypatch.setattr(build_releases, "INSERT_ROWS", 3)
    held = _Held(con)
    with pytest.raises(ValueError, match="values for the"):
        with Inserts(held) as inserts:
            inserts.tuples("wide", ROWS[:6], COLUMNS)  # the first chunk held, the second waiting
            inserts.tuples("narrow", [("a", "b")], ("id",))
    assert held.released.is_set()
    assert not any(thread.name == "release-inserts" for thread in threading.enumerate())
    assert con.execute("select count(*) from wide").fetchone() == (3,)


def test_a_ctrl_c_while_the_block_ends_stops_the_thread_before_it_leaves(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaving the block waits for the chunks sent; a Ctrl-C there interrupts the statement running, drops the
    chunk waiting and ends the thread before the KeyboardInterrupt goes on."""
    monkeypatch.setattr(build_releases, "INSERT_ROWS", 3)
    held = _Held(con)
    ctrl_c = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    # Python's own handler, as in a terminal: a shell starts a background job (`&`) with SIGINT ignored
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with Inserts(held) as inserts:
                inserts.tuples("wide", ROWS[:6], COLUMNS)  # the first chunk held, the second waiting
                ctrl_c.start()
    finally:
        signal.signal(signal.SIGINT, before)
    assert held.released.is_set()
    assert not any(thread.name == "release-inserts" for thread in threading.enumerate())
    assert con.execute("select count(*) from wide").fetchone() == (3,)


def test_a_table_the_database_lacks_is_named(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="no table missing"):
        _insert_tuples(con, "missing", [("a",)], ("id",))


def test_rows_given_outside_the_block_fail_rather_than_wait(con: duckdb.DuckDBPyConnection) -> None:
    inserts = Inserts(con)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        inserts.tuples("narrow", [("early",)], ("id",))
    with inserts:
        inserts.tuples("narrow", [("inside",)], ("id",))
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        inserts.tuples("narrow", [("late",)], ("id",))
    assert con.execute("select id from narrow").fetchall() == [("inside",)]
