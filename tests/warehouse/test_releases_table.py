"""The curated releases built from the real Epoch snapshots and the real Hub slice."""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import astuple
from datetime import date
from operator import attrgetter
from pathlib import Path

import duckdb
import pytest

from sources import epoch
from sources.records import RawRecord
from transforms.build_releases import (
    CLAIMS_TABLE, KEYED_MEMBERS, LINEAGE_TABLE, MEMBER_MODELS, MEMBER_VALUES, STATE_TABLE, read_members,
)
from transforms.keyed_staging import KEYED_MODELS
from transforms.family import family_key
from transforms.labels import MODALITIES, QUALITY_TIERS
from transforms.organizations import ORG_TYPES
from transforms.rebuild import rebuild
from transforms.releases import Member
from warehouse.connection import open_work_db
from warehouse.raw import land_page, transaction
from warehouse.sql_files import read_sql

FIXTURES = Path(__file__).parents[1] / "fixtures"
STATE_TABLES = (STATE_TABLE, CLAIMS_TABLE, LINEAGE_TABLE)


HUB_PAGE = FIXTURES / "huggingface" / "api_models_page_2026-09-28_from_slice.json"


def land_fixtures(con: duckdb.DuckDBPyConnection) -> None:
    """Every real Epoch snapshot and the real Hub page, landed in raw."""
    for snapshot in sorted((FIXTURES / "epoch").glob("*.csv")):
        with snapshot.open("rb") as raw, transaction(con):
            records = [item for item in epoch.read_csv(raw, snapshot.name) if isinstance(item, RawRecord)]
            land_page(con, "raw_epoch__models", records, run_id="fixture")
    hub_page = json.loads(HUB_PAGE.read_text("utf-8"))
    with transaction(con):
        land_page(con, "raw_huggingface__models",
                  [RawRecord(model["id"], json.dumps(model)) for model in hub_page], run_id="fixture")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_work_db(tmp_path_factory.mktemp("releases") / "census.work.duckdb")
    land_fixtures(con)
    rebuild(con)
    yield con
    con.close()


UNIQUE_KEYS = {"releases": "release_id", "release_members": "member_key", "release_exclusions": "member_key",
               "_release_digests": "release_id"}
"""Each table's key, written once by the builder (the tables have no primary keys to refuse a second row)."""


def repeated_keys(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Per release table, the keys written more than once, with their counts."""
    return {table: con.execute(f"select {key}, count(*) from {table} group by 1 having count(*) > 1").fetchall()
            for table, key in UNIQUE_KEYS.items()}


def test_each_key_is_written_once(built: duckdb.DuckDBPyConnection) -> None:
    assert repeated_keys(built) == {table: [] for table in UNIQUE_KEYS}


@pytest.mark.parametrize("model", MEMBER_MODELS)
def test_a_member_model_is_named_for_its_source(built: duckdb.DuckDBPyConnection, model: str) -> None:
    """The release build compares a source's stored members by the model's name (`int_members_<source>`)."""
    source = model.removeprefix("int_members_")
    sql = read_sql("intermediate", model)
    assert f"'{source}' as source," in sql
    assert built.execute(f"select distinct source from ({sql})").fetchall() in ([], [(source,)])


@pytest.mark.parametrize("model", KEYED_MEMBERS)
def test_a_keyed_member_model_has_one_member_per_row_of_its_staging_table(built: duckdb.DuckDBPyConnection, model: str) -> None:
    """What comparing its members by the keys restaged relies on: member `prefix || key`, source key `key`."""
    keyed = KEYED_MEMBERS[model]
    key = KEYED_MODELS[keyed.staging].key_column
    unmatched = built.execute(
        f"select count(*), count(staged.{key}) from ({read_sql('intermediate', model)}) as member "
        f"full join {keyed.staging} as staged on member.member_key = $prefix || staged.{key} "
        f"and member.source_key = staged.{key} where member.member_key is null or staged.{key} is null",
        {"prefix": keyed.prefix},
    ).fetchone()
    assert unmatched == (0, 0)
    assert built.execute(f"select count(*) from {keyed.staging}").fetchone()[0] > 0


@pytest.mark.parametrize("identifier", ["hf_repo_ids", "arxiv_ids", "epoch_names"])
def test_no_identifier_belongs_to_two_releases(built: duckdb.DuckDBPyConnection, identifier: str) -> None:
    shared = built.execute(
        f"select value, count(*) from (select unnest({identifier}) as value from releases) "
        "group by value having count(*) > 1"
    ).fetchall()
    assert shared == []


@pytest.mark.parametrize(
    ("column", "vocabulary"),
    [("org_type", ORG_TYPES), ("modality", MODALITIES), ("quality_tier", QUALITY_TIERS)],
)
def test_every_label_is_in_its_vocabulary(built: duckdb.DuckDBPyConnection, column: str, vocabulary: tuple) -> None:
    values = {row[0] for row in built.execute(f"select distinct {column} from releases").fetchall()}
    assert values and values <= set(vocabulary)


def test_lineage_relations_are_in_their_vocabulary_and_point_at_real_releases(built: duckdb.DuckDBPyConnection) -> None:
    relations = {row[0] for row in built.execute("select distinct lineage_relation from releases").fetchall()}
    assert relations <= {None, "finetune", "adapter", "merge", "continued_pretraining"}
    dangling = built.execute(
        "select count(*) from releases as child left join releases as parent on parent.release_id = child.base_release_id "
        "where child.base_release_id is not null and parent.release_id is null"
    ).fetchone()[0]
    assert dangling == 0


def test_every_release_has_a_member_and_reasons_for_its_labels(built: duckdb.DuckDBPyConnection) -> None:
    orphans = built.execute(
        "select count(*) from releases where release_id not in (select release_id from release_members)"
    ).fetchone()[0]
    unexplained = built.execute(
        "select count(*) from releases where label_reasons ->> 'org_type' is null "
        "or label_reasons ->> 'modality' is null or label_reasons ->> 'quality_tier' is null"
    ).fetchone()[0]
    assert (orphans, unexplained) == (0, 0)


def test_a_releases_first_and_last_seen_are_its_members_own(built: duckdb.DuckDBPyConnection) -> None:
    """The members' landing times reach Python as microseconds and come back as the same instants."""
    members = " union all ".join(
        f"select member_key, first_seen_at, last_seen_at from ({read_sql('intermediate', model)})" for model in MEMBER_MODELS
    )
    releases, differing = built.execute(
        f"with members as ({members}), expected as ("
        "    select rm.release_id, min(m.first_seen_at) as first_seen_at, max(m.last_seen_at) as updated_at"
        "    from release_members rm join members m using (member_key) group by rm.release_id"
        ") select count(*), count(*) filter (where r.first_seen_at is distinct from e.first_seen_at"
        "   or r.updated_at is distinct from e.updated_at)"
        " from releases r join expected e using (release_id)"
    ).fetchone()
    assert releases > 1_000 and differing == 0


def test_members_read_as_duckdb_hands_them_over(built: duckdb.DuckDBPyConnection) -> None:
    """`read_members` parses each row's JSON text: the same members, value for value and type for type, as
    DuckDB's own conversion of the rows gives."""
    expected = [
        Member(*row)
        for model in MEMBER_MODELS
        for row in built.execute(f"select {MEMBER_VALUES} from ({read_sql('intermediate', model)})").fetchall()
    ]
    read = read_members(built)
    assert len(read) == len(expected) > 1_000
    by_key = attrgetter("member_key")  # neither select promises an order
    assert [member_values(m) for m in sorted(read, key=by_key)] == [member_values(m) for m in sorted(expected, key=by_key)]


def member_values(member: Member) -> list[tuple[type, object]]:
    """A member's values with their types: `==` alone holds 3 equal to 3.0."""
    return [(type(value), value) for value in astuple(member)]


def test_two_rebuilds_from_raw_give_identical_tables(built: duckdb.DuckDBPyConnection) -> None:
    tables = ("releases", "release_members", "release_exclusions")
    before = {table: built.execute(f"select * from {table} order by all").fetchall() for table in tables}
    rebuild(built)
    after = {table: built.execute(f"select * from {table} order by all").fetchall() for table in tables}
    assert before == after


def test_a_rebuild_after_a_night_of_changes_equals_one_from_scratch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The release tables keep the rows nothing changed, and end exactly as a build from nothing."""
    work_path = tmp_path / "census.work.duckdb"
    con = open_work_db(work_path)
    land_fixtures(con)
    rebuild(con)
    hub_page = json.loads(HUB_PAGE.read_text("utf-8"))
    night = [{**model, "likes": 1_000 + index} for index, model in enumerate(hub_page[:2])]  # a popularity refresh
    night.append({**hub_page[2], "id": hub_page[2]["id"] + "-chat", "_id": "0" * 24})  # a new variant, same day
    largest = con.execute(  # Epoch revises one model's compute upward: the frontier of its year moves
        "select source_key, payload from raw_epoch__models_latest "
        "where payload ->> 'Training compute (FLOP)' <> '' order by source_key limit 1"
    ).fetchone()
    with transaction(con):
        land_page(con, "raw_huggingface__models", [RawRecord(m["id"], json.dumps(m)) for m in night], run_id="night")
        revised = {**json.loads(largest[1]), "Training compute (FLOP)": "1e27"}
        land_page(con, "raw_epoch__models", [RawRecord(largest[0], json.dumps(revised))], run_id="night")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transforms.build_releases"):
        rebuild(con)
    counts = re.search(r"([\d,]+) releases \(([\d,]+) rows written", caplog.text).groups()
    total, written = (int(count.replace(",", "")) for count in counts)
    con.close()
    scratch_path = tmp_path / "scratch.work.duckdb"
    shutil.copy(work_path, scratch_path)
    scratch = open_work_db(scratch_path)
    scratch.execute("drop table _release_rules")  # as after an upgrade: nothing stored is reused
    rebuild(scratch)
    con = open_work_db(work_path)
    tables = ("releases", "release_members", "release_exclusions", "_release_digests", *STATE_TABLES)
    for table in tables:
        assert con.execute(f"select * from {table} order by all").fetchall() == \
            scratch.execute(f"select * from {table} order by all").fetchall(), table
    assert 0 < written < total / 2


@pytest.mark.parametrize("edit", [
    "delete from releases where release_id = (select min(release_id) from releases)",
    "delete from _release_digests where release_id = (select min(release_id) from releases)",
    "update _release_digests set release_id = 'not a release' where release_id = (select min(release_id) from releases)",
    "insert into releases select * from releases where release_id = (select min(release_id) from releases)",
], ids=["a release deleted", "a digest deleted", "a digest of no release", "a release twice"])
def test_a_release_table_edited_by_hand_is_rebuilt_whole(built: duckdb.DuckDBPyConnection, edit: str) -> None:
    tables = ("releases", "release_members", "_release_digests")
    before = {name: built.execute(f"select * from {name} order by all").fetchall() for name in tables}
    built.execute(edit)
    rebuild(built)
    assert {name: built.execute(f"select * from {name} order by all").fetchall() for name in tables} == before


def test_llama_2_is_one_release_with_its_sizes_as_members(built: duckdb.DuckDBPyConnection) -> None:
    rows = built.execute("select name, epoch_names from releases where list_contains(epoch_names, 'Llama 2-70B')").fetchall()
    assert len(rows) == 1
    name, members = rows[0]
    assert name == "Llama 2"
    assert {"Llama 2-7B", "Llama 2-13B", "Llama 2-34B", "Llama 2-70B"} <= set(members)


KNOWN = list(csv.DictReader((FIXTURES / "releases" / "known_releases.csv").open(encoding="utf-8")))


@pytest.mark.parametrize("known", KNOWN, ids=lambda row: row["name"])
def test_well_known_release_matches_its_public_announcement(built: duckdb.DuckDBPyConnection, known: dict) -> None:
    """Hand-checked facts (tests/fixtures/releases/known_releases.csv, a source URL on every row)."""
    row = built.execute(
        "select release_id, organization, org_type, modality, released_on, base_release_id "
        "from releases where list_contains(epoch_names, ?)",
        [known["epoch_name"]],
    ).fetchone()
    assert row is not None, f"{known['epoch_name']} is in no release"
    release_id, organization, org_type, modality, released_on, base_release_id = row
    assert (org_type, modality) == (known["org_type"], known["modality"]), organization
    assert abs((released_on - date.fromisoformat(known["released_on"])).days) <= 7, released_on
    base_name = built.execute("select name from releases where release_id = ?", [base_release_id]).fetchone()
    if known["base_model"]:
        # Epoch often names a size with no row of its own (LLaMA-7B): the parent is that family's release
        assert base_name is not None and family_key(base_name[0]) == family_key(known["base_model"]), base_name
    else:
        assert base_release_id is None, base_name


def test_quantized_reuploads_in_the_hub_slice_never_become_releases(built: duckdb.DuckDBPyConnection) -> None:
    quantized = built.execute(
        "select count(*) from stg_huggingface__models where base_relation = 'quantized' or gguf"
    ).fetchone()[0]
    leaked = built.execute(
        "select count(*) from release_members join stg_huggingface__models on 'hf:' || repo_id = member_key "
        "where base_relation = 'quantized' or gguf"
    ).fetchone()[0]
    excluded = built.execute("select count(*) from release_exclusions where source = 'huggingface'").fetchone()[0]
    assert quantized > 0 and leaked == 0 and excluded >= quantized
