"""Schema migrations: applied once, in order, and an older file is upgraded in place."""

from __future__ import annotations

from pathlib import Path

from warehouse.connection import connect, open_work_db
from warehouse.migrations import apply_migrations, available_migrations


def test_opening_twice_applies_nothing_the_second_time(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    open_work_db(path).close()
    con = connect(path)
    assert apply_migrations(con) == []
    assert con.execute("select count(*) from schema_migrations").fetchone()[0] == len(available_migrations())


def test_an_older_file_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    con = connect(path)
    con.execute("create table schema_migrations (version integer primary key, name varchar not null, applied_at timestamptz not null)")
    first_version, first_name, first_sql = available_migrations()[0]
    con.execute(first_sql)
    con.execute("insert into schema_migrations values (?, ?, current_timestamp)", [first_version, first_name])
    con.execute("insert into ingestion_state values ('epoch', 'w', '{}', 'r0', current_timestamp)")
    con.close()
    con = open_work_db(path)
    assert con.execute("select watermark from ingestion_state").fetchone()[0] == "w"
    assert con.execute("select count(*) from raw_epoch__models").fetchone()[0] == 0
    assert con.execute("select max(version) from schema_migrations").fetchone()[0] == available_migrations()[-1][0]
