"""Reads release candidates from staging, runs the release rules, writes the curated tables.

The rules themselves live in `transforms/releases.py` as pure functions; this module is only the
DuckDB side: the `int_members_*` selects in, `releases`, `release_members`, `release_exclusions`
and `overrides` out, each written in a few bulk statements.

Release rows are rewritten only where they changed: `_release_digests` keeps each release's digests
from the last build, and `build_releases` reassembles only the releases whose digests differ (a
night's new models touch a few thousand of 1.7 million). Grouping, too, runs only where it can
change: `_release_member_state` keeps each member's content digest, cluster and link tokens, and a
build compares only the members whose staging rows may have changed (`StagingChanges`), then reads and
regroups only the clusters sharing a token with a member whose content changed (`_regroup`), plus the
releases whose lineage may now find another parent. A change of code, members' SQL, registry, overrides
or options (`rules_digest`) recreates the tables and writes every row, as a first build does.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import logging
import math
import queue
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import orjson

from transforms import family, labels, organizations, releases
from transforms.organizations import Registry, load_registry, registry_text
from transforms.family import FamilyKeys
from transforms.keyed_staging import RESTAGED_KEYS
from transforms.releases import (
    Member,
    Override,
    ReleaseBuild,
    ReleaseOptions,
    StoredRelease,
    Outline,
    Surroundings,
    build_releases,
    citing_authors,
    exclusion_reason,
    link_tokens,
    organization_of,
    stored_release,
)
from transforms.source_digest import source_digest
from warehouse.connection import row_count, table_names
from warehouse.journal import note_keys, note_whole
from warehouse.sql_files import read_sql, tables_read

MEMBER_MODELS = ("int_members_epoch", "int_members_huggingface", "int_members_arxiv", "int_members_paperswithcode")
MEMBER_COLUMNS = tuple(item.name for item in fields(Member) if item.name != "content_digest")
MOMENT_COLUMNS = ("first_seen_at", "last_seen_at")
"""Read as microseconds since 1970 (`Member.first_seen_at`)."""
_CONTENT_DIGEST = f"hash({', '.join(MEMBER_COLUMNS)})"
"""`Member.content_digest`, as DuckDB computes it."""
MEMBER_VALUES = ", ".join(
    [*(f"epoch_us({column})" if column in MOMENT_COLUMNS else column for column in MEMBER_COLUMNS), _CONTENT_DIGEST]
)
"""A member's values in the order of `Member`'s fields, as `read_members` selects them."""
DEFAULT_OVERRIDES = "data/overrides.csv"
DIGESTS_TABLE = "_release_digests"
DIGEST_COLUMNS = ("release_id", "cluster_digest", "row_digest")
RULES_TABLE = "_release_rules"
STATE_TABLE = "_release_member_state"
CLAIMS_TABLE = "_release_claims"
LINEAGE_TABLE = "_release_lineage"
LINEAGE_COLUMNS = ("release_id", "released_on", "family_keys", "looked_up")
TWINS_TABLE = "_release_case_twins"
STATE_COLUMNS = ("member_key", "source", "content_digest", "has_compute", "cluster", "tokens", "hub_author", "hub_arxiv_ids")
CREATE_STATE_TABLES = f"""
create or replace table {STATE_TABLE} (member_key varchar, source varchar, content_digest ubigint, has_compute boolean,
    cluster varchar, tokens varchar[], hub_author varchar, hub_arxiv_ids varchar[]);
create or replace table {CLAIMS_TABLE} (arxiv_id varchar, member_key varchar);
create or replace table {LINEAGE_TABLE} (release_id varchar, released_on date, family_keys varchar[], looked_up varchar[]);
create or replace table {TWINS_TABLE} (member_key varchar);
"""
"""What the next build needs to regroup only around a change: per member its source, content digest,
whether it has a training compute figure, its cluster and link tokens (`transforms.releases.link_tokens`);
per arXiv id the member claiming it; per release its date (before any override), its family keys and what
its lineage looked up; and the members whose keys are equal to another's but for case."""
KEYS_TABLE = "_read_members"
ONLY_KEYS_IN = " where source_key in (select source_key from {table}) and member_key in (select member_key from {table})"
"""Narrows a member model to the keys of {table}, a table of member keys and their source keys."""
READ_KEYS = f"""
create or replace temp table {KEYS_TABLE} as
select member_key, substr(member_key, strpos(member_key, ':') + 1) as source_key from (select unnest($keys) as member_key)
"""
"""A temporary table of the member keys `read_members` is to read, and their source keys: every member key is
`<source prefix>:<source key>`, and DuckDB narrows the model's scans by a filter on the source key, a plain
column, which it cannot do by the key built from it. Reading 5,000 Hub repos of 2.5 million: 0.49 s by source
key, 1.30 s by member key (medians of 3); the member keys then drop another source's member of the same key."""
MEMBER_SCOPE = "_member_scope"
CREATE_MEMBER_SCOPE = f"""
create or replace temp table {MEMBER_SCOPE} (member_key varchar, source_key varchar);
create or replace temp table _members_now (member_key varchar, content_digest ubigint);
"""
"""The keys of the members a night compares by key (`KeyedMembers`), and the content digests of the members
it compares now."""
SCOPE_KEYS = f"""
insert into {MEMBER_SCOPE}
select $prefix || source_key, source_key from {RESTAGED_KEYS} where model = $staging
"""
MEMBERS_NOW = f"insert into _members_now select member_key, {_CONTENT_DIGEST} from ({{sql}}){{where}}"
CHANGED_MEMBERS = f"""
select coalesce(now.member_key, state.member_key) as member_key, now.member_key is null as gone,
    state.member_key is null as new
from _members_now as now full join (
    select member_key, content_digest from {STATE_TABLE} where source in (select unnest($sources))
    union all
    select member_key, content_digest from {STATE_TABLE} where member_key in (select member_key from {MEMBER_SCOPE})
) as state on state.member_key = now.member_key
where now.content_digest is distinct from state.content_digest
"""
"""The compared members whose content digest differs from the stored one, or that are new or gone: every
stored member of the sources compared whole (`$sources`), and the stored members of the keys in scope."""
EQUAL_BUT_FOR_CASE = f"select member_key from {STATE_TABLE} where lower(member_key) in (select lower(unnest($keys)))"
"""The stored members whose keys equal one of `$keys` but for case (or exactly)."""
CITING_AUTHORS = f"""
select arxiv_id, hub_author, member_key
from (select unnest(hub_arxiv_ids) as arxiv_id, hub_author, member_key from {STATE_TABLE} where hub_arxiv_ids is not null)
where arxiv_id in (select unnest($ids))
"""
"""Per paper of `$ids`, the stored Hub repos citing it and their authors: for the regroup's count of citing
authors before the night, and for what a build needs to know of the authors outside it."""
STORED_LINKS = f"select tokens, hub_arxiv_ids from {STATE_TABLE} where member_key in (select unnest($keys))"
"""The link tokens and cited papers stored for members: what the changed ones had."""
CLUSTERS_TO_REGROUP = f"""
select distinct cluster from (
    select cluster from {STATE_TABLE} where member_key in (select unnest($keys))
    union all
    select cluster from (select cluster, unnest(tokens) as token from {STATE_TABLE}) where token in (select unnest($tokens))
    union all
    select cluster from (select cluster, unnest(hub_arxiv_ids) as arxiv_id from {STATE_TABLE})
    where arxiv_id in (select unnest($flipped))
    union all
    select cluster from {STATE_TABLE} where has_compute
)
where cluster is not null
"""
MEMBERS_OF_CLUSTERS = f"select member_key from {STATE_TABLE} where cluster in (select unnest($clusters))"
RELEASES_OF_MEMBERS = "select distinct release_id from release_members where member_key in (select unnest($keys))"
STORED_CLAIMS = f"""
select arxiv_id, member_key from {CLAIMS_TABLE}
where arxiv_id in (select unnest($ids)) and arxiv_id not in (select unnest($changed))
"""
CLAIMS_OF = f"""
select member_key, list(arxiv_id order by arxiv_id) from {CLAIMS_TABLE}
where member_key in (select unnest($keys)) group by member_key
"""
REPLACED_RELEASES = f"""
select release_id, r.name, l.released_on, l.family_keys, list(lower(m.member_key) order by m.member_key)
from releases as r join {LINEAGE_TABLE} as l using (release_id) join release_members as m using (release_id)
where release_id in (select unnest($ids))
group by all
"""
DEPENDENT_RELEASES = f"""
with looked_up as (
    select release_id, coalesce(released_on, date '9999-12-31') as born, unnest(looked_up) as token
    from {LINEAGE_TABLE} where release_id not in (select unnest($inside))
)
select release_id from looked_up where token in (select unnest($always))
union
select looked_up.release_id from looked_up join (select unnest($families) as token, unnest($since) as since) as changed
    using (token)
where looked_up.born >= changed.since
union
select release_id from releases
where base_release_id in (select unnest($renamed)) and release_id not in (select unnest($inside))
"""
"""The releases outside a partial build whose lineage may come out otherwise: they looked up a member whose
release changed (`k:`), a family that changed at all (`F:`) or at or before their date (`f:`), or their
parent was renamed."""
STORED_DIGESTS = f"select release_id, d.cluster_digest, d.row_digest, r.name from {DIGESTS_TABLE} as d join releases as r using (release_id)"
STORED_DIGESTS_OF = STORED_DIGESTS + " where release_id in (select unnest($ids))"
STORED_KEYS = f"""
select (select count(*) from releases), (select count(*) from {DIGESTS_TABLE}),
    (select sum(hash(release_id)) from releases), (select sum(hash(release_id)) from {DIGESTS_TABLE})
"""
"""Each table's rows and the sum of its release ids' hashes: equal when both hold the same ids (a join of the
two took 0.4 to 0.6 s a night at full Hub size, two scans of the key take a tenth of that)."""
MEMBERS_OF_RELEASES = "select release_id, member_key from release_members where release_id in (select unnest($ids))"
OUTSIDE_BY_MEMBER = f"""
select lower(m.member_key), release_id, r.name, l.released_on
from release_members as m join releases as r using (release_id) join {LINEAGE_TABLE} as l using (release_id)
where lower(m.member_key) in (select unnest($keys)) and release_id not in (select unnest($inside))
"""
OUTSIDE_BY_FAMILY = f"""
select l.family_key, release_id, r.name, l.released_on
from (select release_id, released_on, unnest(family_keys) as family_key from {LINEAGE_TABLE}) as l
    join releases as r using (release_id)
where l.family_key in (select unnest($families)) and release_id not in (select unnest($inside))
"""
_CODE_DIGEST = source_digest(releases, labels, family, organizations, sys.modules[__name__])


@dataclass(frozen=True)
class KeyedMembers:
    """A member model with one member per row of a keyed staging table (`transforms.keyed_staging`): its
    source key is the row's key and its member key `prefix` and that key."""

    staging: str
    prefix: str


KEYED_MEMBERS: dict[str, KeyedMembers] = {"int_members_huggingface": KeyedMembers("stg_huggingface__models", "hf:")}


@dataclass(frozen=True)
class StagingChanges:
    """What a rebuild changed in staging, so that a night compares only the members that may have changed.

    A member model reading only `kept` tables gives the members it gave the last build; one of
    `KEYED_MEMBERS` whose keyed table was `restaged` and which otherwise reads only `kept` tables gives
    other members only for the restaged keys (`keyed_staging.RESTAGED_KEYS`). Every other member model
    (one reading a raw table, or a table staged whole) is compared whole. Comparing every member, with
    the keys equal but for case, took 2.9 s a night at full Hub size (docs/PERFORMANCE.md).
    """

    kept: frozenset[str]
    """Staging tables this rebuild left as the last one made them."""
    restaged: frozenset[str]
    """Keyed staging tables this rebuild restaged key by key, not whole."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseInputs:
    """What the rules need besides the data: thresholds, the registry and the analysts' overrides."""

    options: ReleaseOptions = ReleaseOptions()
    registry_path: Path | None = None
    overrides_path: Path | None = None


def read_members(con: duckdb.DuckDBPyConnection, keys: set[str] | None = None) -> list[Member]:
    """Every candidate member from every source's `int_members_*` select, with a hash of its columns;
    with `keys`, only those members.

    A row comes as JSON text, an array that orjson parses (`_member`): DuckDB's conversion of each value
    into a Python object took longer than DuckDB writing the row's text and orjson reading it (the 2.7
    million members of the full-size benchmark 10.3 -> 8.1 s, docs/PERFORMANCE.md)."""
    members: list[Member] = []
    if keys is not None:
        if not keys:
            return members
        con.execute(READ_KEYS, {"keys": sorted(keys)})
    where = "" if keys is None else ONLY_KEYS_IN.format(table=KEYS_TABLE)
    for model in MEMBER_MODELS:
        cursor = con.execute(f"select to_json(row({MEMBER_VALUES}))::varchar from ({read_sql('intermediate', model)}){where}")
        while rows := cursor.fetchmany(50_000):
            members.extend(_member(text) for (text,) in rows)
    return members


_RELEASED_ON = MEMBER_COLUMNS.index("released_on")


def _member(text: str) -> Member:
    """A member from the JSON array of its row's values (`to_json` of an unnamed struct), its date made a `date`.
    DuckDB writes NaN and the infinities as `NaN` and `Infinity`, which JSON has no word for: `json` reads
    them, orjson does not."""
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        values = json.loads(text)
    if values[_RELEASED_ON] is not None:
        values[_RELEASED_ON] = date.fromisoformat(values[_RELEASED_ON])
    return Member(*values)


def read_overrides(path: Path | None) -> list[Override]:
    """The overrides CSV (the packaged, empty one by default); a row with an unknown action is an error."""
    text = path.read_text(encoding="utf-8") if path else resources.files("transforms").joinpath(DEFAULT_OVERRIDES).read_text(encoding="utf-8")
    overrides = []
    for line_no, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        if row["action"] not in ("label", "merge", "split"):
            raise ValueError(f"overrides line {line_no}: action {row['action']!r} is not label, merge or split")
        overrides.append(Override(**{key: (value or "").strip() for key, value in row.items() if key}))
    return overrides


def rules_digest(inputs: ReleaseInputs, overrides: list[Override]) -> str:
    """What every release row is a function of besides its members: the rules' code and the tables'
    schema, the members' SQL (a night compares only the members whose staging rows changed), the registry,
    the overrides and the options. Any change to them rewrites every row, as does another DuckDB version."""
    parts = (_CODE_DIGEST, read_sql("curated", "release_tables"), *(read_sql("intermediate", model) for model in MEMBER_MODELS),
             registry_text(inputs.registry_path), repr(overrides),
             repr(inputs.options), duckdb.__version__)  # DuckDB's `hash` gives the members' content digests
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def build_release_tables(
    con: duckdb.DuckDBPyConnection, inputs: ReleaseInputs = ReleaseInputs(), changes: StagingChanges | None = None
) -> ReleaseBuild:
    """Bring the curated release tables up to date with staging; the caller holds the transaction.

    `changes` says what the staging tables' rebuild changed since the last build; without it every member is
    compared with the stored state."""
    registry: Registry = load_registry(inputs.registry_path)
    overrides = read_overrides(inputs.overrides_path)
    rules = rules_digest(inputs, overrides)
    with _collector_paused():
        stored = rules_stored(con, rules)
        regroup = _regroup(con, registry, overrides, inputs.options, changes) if stored else None
        if regroup is None:
            previous = stored_releases(con) if stored else {}
            build = build_releases(read_members(con), registry, overrides, inputs.options, previous=previous, rules=rules)
        else:
            build = build_releases(regroup.members, registry, overrides, inputs.options, rules=rules,
                                   surroundings=regroup.surroundings, previous=stored_releases(con, regroup.replaced))
        for note in build.notes:
            logger.warning("releases: %s", note)
        if regroup is None:
            _write(con, build, previous, overrides, rules)
        else:
            _write_part(con, build, regroup, overrides)
        logger.info(
            "releases: %s releases (%s rows written, with %s member rows; the rest unchanged); %s records excluded",
            f"{row_count(con, 'releases'):,}", f"{len(build.releases):,}", f"{len(build.members):,}",
            f"{row_count(con, 'release_exclusions'):,}",
        )
    return build


@dataclass(frozen=True)
class Regroup:
    """A build over part of the members: those, the rest it reads, and what it replaces."""

    members: list[Member]
    surroundings: Surroundings
    replaced: set[str]
    """The stored releases holding any of the members, or a gone one."""
    gone: set[str]
    """Member keys stored but no longer in staging."""
    changed_papers: list[str]
    """arXiv ids whose claims are worked out again."""
    twins: set[str]
    """Every member key equal to another's but for case, after this build."""


def _regroup(
    con: duckdb.DuckDBPyConnection, registry: Registry, overrides: list[Override], options: ReleaseOptions,
    changes: StagingChanges | None,
) -> Regroup | None:
    """The members to regroup, what the build needs of the rest, and the stored releases it replaces; None
    when only a build over every member will do (no stored state).

    A night's changed members are those whose content digest differs from the stored one (or that are
    new, or gone), among the members its staging changes can reach (`_compare_members`). Grouping links
    members only through their link tokens, so a change can regroup only the clusters holding a token the
    changed members have or had: those clusters are read and grouped again, whole, and no link leaves
    them. Added to them: the clusters of every Hub repo citing a paper whose count of citing authors
    crossed the limit (its repos start or stop linking by it), of every member with a training compute
    figure (the frontier of their dates), of the overrides' members and of members whose keys are equal
    but for case.
    """
    if not {STATE_TABLE, CLAIMS_TABLE, LINEAGE_TABLE, TWINS_TABLE} <= table_names(con):
        return None
    compared = _compare_members(con, changes)
    changed, gone, new = compared.changed, compared.gone, compared.new
    fresh = read_members(con, changed)
    kept_fresh = [member for member in fresh if exclusion_reason(member, options) is None]

    # what the changed members had: their tokens, and the papers their Hub repos cited
    tokens: set[str] = set()
    cited: set[str] = set()
    for had_tokens, had_cited in con.execute(STORED_LINKS, {"keys": sorted(changed | gone)}).fetchall():
        tokens.update(had_tokens or ())
        cited.update(had_cited or ())

    # papers whose count of citing Hub authors may have crossed the limit
    after = citing_authors(kept_fresh)
    cited |= after.keys()
    before: dict[str, set[str]] = defaultdict(set)
    for arxiv_id, author, member_key in con.execute(CITING_AUTHORS, {"ids": sorted(cited)}).fetchall():
        before[arxiv_id].add(author)
        if member_key not in changed and member_key not in gone:
            after.setdefault(arxiv_id, set()).add(author)
    limit = options.max_hub_authors_per_paper
    flipped = sorted(i for i in cited if (len(before[i]) > limit) != (len(after.get(i, ())) > limit))

    # the tokens the changed members have now, and the clusters holding any token they have or had
    split = {o.member_key for o in overrides if o.action == "split"}
    family_keys = FamilyKeys()

    def author_count(arxiv_id: str) -> int:
        return len(after.get(arxiv_id, ()))

    for member in kept_fresh:
        tokens.update(link_tokens(member, organization_of(member, registry), split, author_count, options, family_keys))
    tokens.update("r:" + member_key for member_key in changed | gone)
    tokens.update("a:" + arxiv_id for arxiv_id in flipped)
    linked_repos = {token[2:] for token in tokens if token.startswith("r:")}
    # Lineage finds a base by its key in lower case; of two members equal but for case (Epoch's `CALM` and
    # `CaLM`), the release a build meets last holds it. Regrouped together, they are met in the same order.
    # Only a new key can be equal to another but for case where none was; the stored ones are still twins
    # unless gone.
    twins = {row[0] for row in con.execute(f"select member_key from {TWINS_TABLE}").fetchall()} | new
    if new:
        twins |= {row[0] for row in con.execute(EQUAL_BUT_FOR_CASE, {"keys": sorted(new)}).fetchall()}
    twins = case_twins(twins - gone)
    pinned = {o.member_key for o in overrides} | {o.other_member_key for o in overrides if o.other_member_key} | twins
    clusters = [row[0] for row in con.execute(CLUSTERS_TO_REGROUP, {
        "keys": sorted(changed | gone | linked_repos | pinned), "tokens": sorted(tokens), "flipped": flipped,
    }).fetchall()]
    inside = {row[0] for row in con.execute(MEMBERS_OF_CLUSTERS, {"clusters": clusters}).fetchall()}
    inside = (inside - gone) | changed
    members = fresh + read_members(con, inside - changed)
    replaced = {row[0] for row in con.execute(RELEASES_OF_MEMBERS, {"keys": sorted(inside | gone)}).fetchall()}
    changed_papers = sorted(token[2:] for token in tokens if token.startswith("a:"))
    surroundings = _surroundings(con, members, inside, gone, replaced, changed_papers)
    logger.info("releases: %s members changed, %s gone (compared %s); %s clusters to regroup (%s members), "
                "%s releases they held", f"{len(changed):,}", f"{len(gone):,}", "; ".join(compared.scope),
                f"{len(clusters):,}", f"{len(inside):,}", f"{len(replaced):,}")
    return Regroup(members, surroundings, replaced, gone, changed_papers, twins)


@dataclass(frozen=True)
class Compared:
    """The members a night compared with the stored state, and how they differ."""

    changed: set[str]
    """Changed or new."""
    gone: set[str]
    new: set[str]
    scope: list[str]
    """How each source's members were compared, for the log: `huggingface: 5,000 restaged keys`, `arxiv: whole`."""


def _compare_members(con: duckdb.DuckDBPyConnection, changes: StagingChanges | None) -> Compared:
    """The members whose content digest differs from the stored one, those stored but gone, and those new,
    among the members `changes` can reach: each member model is compared whole, by the keys its keyed staging
    table restaged, or not at all (`StagingChanges`)."""
    con.execute(CREATE_MEMBER_SCOPE)
    whole_sources, scope = [], []
    for model in MEMBER_MODELS:
        source = model.removeprefix("int_members_")  # each model is `int_members_<source>`
        sql = read_sql("intermediate", model)
        read = tables_read(sql)
        keyed = KEYED_MEMBERS.get(model)
        if changes is not None and read <= changes.kept:
            scope.append(f"{source}: unchanged")
        elif changes is not None and keyed and keyed.staging in changes.restaged and read - {keyed.staging} <= changes.kept:
            restaged = con.execute(SCOPE_KEYS, {"prefix": keyed.prefix, "staging": keyed.staging}).fetchone()[0]
            con.execute(MEMBERS_NOW.format(sql=sql, where=ONLY_KEYS_IN.format(table=MEMBER_SCOPE)))
            scope.append(f"{source}: {restaged:,} restaged keys")
        else:
            whole_sources.append(source)
            con.execute(MEMBERS_NOW.format(sql=sql, where=""))
            scope.append(f"{source}: whole")
    compared = Compared(set(), set(), set(), scope)
    for member_key, is_gone, is_new in con.execute(CHANGED_MEMBERS, {"sources": whole_sources}).fetchall():
        (compared.gone if is_gone else compared.changed).add(member_key)
        if is_new:
            compared.new.add(member_key)
    return compared


def case_twins(keys: Iterable[str]) -> set[str]:
    """The keys equal to another of `keys` but for case."""
    by_lower: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_lower[key.lower()].append(key)
    return {key for same in by_lower.values() if len(same) > 1 for key in same}


def _lineage_changes(old: list[Outline], new: list[Outline]) -> tuple[set[str], dict[str, date], set[str]]:
    """How the releases a partial build replaced (`old`) and built (`new`) differ for the lineage of others:
    the `k:` and `F:` tokens whose lookups may now answer otherwise, per `f:` token the earliest date at
    which its family changed (a child dated before it finds the same parent), and the renamed releases."""
    holders: list[dict[str, tuple[str, str] | None]] = []
    for releases in (old, new):
        holder: dict[str, tuple[str, str] | None] = {}
        for release in releases:
            for key in release.member_keys:
                # two keys equal but for case: which holds it depends on the build's order; take it as changed
                holder[key] = None if key in holder else (release.release_id, release.name)
        holders.append(holder)
    always = {"k:" + key for key in holders[0].keys() | holders[1].keys()
              if holders[0].get(key) != holders[1].get(key) or None in (holders[0].get(key, ()), holders[1].get(key, ()))}
    entries = [{(key, r.release_id, r.released_on or date.max) for r in releases for key in r.family_keys} for releases in (old, new)]
    since: dict[str, date] = {}
    for key, _, born in entries[0] ^ entries[1]:
        since["f:" + key] = min(since.get("f:" + key, date.max), born)
        always.add("F:" + key)
    names = {release.release_id: release.name for release in new}
    renamed = {release.release_id for release in old if names.get(release.release_id, release.name) != release.name}
    return always, since, renamed


def _surroundings(
    con: duckdb.DuckDBPyConnection, members: list[Member], inside: set[str], gone: set[str], replaced: set[str],
    changed_papers: list[str],
) -> Surroundings:
    """What a build over `members` needs of the releases and members outside them, read from the stored state."""
    cited = sorted({arxiv_id for m in members for arxiv_id in m.arxiv_ids})
    hub_authors: dict[str, set[str]] = defaultdict(set)
    for arxiv_id, author, member_key in con.execute(CITING_AUTHORS, {"ids": cited}).fetchall():
        if member_key not in inside and member_key not in gone:
            hub_authors[arxiv_id].add(author)
    claims = dict(con.execute(STORED_CLAIMS, {"ids": cited, "changed": changed_papers}).fetchall())
    not_outside = set(replaced)

    def dependents(built: list[Outline]) -> list[tuple[dict[str, object], StoredRelease]]:
        old = [Outline(*row) for row in con.execute(REPLACED_RELEASES, {"ids": sorted(replaced)}).fetchall()]
        always, since, renamed = _lineage_changes(old, built)
        ids = {row[0] for row in con.execute(DEPENDENT_RELEASES, {
            "inside": sorted(replaced), "always": sorted(always), "families": list(since), "since": list(since.values()),
            "renamed": sorted(renamed),
        }).fetchall()}
        not_outside.update(ids)
        keys_of: dict[str, list[str]] = defaultdict(list)
        for release_id, member_key in con.execute(MEMBERS_OF_RELEASES, {"ids": sorted(ids)}).fetchall():
            keys_of[release_id].append(member_key)
        by_key = {member.member_key: member for member in read_members(con, {k for keys in keys_of.values() for k in keys})}
        stored = stored_releases(con, ids)
        return [(stored_release(release_id, stored[release_id], [by_key[key] for key in keys_of[release_id]]), stored[release_id])
                for release_id in sorted(ids)]

    def lookup(keys: set[str], families: set[str]) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]:
        proxies: dict[str, dict[str, object]] = {}

        def proxy(release_id: str, name: str, released_on: object) -> dict[str, object]:
            return proxies.setdefault(release_id, {"release_id": release_id, "name": name, "released_on": released_on})

        inside_ids = sorted(not_outside)
        by_member = {key: proxy(*rest) for key, *rest in con.execute(
            OUTSIDE_BY_MEMBER, {"keys": sorted(keys), "inside": inside_ids}).fetchall()}
        by_family: dict[str, list[dict[str, object]]] = defaultdict(list)
        for family, *rest in con.execute(OUTSIDE_BY_FAMILY, {"families": sorted(families), "inside": inside_ids}).fetchall():
            by_family[family].append(proxy(*rest))
        return by_member, by_family

    def claims_of(keys: list[str]) -> dict[str, list[str]]:
        return dict(con.execute(CLAIMS_OF, {"keys": sorted(keys)}).fetchall())

    return Surroundings(dict(hub_authors), claims, dependents, lookup, claims_of)


def _write(
    con: duckdb.DuckDBPyConnection, build: ReleaseBuild, previous: dict[str, StoredRelease], overrides: list[Override],
    rules: str,
) -> None:
    """The build's rows in place of the stored ones it replaces; all tables anew when nothing was stored.
    The state for the next build (`CREATE_STATE_TABLES`) is written whole: the build read every member."""
    if previous:
        rewritten = set(previous) - build.kept_rows
        _delete(con, "releases", rewritten)
        _delete(con, "release_members", set(previous) - build.kept_members)
        _delete(con, DIGESTS_TABLE, rewritten)
        con.execute("delete from release_exclusions")
        con.execute("delete from overrides")
    else:
        con.execute(read_sql("curated", "release_tables"))
        con.execute(f"create or replace table {DIGESTS_TABLE} (release_id varchar not null, "
                    "cluster_digest varchar, row_digest varchar)")
        con.execute(f"create or replace table {RULES_TABLE} as select ? as rules", [rules])
    con.execute(CREATE_STATE_TABLES)
    _write_rows(con, build, overrides, case_twins(row[0] for row in build.state))
    for table in ("releases", "release_members", "release_exclusions"):
        note_whole(con, table)


def _write_part(con: duckdb.DuckDBPyConnection, build: ReleaseBuild, regroup: Regroup, overrides: list[Override]) -> None:
    """A partial build's rows in place of the stored ones of the releases it replaced or linked again, and
    of its members (and the gone ones): their exclusions, state and claims."""
    touched = regroup.replaced | {release_id for release_id, _, _ in build.digests}
    rewritten = touched - build.kept_rows
    _delete(con, "releases", rewritten)
    _delete(con, "release_members", touched - build.kept_members)
    _delete(con, DIGESTS_TABLE, rewritten)
    _delete(con, LINEAGE_TABLE, touched)
    keys = sorted({member.member_key for member in regroup.members} | regroup.gone)
    for table in ("release_exclusions", STATE_TABLE):
        con.execute(f"delete from {table} where member_key in (select unnest($keys))", {"keys": keys})
    con.execute(f"delete from {CLAIMS_TABLE} where arxiv_id in (select unnest($ids))",
                {"ids": sorted(set(regroup.changed_papers) | set(build.claims))})
    con.execute("delete from overrides")
    _write_rows(con, build, overrides, regroup.twins)
    note_keys(con, "releases", rewritten)
    note_keys(con, "release_members", touched - build.kept_members)
    note_keys(con, "release_exclusions", keys)


def _write_rows(con: duckdb.DuckDBPyConnection, build: ReleaseBuild, overrides: list[Override], twins: set[str]) -> None:
    """The build's rows, its state and the case twins (`TWINS_TABLE` holds `twins` alone afterwards)."""
    con.execute(f"delete from {TWINS_TABLE}")
    with Inserts(con) as inserts:
        inserts.dicts("overrides", [asdict(o) for o in overrides])
        inserts.dicts("releases", build.releases)
        inserts.dicts("release_members", build.members)
        inserts.dicts("release_exclusions", build.exclusions)
        inserts.tuples(DIGESTS_TABLE, [row for row in build.digests if row[0] not in build.kept_rows], DIGEST_COLUMNS)
        inserts.tuples(STATE_TABLE, build.state, STATE_COLUMNS)
        inserts.tuples(CLAIMS_TABLE, sorted(build.claims.items()), ("arxiv_id", "member_key"))
        inserts.tuples(LINEAGE_TABLE, build.lineage, LINEAGE_COLUMNS)
        inserts.tuples(TWINS_TABLE, sorted((key,) for key in twins), ("member_key",))


def rules_stored(con: duckdb.DuckDBPyConnection, rules: str) -> bool:
    """Whether the release tables were built under `rules` and still match their digests; if not, every
    release is built again."""
    if not {RULES_TABLE, DIGESTS_TABLE, "releases"} <= table_names(con):
        return False
    if con.execute(f"select count(*) from {RULES_TABLE} where rules = ?", [rules]).fetchone()[0] != 1:
        return False
    counts = con.execute(STORED_KEYS).fetchone()
    if counts[0] != counts[1] or counts[2] != counts[3]:
        # Rows without digests or digests without rows (edited by hand?): start from nothing rather than keep them.
        logger.warning("releases: %s release rows and %s digests do not match; rebuilding every release",
                       f"{counts[0]:,}", f"{counts[1]:,}")
        return False
    return True


def stored_releases(con: duckdb.DuckDBPyConnection, ids: set[str] | None = None) -> dict[str, StoredRelease]:
    """The last build's releases by id (only `ids`, if given): a night's partial build reads a few thousand
    of them, not all 1.7 million (3.2 s at full Hub size)."""
    if ids is None:
        cursor = con.execute(STORED_DIGESTS)
    else:
        cursor = con.execute(STORED_DIGESTS_OF, {"ids": sorted(ids)})
    stored = {}
    while rows := cursor.fetchmany(100_000):
        stored.update((release_id, StoredRelease(*rest)) for release_id, *rest in rows)
    return stored


def _delete(con: duckdb.DuckDBPyConnection, table: str, release_ids: set[str]) -> None:
    if release_ids:
        con.execute(f"delete from {table} where release_id in (select unnest($ids))", {"ids": sorted(release_ids)})


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the build allocates millions of objects that all stay alive.

    Each collection walks every live object, and the allocations trigger one after another: 40% of
    the build's time at 20,000 repos, more at Hub scale, to find next to no garbage; writing the rows
    out allocates a list per column and chunk, which with the collector on cost 10 s at 500,000 repos.
    Any cycle the build does drop is collected once the collector is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


INSERT_ROWS = 50_000
"""Rows per insert: a chunk's text is bound at once, so a bounded chunk bounds the memory."""
COLUMN_TYPES = (
    "select table_name, column_name, data_type from duckdb_columns() "
    "where database_name = current_database() and schema_name = current_schema() order by table_name, column_index"
)
INSERT_OBJECTS = (
    "insert into {table} ({columns}) select unnest(json_transform_strict(row_json, $structure)) "
    "from (select unnest($rows) as row_json)"
)
INSERT_ARRAYS = "insert into {table} ({columns}) select {values} from (select unnest($rows)::json[] as row_json)"
_FLOAT_TYPES = frozenset({"DOUBLE", "FLOAT"})


def _iso_date(value: object) -> str:
    if isinstance(value, date):  # a `datetime` too
        return value.isoformat()
    raise TypeError(f"no JSON for a {type(value).__name__} in a release table row")


_JSON_WITH_NAN = json.JSONEncoder(default=_iso_date, ensure_ascii=False, check_circular=False).encode
"""For a row holding NaN or an infinity in a float column: JSON has no word for them, and orjson writes them as
null, while `json` writes `NaN` and `Infinity`, which DuckDB reads, so that they land as binding lands them."""


class Inserts:
    """Rows into tables of `con` as JSON text, a few statements per table, which a thread of their own sends to
    DuckDB in the order given while this thread writes the next chunk's text.

    DuckDB parses and stores a chunk on one core without holding Python's lock, and orjson writes text on
    the other: 300,000 releases 2.63 -> 2.04 s, the encoding hidden behind the insert (docs/PERFORMANCE.md).
    One chunk at most waits for the sending thread, so memory stays a few chunks of text. Nothing else may
    use `con` until the block ends. The first statement that fails stops the ones after it, and its error is
    raised by the next `dicts` or `tuples`, or on leaving the block. If the block itself fails, or a Ctrl-C
    arrives while it ends, the statement running is interrupted, what waits is dropped, and the thread has
    ended before the error leaves the block (the caller's transaction then rolls back)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._types: dict[str, dict[str, str]] = {}
        for table, column, kind in con.execute(COLUMN_TYPES).fetchall():  # before the thread shares `con`
            # a JSON column's value is its text already: read as a string and cast on insert
            self._types.setdefault(table, {})[column] = "VARCHAR" if kind == "JSON" else kind
        self._chunks: queue.Queue[tuple[str, dict[str, object]] | None] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._dropping = False
        self._sender = threading.Thread(target=self._send, name="release-inserts", daemon=True)

    def __enter__(self) -> Inserts:
        self._sender.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if error is not None:
            self._stop()
            return
        try:
            self._chunks.put(None)
            self._sender.join()
        except BaseException:  # interrupted (Ctrl-C) while the last chunks were sent
            self._stop()
            raise
        if self._failure is not None:
            raise self._failure

    def _stop(self) -> None:
        """Drop what waits, interrupt the statement running and wait for the thread to end, whatever arrives
        meanwhile: the caller rolls back next, on the connection the thread must have let go."""
        self._dropping = True
        self._con.interrupt()
        while self._sender.is_alive():
            try:
                self._chunks.put(None, timeout=0.1)  # the thread takes chunks without sending them now
                self._sender.join()
            except (queue.Full, KeyboardInterrupt):
                continue

    def _send(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._failure is None and not self._dropping:
                try:
                    self._con.execute(*chunk)
                except BaseException as failure:  # raised in the caller's thread
                    self._failure = failure

    def _send_rows(
        self, statement: str, rows: Sequence[object], text: Callable[[Any], str], parameters: dict[str, object]
    ) -> None:
        """`statement` for each chunk of `rows`, bound as their `text` with `parameters`, handed to the thread."""
        for first in range(0, len(rows), INSERT_ROWS):
            chunk = list(map(text, rows[first : first + INSERT_ROWS]))
            if self._failure is not None:
                raise self._failure
            if not self._sender.is_alive():  # no thread to take the chunk: the second would wait for ever
                raise RuntimeError("rows given to Inserts outside its `with` block")
            self._chunks.put((statement, {"rows": chunk, **parameters}))

    def _columns(self, table: str) -> dict[str, str]:
        """`table`'s columns and the types `json_transform_strict` reads their values as."""
        if table not in self._types:
            raise ValueError(f"no table {table} in the database the inserts write to")
        return self._types[table]

    def dicts(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        """Rows as dicts holding every column of `table` by name (the wide rows of the published tables): one
        object a row, that DuckDB parses into the columns.

        Binding converts each value on its own, which costs most for wide rows of lists: 300,000 releases
        6.6 s bound, 4.7 to 4.9 s as text encoded by `json`, 3.1 s encoded by orjson, in C, dates and times
        included (docs/PERFORMANCE.md). `json_transform_strict` fails on a missing column or a value of the
        wrong type, as binding would."""
        if not rows:
            return
        types = self._columns(table)
        statement = INSERT_OBJECTS.format(table=table, columns=", ".join(types))
        structure = json.dumps(types)
        floats = tuple(column for column, kind in types.items() if kind in _FLOAT_TYPES)

        def text(row: Mapping[str, object]) -> str:
            for column in floats:
                value = row.get(column)  # a missing column fails in DuckDB, by name
                if value is not None and not math.isfinite(value):
                    return _JSON_WITH_NAN(row)
            return orjson.dumps(row).decode()

        self._send_rows(statement, rows, text, {"structure": structure})

    def tuples(self, table: str, rows: Sequence[Sequence[object]], columns: tuple[str, ...]) -> None:
        """Rows as tuples in the order of `columns` (the narrow rows of the build's state, millions of them with
        no dict each): one array a row, each item parsed into its column as `dicts` parses a row's keys. A
        tuple of another length than `columns` fails."""
        if not rows:
            return
        types = self._columns(table)
        values = ", ".join(f"json_transform_strict(row_json[{index}], $t{index})" for index in range(1, len(columns) + 1))
        statement = INSERT_ARRAYS.format(table=table, columns=", ".join(columns), values=values)
        structures = {f"t{index}": json.dumps(types[column]) for index, column in enumerate(columns, 1)}
        floats = tuple(index for index, column in enumerate(columns) if types[column] in _FLOAT_TYPES)

        def text(row: Sequence[object]) -> str:
            if len(row) != len(columns):
                raise ValueError(f"a row of {len(row)} values for the {len(columns)} columns {columns} of {table}")
            for index in floats:
                if row[index] is not None and not math.isfinite(row[index]):
                    return _JSON_WITH_NAN(row)
            return orjson.dumps(row).decode()

        self._send_rows(statement, rows, text, structures)
