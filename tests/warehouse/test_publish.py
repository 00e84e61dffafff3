"""Publishing updates the last published file from the journal, and that file equals one written whole.

The nights are the release regrouping's (`test_releases_regroup.NIGHTS`): real-format Hub repos, arXiv
papers and a Papers With Code entry landed over the real Epoch snapshots and Hub page. After each, the
file published from the journal is compared, table by table and view by view, with a file written whole
from the same work database.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from transforms.build_releases import ReleaseInputs
from transforms.rebuild import VIEWS, rebuild
from transforms.releases import ReleaseOptions
from warehouse.connection import connect, open_work_db
from warehouse.journal import JOURNAL_TABLE
from warehouse.publish import LAST_PUBLICATION_TABLE, PUBLICATION_TABLE, Published, publish

from .test_releases_regroup import NIGHTS, new_repo, land_hub
from .test_releases_table import land_fixtures


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A work database built from the real fixtures and published once (whole)."""
    path = tmp_path / "census.work.duckdb"
    with open_work_db(path) as con:
        land_fixtures(con)
        rebuild(con)
        assert publish(con, tmp_path / "census.duckdb").whole_because == "no earlier publication from this work database"
    return path


def published_rows(path: Path) -> dict[str, list[tuple]]:
    """Every table and view an analyst reads in a published file, rows sorted (the generation left out)."""
    with connect(path, read_only=True) as con:
        names = [row[0] for row in con.execute("select table_name from duckdb_tables()").fetchall()]
        assert PUBLICATION_TABLE in names
        return {name: con.execute(f"select * from {name} order by all").fetchall()
                for name in sorted(set(names) - {PUBLICATION_TABLE}) + list(VIEWS)}


def published_whole(work: Path, tmp_path: Path) -> dict[str, list[tuple]]:
    """The rows of a file written whole from a copy of `work`."""
    copy = tmp_path / "whole" / "census.work.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(work, copy)
    with open_work_db(copy) as con:
        con.execute(f"drop table {LAST_PUBLICATION_TABLE}")
        assert publish(con, copy.with_name("census.duckdb")).whole_because is not None
    return published_rows(copy.with_name("census.duckdb"))


def night_and_publish(work: Path, night: Callable[[duckdb.DuckDBPyConnection], None],
                      then: Callable[[duckdb.DuckDBPyConnection], None] = lambda con: None) -> Published:
    """Land a night, rebuild, run `then` and publish."""
    with open_work_db(work) as con:
        night(con)
        rebuild(con)
        then(con)
        return publish(con, work.with_name("census.duckdb"))


def test_every_night_published_from_the_journal_equals_a_file_written_whole(work: Path, tmp_path: Path) -> None:
    replaced: dict[str, int] = {}
    for case, nights in NIGHTS.items():
        for night in nights:
            published = night_and_publish(work, night)
            assert published.whole_because is None, case
            for table, keys in published.replaced_keys.items():
                replaced[table] = replaced.get(table, 0) + keys
            assert published_rows(work.with_name("census.duckdb")) == published_whole(work, tmp_path), case
        with connect(work, read_only=True) as con:
            assert con.execute(f"select count(*) from {JOURNAL_TABLE}").fetchone() == (0,), "the journal is spent"
    assert replaced.keys() == {"stg_huggingface__models", "stg_arxiv__papers", "releases", "release_members",
                               "release_exclusions"}
    assert all(replaced.values()), replaced


def test_an_other_table_is_copied_only_when_its_rows_differ_from_the_published_ones(work: Path, tmp_path: Path) -> None:
    """Tables not journaled are compared with the published copy's: an edit that keeps the row count is copied too."""
    def edit_a_value(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("update stg_epoch__models set organization = 'Edited' "
                    "where epoch_name = (select min(epoch_name) from stg_epoch__models)")

    quiet = night_and_publish(work, lambda con: None)
    assert quiet.whole_because is None and "stg_epoch__models" in quiet.unchanged
    assert "of the other tables, 0 copied whole" in quiet.summary()
    edited = night_and_publish(work, lambda con: None, then=edit_a_value)
    assert edited.whole_because is None and "stg_epoch__models" not in edited.unchanged
    assert "of the other tables, 1 copied whole" in edited.summary()
    assert published_rows(work.with_name("census.duckdb")) == published_whole(work, tmp_path)
    with connect(work.with_name("census.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from stg_epoch__models where organization = 'Edited'").fetchone() == (1,)


def an_unjournaled_delete(con: duckdb.DuckDBPyConnection) -> None:
    """A staged row deleted past the rebuild (by hand, say): no journal entry notes it."""
    con.execute("delete from stg_huggingface__models where repo_id = (select min(repo_id) from stg_huggingface__models)")


def an_unjournaled_move(con: duckdb.DuckDBPyConnection) -> None:
    """A member moved by hand into a release the night rewrote: the copy would hold it twice (its old release too)."""
    noted = con.execute(f"select key from {JOURNAL_TABLE} where table_name = 'release_members' limit 1").fetchone()[0]
    con.execute("update release_members set release_id = ? where member_key = (select min(member_key) from "
                f"release_members where release_id not in (select key from {JOURNAL_TABLE}))", [noted])


def a_new_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("alter table releases add column remark varchar")


def a_new_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create table analyst_notes (note varchar)")


def published_from_elsewhere(work: Path) -> None:
    """The published file is replaced by another work database's publication."""
    other = work.with_name("other.work.duckdb")
    with open_work_db(other) as con:
        land_fixtures(con)
        rebuild(con)
        publish(con, work.with_name("census.duckdb"))


def published_file_removed(work: Path) -> None:
    work.with_name("census.duckdb").unlink()


def overwritten_with_garbage(work: Path) -> None:
    work.with_name("census.duckdb").write_bytes(b"not a database")


def grown_past_its_size(work: Path) -> None:
    """The file is over 1.5 times its size when last written whole (the allowance for small files is 0 here)."""
    with open_work_db(work) as con:
        con.execute(f"update {LAST_PUBLICATION_TABLE} set whole_bytes = whole_bytes / 2")


def not_recorded(work: Path) -> None:
    """The run died after renaming the new file over the old one, before recording its generation."""
    with open_work_db(work) as con:
        con.execute(f"update {LAST_PUBLICATION_TABLE} set generation = 'the one before'")


WRITES = {"an unjournaled delete": (an_unjournaled_delete, "rows written without a journal entry"),
          "an unjournaled move": (an_unjournaled_move, "rows written without a journal entry"),
          "a new column": (a_new_column, "the tables or their columns changed"),
          "a new table": (a_new_table, "the tables or their columns changed")}
FILES = {"published from elsewhere": (published_from_elsewhere, "not the one this work database last published"),
         "removed": (published_file_removed, "census.duckdb is missing"),
         "overwritten": (overwritten_with_garbage, "the published file does not open"),
         "grown": (grown_past_its_size, "grew past 1.5x"),
         "not recorded": (not_recorded, "not the one this work database last published")}


@pytest.mark.parametrize("case", WRITES, ids=list(WRITES))
def test_a_write_the_journal_does_not_hold_is_published_whole(work: Path, tmp_path: Path, case: str) -> None:
    write, reason = WRITES[case]
    published = night_and_publish(work, NIGHTS["a variant joins"][0], then=write)
    assert reason in (published.whole_because or "")
    assert published_rows(work.with_name("census.duckdb")) == published_whole(work, tmp_path)


def test_a_change_of_rules_publishes_the_file_whole(work: Path, tmp_path: Path) -> None:
    """Other thresholds regroup and relabel every release (`build_releases._write`), and other staging rules
    restage every key (`keyed_staging._stage_whole`): the journal notes whole tables, and the file is written anew."""
    whole = {"releases", "release_members", "release_exclusions", "stg_huggingface__models", "stg_arxiv__papers"}
    with open_work_db(work) as con:
        con.execute("delete from _staging_rules")
        rebuild(con, ReleaseInputs(options=ReleaseOptions(notable_min_likes=1, family_window_days=60)))
        noted = con.execute(f"select table_name from {JOURNAL_TABLE} where key is null").fetchall()
        assert {table for table, in noted} == whole
        published = publish(con, work.with_name("census.duckdb"))
    assert published.whole_because == f"rewritten whole since: {', '.join(sorted(whole))}"
    assert published_rows(work.with_name("census.duckdb")) == published_whole(work, tmp_path)


@pytest.mark.parametrize("case", FILES, ids=list(FILES))
def test_a_published_file_not_as_last_published_is_written_whole(
    work: Path, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    change, reason = FILES[case]
    change(work)
    with monkeypatch.context() as patched:
        patched.setattr("warehouse.publish.GROWTH_ALLOWANCE_BYTES", 0)
        published = night_and_publish(work, lambda con: land_hub(con, [new_repo("k-chan-l/test2_act", "lab-n/new-one")]))
    assert reason in (published.whole_because or "")
    assert published_rows(work.with_name("census.duckdb")) == published_whole(work, tmp_path)
    again = night_and_publish(work, lambda con: None)
    assert again.whole_because is None and again.replaced_keys["releases"] == 0, "back to the journal"
