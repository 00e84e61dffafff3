"""From source records to releases: exclude re-uploads, merge what is one release, label each.

Two records are one release when they share an identifier (a Hub repo, an arXiv paper that is not
just cited) or when the same organization published them under one family name within 14 days
(`Llama-2-7b-hf`, `Llama-2-13b-chat-hf`, Epoch's `Llama 2-70B`). Everything here is a pure
function of its inputs, sorted before use, so two rebuilds give identical releases and ids.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from operator import attrgetter, itemgetter
from typing import NamedTuple

from transforms.family import FamilyKeys, display_family, is_conversion
from transforms.labels import (
    MODALITIES,
    QUALITY_TIERS,
    ComputeFrontier,
    label_modality,
    label_org_type,
    label_quality_tier,
    prominence,
)
from transforms.organizations import ORG_TYPES, Organization, Registry

SOURCE_ORDER = {"epoch": 0, "huggingface": 1, "arxiv": 2, "paperswithcode": 3}
PAPER_SOURCES = ("arxiv", "paperswithcode")
ROLE_BY_SOURCE = {"arxiv": "paper", "paperswithcode": "catalog"}
LINEAGE_COLUMNS = ("base_release_id", "base_model", "lineage_relation")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REASONS_JSON = json.JSONEncoder(sort_keys=True).encode
"""`json.dumps(reasons, sort_keys=True)` without building an encoder per release (1.7 million at Hub scale)."""
OVERRIDABLE_LABELS = {"org_type": ORG_TYPES, "modality": MODALITIES, "quality_tier": QUALITY_TIERS, "is_notable": ("true", "false")}


@dataclass(slots=True)
class Member:
    """One source record that may belong to a release (columns of `int_members_*`).

    Slots: a build holds one per Hub repo (millions at Hub scale), and a slotted instance is a third
    the size of one with a `__dict__`."""

    member_key: str
    source: str
    source_key: str
    name: str
    organization: str | None = None
    hf_author: str | None = None
    released_on: date | None = None
    first_seen_at: int | None = None
    """When raw first held the record, in microseconds since 1970 (UTC), as `last_seen_at`: read as
    numbers, since DuckDB's conversion of each TIMESTAMPTZ into a `datetime` was 40% of reading the
    members (at full Hub size 23.6 s, 13.7 s without); only the releases assembled make `datetime`s."""
    last_seen_at: int | None = None
    arxiv_ids: list[str] = field(default_factory=list)
    linked_hf_repos: list[str] = field(default_factory=list)
    base_names: list[str] = field(default_factory=list)
    base_relation: str | None = None
    domain: str | None = None
    task: str | None = None
    pipeline_tag: str | None = None
    tags: list[str] = field(default_factory=list)
    library_name: str | None = None
    parameters: int | None = None
    training_compute_flop: float | None = None
    is_epoch_frontier: bool = False
    in_epoch_notable: bool = False
    org_categorization: str | None = None
    is_open_weights: bool = False
    model_accessibility: str | None = None
    likes: int | None = None
    evidence: list[str] = field(default_factory=list)
    can_stand_alone: bool = True
    open_llm_v1_average: float | None = None
    open_llm_v2_average: float | None = None
    content_digest: int | None = None
    """A hash of every column above (DuckDB's `hash`, computed as the members are read); None: unknown,
    and then no stored release is reused for this member's release."""


@dataclass(frozen=True)
class Override:
    """An analyst's correction, applied after the rules: `label`, `merge` or `split`."""

    action: str
    member_key: str
    field: str = ""
    value: str = ""
    other_member_key: str = ""
    note: str = ""


@dataclass(frozen=True)
class ReleaseOptions:
    notable_min_likes: int = 100
    include_merges: bool = False
    family_window_days: int = 14
    max_hub_authors_per_paper: int = 2
    """An arXiv id tagged by repos of more authors than this is a citation, not the repo's own paper."""


class StoredRelease(NamedTuple):
    """What the previous build kept of a release, enough to reuse its rows when nothing they depend on changed."""

    cluster_digest: str
    row_digest: str
    name: str


@dataclass
class ReleaseBuild:
    """Rows to write; without `previous`, every release and member row.

    With `previous`, `releases` holds only the rows that changed and `members` only the member rows
    of releases whose members changed: the stored rows of `kept_rows` and `kept_members` stand.
    `digests` gives (release_id, cluster digest, row digest) of every release, for the next build.
    """

    releases: list[dict[str, object]]
    members: list[dict[str, object]]
    exclusions: list[dict[str, object]]
    notes: list[str]
    digests: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    kept_rows: set[str] = field(default_factory=set)
    kept_members: set[str] = field(default_factory=set)
    state: list[tuple[object, ...]] = field(default_factory=list)
    """Per member given: (member_key, source, content digest, whether it has a training compute figure, cluster,
    link tokens, Hub author, arXiv ids), what the next build needs to tell which clusters a change can touch;
    the last four are None when excluded (the author and ids only for a kept Hub repo citing a paper,
    lower-cased author)."""
    claims: dict[str, str] = field(default_factory=dict)
    """arXiv id → the member whose release claims it, for every paper a member given links by."""
    lineage: list[tuple[str, date | None, list[str], list[str]]] = field(default_factory=list)
    """Per release built or linked again: (release_id, its date before any override, its family keys, what
    its lineage looked up)."""


class Outline(NamedTuple):
    """What the lineage of other releases reads of a release: `Surroundings.dependents` compares the outlines
    of the releases a partial build replaced with those of the ones it built."""

    release_id: str
    name: str
    released_on: date | None
    family_keys: list[str]
    member_keys: list[str]
    """Lower-cased, as lineage looks them up."""


@dataclass
class Surroundings:
    """What a build over part of the members needs of the rest of the warehouse.

    `transforms.build_releases` regroups only whole clusters of the last build: those holding a link
    token (`link_tokens`) that a changed member has or had. No link leaves such a set of clusters, so
    grouping inside it gives what a build over every member gives, except for what is counted or found
    across the rest: who else cites a paper, who claims a paper, and the releases lineage points at or
    that point at these. This supplies them."""

    hub_authors: Mapping[str, set[str]]
    """Per arXiv id cited by a Hub repo given: the lower-cased authors of the kept repos outside that cite it."""
    claims: Mapping[str, str]
    """The stored claims of the arXiv ids whose participants did not change (their first model may lie outside)."""
    dependents: Callable[[list[Outline]], list[tuple[dict[str, object], StoredRelease]]]
    """Given the releases built: the releases outside whose lineage may read them differently than it read
    the releases they replace, each as `_reused` gives it (with its members), and what was stored of it."""
    lookup: Callable[[set[str], set[str]], tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]]
    """Given lower-cased member keys and family keys: the releases outside holding those members, and those
    of those families (each a dict of release_id, name and released_on; families oldest first)."""
    claims_of: Callable[[list[str]], dict[str, list[str]]]
    """The arXiv ids that outside members claim, for a dependent assembled again."""


def exclusion_reason(member: Member, options: ReleaseOptions) -> str | None:
    """Why a record can never be (or be part of) a release, or None."""
    if member.source != "huggingface":
        return None
    conversion = is_conversion(member.source_key, member.tags, member.library_name)
    if conversion:
        return conversion
    if member.base_relation == "quantized":
        return "quantized re-upload (base_model:quantized relation)"
    if member.base_relation == "merge" and not options.include_merges:
        return "model merge (MODEL_CENSUS_INCLUDE_MERGES is off)"
    if member.base_relation == "adapter" and (member.likes or 0) < options.notable_min_likes:
        return f"adapter-only repo with {member.likes or 0} likes (< {options.notable_min_likes})"
    return None


def build_releases(
    members: Iterable[Member],
    registry: Registry,
    overrides: Sequence[Override] = (),
    options: ReleaseOptions = ReleaseOptions(),
    *,
    previous: Mapping[str, StoredRelease] | None = None,
    rules: str = "",
    surroundings: Surroundings | None = None,
) -> ReleaseBuild:
    """Releases, their members and the excluded records, from every candidate member.

    A release is assembled again only if what its row is a function of changed: its members' content
    (`Member.content_digest`), the papers they claim, the compute frontier of its date and `rules` (a
    digest of the code, registry, overrides and options), all in its cluster digest; and its lineage,
    added to make its row digest. Otherwise the stored row stands (`previous`, by release id), so the
    result equals a build without `previous`.

    With `surroundings`, `members` are whole clusters of the last build and the build regroups only
    them (see `Surroundings`); releases outside whose lineage may have changed are linked again.
    """
    notes: list[str] = []
    kept: list[Member] = []
    excluded: list[Member] = []
    exclusions = []
    for member in sorted(members, key=attrgetter("member_key")):
        reason = exclusion_reason(member, options)
        if reason:
            excluded.append(member)
            exclusions.append({"member_key": member.member_key, "source": member.source,
                               "source_key": member.source_key, "reason": reason})
        else:
            kept.append(member)
    by_key = {member.member_key: member for member in kept}
    orgs = {member.member_key: organization_of(member, registry) for member in kept}

    groups = _UnionFind(by_key)
    split = {o.member_key for o in overrides if o.action == "split"}
    hub_authors = citing_authors(kept)
    for arxiv_id, authors in (surroundings.hub_authors.items() if surroundings else ()):
        hub_authors[arxiv_id] = hub_authors.get(arxiv_id, set()) | authors
    family_keys = FamilyKeys()

    def author_count(arxiv_id: str) -> int:
        return len(hub_authors.get(arxiv_id, ()))

    tokens = {
        member.member_key: link_tokens(member, orgs[member.member_key], split, author_count, options, family_keys)
        for member in kept
    }
    claimed_arxiv = _link_identifiers(kept, by_key, groups, split, tokens, options)
    if surroundings:
        claimed_arxiv.update(surroundings.claims)
    _link_families(kept, groups, tokens, options)
    for override in overrides:
        if override.action == "merge":
            if override.member_key in by_key and override.other_member_key in by_key:
                groups.union(override.member_key, override.other_member_key)
            else:
                notes.append(f"merge override skipped: {override.member_key} or {override.other_member_key} unknown")

    clusters: dict[str, list[Member]] = defaultdict(list)
    for member in kept:
        clusters[groups.find(member.member_key)].append(member)
    frontier = ComputeFrontier(
        [(m.released_on, m.training_compute_flop) for m in kept if m.released_on and m.training_compute_flop]
    )

    arxiv_of: dict[str, list[str]] = defaultdict(list)
    for arxiv_id, key in sorted(claimed_arxiv.items()):
        arxiv_of[key].append(arxiv_id)
    previous = dict(previous or {}) if surroundings else previous or {}  # surroundings add the dependents
    releases: list[dict[str, object]] = []
    assembled_members: list[tuple[str, list[dict[str, object]]]] = []  # each assembled release's member rows
    release_of: dict[str, dict[str, object]] = {}
    cluster_digests: dict[str, str | None] = {}
    reused: set[str] = set()
    for cluster in clusters.values():
        if len(cluster) == 1:  # most releases: the same, without a generator for each
            ordered, (lone,) = cluster, cluster
            if not lone.can_stand_alone:
                continue
            released_on, has_compute = lone.released_on or None, bool(lone.training_compute_flop)
        else:
            if not any(m.can_stand_alone for m in cluster):
                continue
            ordered = sorted(cluster, key=_priority)
            released_on = min((m.released_on for m in ordered if m.released_on), default=None)
            # the frontier of its time counts only for a release with a compute figure (`label_quality_tier`)
            has_compute = any(m.training_compute_flop for m in ordered)
        release_id = _release_id(ordered)
        frontier_of_its_time = frontier.at(released_on) if released_on and has_compute else None
        digest = _cluster_digest(ordered, arxiv_of, frontier_of_its_time, rules)
        cluster_digests[release_id] = digest
        stored = previous.get(release_id)
        if digest is not None and stored is not None and stored.cluster_digest == digest:
            release = _reused(release_id, stored.name, released_on, ordered)
            reused.add(release_id)
        else:
            release = _assemble(release_id, ordered, registry, arxiv_of, frontier, options, family_keys)
            assembled_members.append((release_id, _member_rows(release_id, ordered)))
        releases.append(release)
        for member in ordered:
            release_of[member.member_key.lower()] = release
    family_keys_of = _family_keys_of(releases, orgs, family_keys)
    linked: Mapping[str, dict[str, object]] = release_of
    if surroundings:
        linked, based_on, outside_families = _with_surroundings(
            surroundings, releases, release_of, family_keys_of, orgs, registry, family_keys, previous,
            cluster_digests, reused, arxiv_of,
        )
    else:
        based_on, outside_families = _base_families(kept, family_keys), {}
    by_family = _family_index(releases, family_keys_of, based_on)
    for key, family_releases in outside_families.items():
        _merge_family(by_family, key, family_releases)
    lineage = [(release["release_id"], release["released_on"], family_keys_of[release["release_id"]],
                _set_lineage(release, linked, by_family, family_keys)) for release in releases]
    digests, kept_rows = [], set()
    for index, release in enumerate(releases):
        release_id = release["release_id"]
        row_digest = _row_digest(cluster_digests[release_id], release)
        digests.append((release_id, cluster_digests[release_id], row_digest))
        if release_id not in reused:
            continue
        if row_digest is not None and previous[release_id].row_digest == row_digest:
            kept_rows.add(release_id)
            continue
        # Same members, new lineage (its base's release changed): the whole row again, with that lineage.
        ordered = release["_members"]
        full = _assemble(release_id, ordered, registry, arxiv_of, frontier, options, family_keys)
        for column in LINEAGE_COLUMNS:
            full[column] = release[column]
        if "lineage" in release["label_reasons"]:
            full["label_reasons"]["lineage"] = release["label_reasons"]["lineage"]
        releases[index] = full
        for member in ordered:
            if release_of.get(member.member_key.lower()) is release:  # not if a key equal but for case went to another
                release_of[member.member_key.lower()] = full
    _apply_label_overrides(overrides, release_of, notes)
    written = [release for release in releases if release["release_id"] not in kept_rows]
    for release in written:
        release["label_reasons"] = _REASONS_JSON(release["label_reasons"])
        release.pop("_members")
    written.sort(key=itemgetter("release_id"))
    # By (release, member): the releases by id, then the members of the few with several (2.8 -> 1.8 s for
    # 1.7 million releases, against two stable sorts of the 1.9 million rows by member, then by release).
    assembled_members.sort(key=itemgetter(0))
    member_rows = [row for _, own in assembled_members
                   for row in (own if len(own) == 1 else sorted(own, key=itemgetter("member_key")))]
    digests.sort()
    state = [
        (m.member_key, m.source, m.content_digest, m.training_compute_flop is not None, groups.find(m.member_key),
         tokens[m.member_key], *((hub_author(m), m.arxiv_ids) if m.source == "huggingface" and m.arxiv_ids else (None, None)))
        for m in kept
    ] + [(m.member_key, m.source, m.content_digest, m.training_compute_flop is not None, None, None, None, None)
         for m in excluded]
    return ReleaseBuild(written, member_rows, exclusions, notes, digests, kept_rows, reused, state, claimed_arxiv, lineage)


def _with_surroundings(
    surroundings: Surroundings,
    releases: list[dict[str, object]],
    release_of: dict[str, dict[str, object]],
    family_keys_of: dict[str, list[str]],
    orgs: dict[str, tuple[str | None, Organization | None]],
    registry: Registry,
    family_keys: FamilyKeys,
    previous: dict[str, StoredRelease],
    cluster_digests: dict[str, str | None],
    reused: set[str],
    arxiv_of: dict[str, list[str]],
) -> tuple[Mapping[str, dict[str, object]], set[str], dict[str, list[dict[str, object]]]]:
    """Add to a partial build the releases outside it that its lineage reads, and those whose lineage it changes.

    The dependents join `releases` as stored releases (their members and clusters did not change, so
    neither did their cluster digests); the lookups give every other release a lineage may point at.
    Returns the releases by lower-cased member key, outside ones included; the families the bases of
    `releases` are looked up in; and the outside releases of those families, oldest first."""
    dependents = surroundings.dependents([
        Outline(r["release_id"], r["name"], r["released_on"], family_keys_of[r["release_id"]],
              [m.member_key.lower() for m in r["_members"]])
        for r in releases
    ])
    for release, stored in dependents:
        release_id = release["release_id"]
        previous[release_id] = stored
        cluster_digests[release_id] = stored.cluster_digest
        reused.add(release_id)
        releases.append(release)
        for member in release["_members"]:
            orgs[member.member_key] = organization_of(member, registry)
            release_of[member.member_key.lower()] = release
    for member_key, arxiv_ids in surroundings.claims_of(
        [m.member_key for release, _ in dependents for m in release["_members"]]
    ).items():
        arxiv_of[member_key].extend(arxiv_ids)
    family_keys_of.update(_family_keys_of([release for release, _ in dependents], orgs, family_keys))
    based = [m for release in releases for m in release["_members"] if m.base_names]
    wanted_keys = {_base_key(m.source, base) for m in based for base in m.base_names}
    wanted_families = _base_families(based, family_keys)
    outside_of, outside_families = surroundings.lookup(wanted_keys - release_of.keys(), wanted_families)
    return {**outside_of, **release_of}, wanted_families, outside_families


def _merge_family(by_family: dict[str, _Family], key: str, more: list[dict[str, object]]) -> None:
    """A family's releases with `more` of them, in the order `_family_index` gives."""
    merged = sorted([*(by_family[key].releases if key in by_family else ()), *more],
                    key=lambda r: (r["released_on"] or date.max, r["release_id"]))
    by_family[key] = _Family(merged, [release["released_on"] or date.max for release in merged])


def citing_authors(kept: list[Member]) -> dict[str, set[str]]:
    """Per arXiv id, the authors of the kept Hub repos citing it: more than a few, and it is not their own paper."""
    hub_authors: dict[str, set[str]] = defaultdict(set)
    for member in kept:
        if member.source == "huggingface":
            for arxiv_id in member.arxiv_ids:
                hub_authors[arxiv_id].add(hub_author(member))
    return dict(hub_authors)


def hub_author(member: Member) -> str:
    """Who published a Hub repo, as the count of a paper's citing authors compares them."""
    return (member.hf_author or "").lower()


def link_tokens(
    member: Member,
    org: tuple[str | None, Organization | None],
    split: set[str],
    author_count: Callable[[str], int],
    options: ReleaseOptions,
    family_keys: FamilyKeys,
) -> list[str]:
    """What a kept member can be grouped with others through, as the grouping reads it.

    `r:<member key>`: a Hub repo it links (Papers With Code); `a:<arXiv id>`: a paper it is the model or
    the record of (not one it only cites: a derivative's, or one cited by more Hub authors than
    `max_hub_authors_per_paper`, which `author_count` counts); `f:<organization> <family key>`: the
    family it is a variant in. `_link_identifiers` and `_link_families` group by these and only these,
    so the members a change can regroup are those sharing a token with it."""
    if member.member_key in split:
        return []
    tokens = ["r:hf:" + repo for repo in member.linked_hf_repos]
    for arxiv_id in member.arxiv_ids:
        if member.source == "huggingface" and (
            member.base_names or author_count(arxiv_id) > options.max_hub_authors_per_paper
        ):
            continue  # a derivative's or a much-cited paper: cited, not this repo's own
        tokens.append("a:" + arxiv_id)
    org_key, known = org
    if org_key is not None and member.released_on is not None and member.source in ("epoch", "huggingface"):
        tokens.append(f"f:{org_key}\x1f{family_keys(member.name, known.words if known else frozenset())}")
    return tokens

def _member_rows(release_id: str, ordered: list[Member]) -> list[dict[str, object]]:
    return [
        {
            "release_id": release_id, "member_key": member.member_key, "source": member.source,
            "source_key": member.source_key,
            "role": "main" if member is ordered[0] else ROLE_BY_SOURCE.get(member.source, "variant"),
            "name": member.name, "released_on": member.released_on,
        }
        for member in ordered
    ]


def _reused(release_id: str, name: str, released_on: date | None, ordered: list[Member]) -> dict[str, object]:
    """A stored release, with what lineage reads of it (id, name, date, members) and writes."""
    return {"release_id": release_id, "name": name, "released_on": released_on, "label_reasons": {},
            **dict.fromkeys(LINEAGE_COLUMNS), "_members": ordered}


def stored_release(release_id: str, stored: StoredRelease, members: list[Member]) -> dict[str, object]:
    """A release of the last build with its members, as a partial build links it again (`Surroundings.dependents`)."""
    ordered = sorted(members, key=_priority)
    return _reused(release_id, stored.name, min((m.released_on for m in ordered if m.released_on), default=None), ordered)


def _cluster_digest(
    ordered: list[Member], arxiv_of: dict[str, list[str]], frontier_of_its_time: float | None, rules: str
) -> str | None:
    """Everything `_assemble` reads for this release, hashed; None if a member's content is unknown."""
    parts = [rules, repr(frontier_of_its_time)]
    for member in ordered:
        if member.content_digest is None:
            return None
        # the content digest covers the member key; the papers it claims only when it claims any
        claimed = arxiv_of.get(member.member_key)
        parts.append(f"{member.content_digest} {claimed!r}" if claimed else str(member.content_digest))
    return hashlib.md5("\n".join(parts).encode("utf-8")).hexdigest()


def _row_digest(cluster_digest: str | None, release: dict[str, object]) -> str | None:
    """The cluster digest and the lineage found for it: together, everything the release's row depends on."""
    if cluster_digest is None:
        return None
    if release["base_model"] is None:  # no lineage: nothing to add (the base model is set whenever a lineage is)
        return cluster_digest
    lineage = (*(release[column] for column in LINEAGE_COLUMNS), release["label_reasons"].get("lineage"))
    return hashlib.md5(f"{cluster_digest}{lineage!r}".encode("utf-8")).hexdigest()


def organization_of(member: Member, registry: Registry) -> tuple[str | None, Organization | None]:
    """(grouping key, registry entry): who published it, as one key whatever the source calls it."""
    org = registry.first_known(member.organization) or registry.by_hub_namespace(member.hf_author)
    if org:
        return org.org_id, org
    if member.organization:
        return "epoch:" + member.organization.split(",")[0].strip().lower(), None
    if member.hf_author:
        return "hub:" + member.hf_author.lower(), None
    return None, None


def _link_identifiers(
    kept: list[Member], by_key: dict[str, Member], groups: _UnionFind, split: set[str], tokens: dict[str, list[str]],
    options: ReleaseOptions,
) -> dict[str, str]:
    """Union records sharing an arXiv paper or naming a Hub repo (their `r:` and `a:` link tokens);
    returns arXiv id → the member it belongs to.

    One paper can describe models released months apart (the Falcon series report covers Falcon-40B
    of March and Falcon-180B of September): models citing it are one release only within the family
    window, and the paper (with its arXiv record and catalog entries) joins the earliest of them.
    """
    models: dict[str, list[Member]] = defaultdict(list)
    papers: dict[str, list[str]] = defaultdict(list)
    for member in kept:
        for token in tokens[member.member_key]:
            kind, value = token[0], token[2:]
            if kind == "r":
                if value in by_key and value not in split:
                    groups.union(member.member_key, value)
            elif kind == "a":
                if member.source in PAPER_SOURCES:
                    papers[value].append(member.member_key)
                else:
                    models[value].append(member)
    claimed = {}
    for arxiv_id in sorted(set(models) | set(papers)):
        windows = _date_windows(models.get(arxiv_id, []), options.family_window_days)
        for window in windows:
            for member in window[1:]:
                groups.union(window[0].member_key, member.member_key)
        keys = [windows[0][0].member_key] if windows else []
        keys += papers.get(arxiv_id, [])
        for key in keys[1:]:
            groups.union(keys[0], key)
        claimed[arxiv_id] = keys[0]
    return claimed


def _date_windows(members: list[Member], window_days: int) -> list[list[Member]]:
    """Members in date order, cut wherever one is more than `window_days` after its window's first."""
    ordered = sorted(members, key=lambda m: (m.released_on or date.max, m.member_key))
    windows: list[list[Member]] = []
    for member in ordered:
        start = windows[-1][0].released_on if windows else None
        if windows and (member.released_on is None or start is None or (member.released_on - start).days <= window_days):
            windows[-1].append(member)
        else:
            windows.append([member])
    return windows


def _link_families(kept: list[Member], groups: _UnionFind, tokens: dict[str, list[str]], options: ReleaseOptions) -> None:
    """Union variants: same organization, same family (an `f:` link token), published within the window of the first."""
    families: dict[str, list[Member]] = defaultdict(list)
    for member in kept:
        for token in tokens[member.member_key]:
            if token[0] == "f":
                families[token].append(member)
    for family_members in families.values():
        if len(family_members) == 1:  # most families at Hub scale: nothing to link
            continue
        for window in _date_windows(family_members, options.family_window_days):
            for member in window[1:]:
                groups.union(window[0].member_key, member.member_key)


def _priority(member: Member) -> tuple:
    """Which member names the release: Epoch's notable row, then Epoch, then the most-liked repo."""
    return (
        not member.in_epoch_notable,
        SOURCE_ORDER.get(member.source, 9),
        -(member.likes or 0),
        member.released_on or date.max,
        member.member_key,
    )


def _assemble(
    release_id: str,
    ordered: list[Member],
    registry: Registry,
    arxiv_of: dict[str, list[str]],
    frontier: ComputeFrontier,
    options: ReleaseOptions,
    family_keys: FamilyKeys,
) -> dict[str, object]:
    """One release's row from its members, main member first; `arxiv_of` lists the papers each member claimed.

    `release_id` is `_release_id(ordered)`, which the caller has already worked out."""
    main = ordered[0]
    org_type, org_reason, known_org = label_org_type(ordered, registry)
    modality, modality_reason = label_modality(ordered)
    span = _Span(ordered, arxiv_of)
    released_on = span.released_on
    tier, tier_reason = label_quality_tier(ordered, known_org, frontier.at(released_on) if released_on else None)
    notable, notable_reason = _notability(span.in_epoch_notable, tier, span.likes, options)
    evidence = _evaluation_evidence(ordered)
    named = _naming_members(ordered)
    family = _family_name(named, known_org, family_keys)
    # One naming member names the release (Falcon-40B, whatever its repos are called); several make it the
    # family's release (Llama 2).
    names = {m.name for m in named}
    organization = known_org.name if known_org else (main.organization or main.hf_author)
    return {
        "release_id": release_id,
        "name": family if len(names) > 1 else min(names),
        "family": family,
        "organization": organization,
        "org_type": org_type,
        "modality": modality,
        "released_on": released_on,
        "quality_tier": tier,
        "base_release_id": None,
        "base_model": None,
        "lineage_relation": None,
        "parameters": span.parameters,
        "is_notable": notable,
        "notability_reason": notable_reason,
        "has_evaluation": bool(evidence),
        "evaluation_evidence": evidence,
        "is_open_weights": span.is_open_weights,
        "prominence": round(prominence(span.in_epoch_notable, tier, span.likes), 4),
        "hub_likes": span.likes,
        "training_compute_flop": span.training_compute_flop,
        "epoch_published_on": span.earliest.get("epoch"),
        "hf_created_on": span.earliest.get("huggingface"),
        "arxiv_published_on": span.earliest.get("arxiv"),
        "hf_repo_ids": span.keys_of("huggingface"),
        "arxiv_ids": sorted(span.arxiv_ids),
        "epoch_names": span.keys_of("epoch"),
        "pwc_ids": span.keys_of("paperswithcode"),
        "sources": sorted(span.keys, key=lambda s: SOURCE_ORDER.get(s, 9)),
        "label_reasons": {
            "org_type": org_reason,
            "modality": modality_reason,
            "quality_tier": tier_reason,
            "is_notable": notable_reason,
            "has_evaluation": ", ".join(evidence) if evidence else "no model-index, evalResults, Papers With Code results, Epoch benchmark data or Open LLM Leaderboard entry",
        },
        "first_seen_at": _moment(span.first_seen_at),
        "updated_at": _moment(span.last_seen_at),
        "open_llm_v1_average": span.open_llm_v1_average,
        "open_llm_v2_average": span.open_llm_v2_average,
        "_members": ordered,
    }


class _Span:
    """What a release's row sums, or takes the least or the most of, over its members: one pass.

    One pass instead of a generator per column: 99% of the releases of the full-size benchmark have one or
    two members, and setting up fifteen generators cost more than going through them (`_assemble` 30.3 ->
    16.7 us a release, with `_family_name`'s shortcut for one naming member). Each maximum or minimum
    is taken as `max`/`min` takes it (a later value replaces the kept one only if greater, or less), over
    the values `_assemble` counts: truthy ones for dates, parameters and compute, any but None for the
    seen times and the leaderboard averages."""

    __slots__ = ("released_on", "earliest", "parameters", "training_compute_flop", "likes", "is_open_weights",
                 "in_epoch_notable", "first_seen_at", "last_seen_at", "open_llm_v1_average", "open_llm_v2_average",
                 "keys", "arxiv_ids")

    def __init__(self, ordered: list[Member], arxiv_of: dict[str, list[str]]) -> None:
        released_on = parameters = compute = first_seen = last_seen = v1 = v2 = None
        earliest: dict[str, date] = {}
        keys: dict[str, list[str]] = {}
        arxiv_ids: list[str] = []
        likes = 0
        open_weights = in_notable = False
        for m in ordered:
            source = m.source
            keys.setdefault(source, []).append(m.source_key)
            if m.released_on:
                if released_on is None or m.released_on < released_on:
                    released_on = m.released_on
                if source not in earliest or m.released_on < earliest[source]:
                    earliest[source] = m.released_on
            if m.parameters and (parameters is None or m.parameters > parameters):
                parameters = m.parameters
            if m.training_compute_flop and (compute is None or m.training_compute_flop > compute):
                compute = m.training_compute_flop
            if m.first_seen_at is not None and (first_seen is None or m.first_seen_at < first_seen):
                first_seen = m.first_seen_at
            if m.last_seen_at is not None and (last_seen is None or m.last_seen_at > last_seen):
                last_seen = m.last_seen_at
            if m.open_llm_v1_average is not None and (v1 is None or m.open_llm_v1_average > v1):
                v1 = m.open_llm_v1_average
            if m.open_llm_v2_average is not None and (v2 is None or m.open_llm_v2_average > v2):
                v2 = m.open_llm_v2_average
            likes += m.likes or 0
            if m.is_open_weights:
                open_weights = True
            if m.in_epoch_notable:
                in_notable = True
            claimed = arxiv_of.get(m.member_key)
            if claimed:
                arxiv_ids.extend(claimed)
        self.released_on, self.earliest, self.parameters, self.training_compute_flop = released_on, earliest, parameters, compute
        self.likes, self.is_open_weights, self.in_epoch_notable = likes, open_weights, in_notable
        self.first_seen_at, self.last_seen_at, self.open_llm_v1_average, self.open_llm_v2_average = first_seen, last_seen, v1, v2
        self.keys, self.arxiv_ids = keys, arxiv_ids

    def keys_of(self, source: str) -> list[str]:
        """The source keys of the members from `source`, sorted."""
        return sorted(self.keys.get(source, ()))


@functools.lru_cache(maxsize=1 << 16)
def _moment(microseconds: int | None) -> datetime | None:
    """A member's seen time as a `datetime`, remembered: records landed by one page share their time, so the
    full-size benchmark's 3.4 million calls ask for 2,903 values (58 against 427 ns a call)."""
    return None if microseconds is None else _EPOCH + timedelta(microseconds=microseconds)


def _evaluation_evidence(ordered: list[Member]) -> list[str]:
    """Every member's evidence, sorted; a leaderboard version's `_merged_or_flagged` mark only when it is all there is.

    Each Hub member marks its Open LLM Leaderboard evidence when every entry of that repo was a merge
    or flagged (the leaderboard warned that merges inflate scores); one unmarked entry among the
    release's members (the chat variant evaluated cleanly, say) lifts the mark for the release.
    """
    evidence = {kind for m in ordered for kind in m.evidence}
    if not evidence:  # most releases: nothing to sort or lift
        return []
    for version in ("v1", "v2"):
        entry, mark = f"open_llm_leaderboard_{version}", f"open_llm_leaderboard_{version}_merged_or_flagged"
        if any(entry in m.evidence and mark not in m.evidence for m in ordered):
            evidence.discard(mark)
    return sorted(evidence)


def _family_name(named: list[Member], known_org: Organization | None, family_keys: FamilyKeys) -> str:
    """The family most of the release's naming members (`_naming_members`) are named after (Phi-3's report
    also covers Phi-3.5)."""
    if len(named) == 1:  # most releases: its one name is the most common and the earliest
        return display_family(named[0].name)
    words = known_org.words if known_org else frozenset()
    keys = [family_keys(m.name, words) for m in named]
    most_common = max(sorted(set(keys)), key=keys.count)
    earliest = min(
        (m for m, key in zip(named, keys) if key == most_common),
        key=lambda m: (m.released_on or date.max, m.member_key),
    )
    return display_family(earliest.name)


def _naming_members(ordered: list[Member]) -> list[Member]:
    """Whose names name a release: its Epoch rows, written by people; its repos only when Epoch has no row."""
    return [m for m in ordered if m.source == "epoch"] or [m for m in ordered if m.source == "huggingface"] or ordered[:1]


def _release_id(ordered: list[Member]) -> str:
    return hashlib.md5(_identity(ordered).encode("utf-8")).hexdigest()[:16]


def _identity(ordered: list[Member]) -> str:
    """What a release's id is derived from: its first Epoch row, else its first repo, else its paper."""
    if len(ordered) == 1:  # most releases: its one member, whatever its source
        return ordered[0].member_key
    for source in ("epoch", "huggingface", "arxiv"):
        keys = sorted(m.member_key for m in ordered if m.source == source)
        if keys:
            return keys[0]
    return ordered[0].member_key


def _notability(in_epoch_notable: bool, tier: str, likes: int, options: ReleaseOptions) -> tuple[bool, str | None]:
    if in_epoch_notable:
        return True, "in Epoch AI's notable models"
    if tier in ("frontier", "near_frontier"):
        return True, f"quality tier {tier}"
    if likes >= options.notable_min_likes:
        return True, f"{likes:,} Hub likes across the family (>= {options.notable_min_likes})"
    return False, None


@dataclass
class _Family:
    """A family's releases, oldest first, with their dates (`date.max` when undated) to bisect."""

    releases: list[dict[str, object]] = field(default_factory=list)
    born: list[date] = field(default_factory=list)


def _family_keys_of(
    releases: list[dict[str, object]],
    orgs: dict[str, tuple[str | None, Organization | None]],
    family_keys: FamilyKeys,
) -> dict[str, list[str]]:
    """Each release's family keys: those of its Epoch rows and repos, with and without their organization's words."""
    keys_of: dict[str, list[str]] = {}
    for release in releases:
        keys = set()
        for member in release["_members"]:
            if member.source in ("epoch", "huggingface"):
                keys.add(family_keys(member.name))
                org = orgs[member.member_key][1]
                if org:  # with no organization's words to take off, the key is the one above
                    keys.add(family_keys(member.name, org.words))
        keys_of[release["release_id"]] = sorted(keys)
    return keys_of


def _base_families(members: Iterable[Member], family_keys: FamilyKeys) -> set[str]:
    """The families the members' base models are looked up in when no release holds them (`_set_lineage`)."""
    return {family_keys(base.strip()) for member in members for base in member.base_names}


def _family_index(
    releases: list[dict[str, object]], keys_of: dict[str, list[str]], families: set[str]
) -> dict[str, _Family]:
    """The releases of `families`, oldest first, by family key.

    Only the families a base is looked up in: no lineage reads another, and nearly every other family holds one
    release, each a `_Family` to make and fill (the full-size benchmark: 1,654,239 of 1,668,999 families hold one,
    its bases name 417 of them)."""
    index: dict[str, _Family] = defaultdict(_Family)
    in_families = [release for release in releases if not families.isdisjoint(keys_of[release["release_id"]])]
    # By (date, id) in two stable sorts: of strings, then of numbers, cheaper than one sort of tuples.
    in_families.sort(key=itemgetter("release_id"))
    in_families.sort(key=lambda r: (r["released_on"] or date.max).toordinal())
    for release in in_families:
        born = release["released_on"] or date.max
        for key in keys_of[release["release_id"]]:
            if key in families:
                family = index[key]
                family.releases.append(release)
                family.born.append(born)
    return index


def _set_lineage(
    release: dict[str, object],
    release_of: Mapping[str, dict[str, object]],
    by_family: Mapping[str, _Family],
    family_keys: FamilyKeys,
) -> list[str]:
    """Point a release at its parent: the release holding the Hub base repo or Epoch base model.

    Epoch often names a base that has no row of its own (`LLaMA-7B`, where Epoch has `LLaMA-65B`):
    then the parent is the latest release of that family published before the child.
    Returns what it looked up: `k:<member key>`; `f:<family key>` when the parent is the family's latest
    release on or before the child (only a change to the family up to the child's date matters), `F:` when
    it is the family's oldest or there is none (any change matters). A later build links the release
    again when one of those changes.
    """
    looked_up = []
    for member in release["_members"]:
        for base in member.base_names:
            base = base.strip()
            key = _base_key(member.source, base)
            looked_up.append("k:" + key)
            parent = release_of.get(key)
            how = "names"
            if parent is None:
                family = family_keys(base)
                parent, by_order = _family_parent(by_family.get(family), release)
                looked_up.append(("F:" if by_order else "f:") + family)
                how = "names (by family)"
            if parent is release:
                continue
            release["base_release_id"] = parent["release_id"] if parent else None
            release["base_model"] = parent["name"] if parent else base
            release["lineage_relation"] = member.base_relation if member.base_relation != "quantized" else None
            release["label_reasons"]["lineage"] = (
                f"{member.source} {member.source_key} {how} {base} as its base"
                + ("" if parent else " (not a release in the warehouse)")
            )
            return looked_up
    return looked_up


def _base_key(source: str, base: str) -> str:
    """The member key a base name points at, lower-cased as `release_of` is keyed."""
    return (("hf:" if source == "huggingface" else "epoch:") + base.strip()).lower()


def _family_parent(family: _Family | None, child: dict[str, object]) -> tuple[dict[str, object] | None, bool]:
    """The family's latest release published on or before the child, else its oldest; never the child.
    And whether it came from the family's order alone (its oldest, or nothing), rather than from the
    child's date: a later build must then link the child again after any change to the family.

    Found by bisection: a scan of the family per child was quadratic in the family's size, and a
    popular base's family holds thousands of community releases at Hub scale.
    """
    if family is None:
        return None, True
    releases = family.releases
    end = bisect.bisect_right(family.born, child["released_on"] or date.max)
    for index in (end - 1, end - 2):  # the child itself may be the latest of them
        if index >= 0 and releases[index] is not child:
            return releases[index], False
    return next((release for release in releases[:2] if release is not child), None), True


def _apply_label_overrides(
    overrides: Sequence[Override], release_of: dict[str, dict[str, object]], notes: list[str]
) -> None:
    """Labels and the release date an analyst has set; an unknown member or value is skipped with a note."""
    for override in overrides:
        if override.action != "label":
            continue
        release = release_of.get(override.member_key.lower())
        value = _override_value(override)
        if release is None or value is None:
            notes.append(f"label override skipped: {override.member_key} {override.field}={override.value}")
            continue
        release[override.field] = value
        release["label_reasons"][override.field] = f"override: {override.note or 'set by an analyst'}"


def _override_value(override: Override) -> object | None:
    if override.field == "organization":
        return override.value or None
    if override.field == "released_on":
        try:
            return date.fromisoformat(override.value)
        except ValueError:
            return None
    if override.value not in OVERRIDABLE_LABELS.get(override.field, ()):
        return None
    return override.value == "true" if override.field == "is_notable" else override.value


class _UnionFind:
    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {key: key for key in keys}

    def find(self, key: str) -> str:
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            # the smaller key wins, so the result does not depend on the order of unions
            low, high = sorted((root_a, root_b))
            self.parent[high] = low
