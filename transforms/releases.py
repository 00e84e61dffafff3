"""From source records to releases: exclude re-uploads, merge what is one release, label each.

Two records are one release when they share an identifier (a Hub repo, an arXiv paper that is not
just cited) or when the same organization published them under one family name within 14 days
(`Llama-2-7b-hf`, `Llama-2-13b-chat-hf`, Epoch's `Llama 2-70B`). Everything here is a pure
function of its inputs, sorted before use, so two rebuilds give identical releases and ids.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
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
ROLE_BY_SOURCE = {"arxiv": "paper", "paperswithcode": "catalog"}
LINEAGE_COLUMNS = ("base_release_id", "base_model", "lineage_relation")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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
) -> ReleaseBuild:
    """Releases, their members and the excluded records, from every candidate member.

    Grouping always runs over every member. A release is then assembled again only if what its row
    is a function of changed: its members' content (`Member.content_digest`), the papers they claim,
    the compute frontier of its date and `rules` (a digest of the code, registry, overrides and
    options), all in its cluster digest; and its lineage, added to make its row digest. Otherwise the
    stored row stands (`previous`, by release id), so the result equals a build without `previous`.
    """
    notes: list[str] = []
    kept: list[Member] = []
    exclusions = []
    for member in sorted(members, key=lambda m: m.member_key):
        reason = exclusion_reason(member, options)
        if reason:
            exclusions.append({"member_key": member.member_key, "source": member.source,
                               "source_key": member.source_key, "reason": reason})
        else:
            kept.append(member)
    by_key = {member.member_key: member for member in kept}
    orgs = {member.member_key: _organization_of(member, registry) for member in kept}

    groups = _UnionFind(by_key)
    split = {o.member_key for o in overrides if o.action == "split"}
    claimed_arxiv = _link_identifiers(kept, by_key, groups, split, options)
    family_keys = FamilyKeys()
    _link_families(kept, orgs, groups, split, options, family_keys)
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
    for arxiv_id, key in claimed_arxiv.items():
        arxiv_of[key].append(arxiv_id)
    previous = previous or {}
    releases: list[dict[str, object]] = []
    member_rows: list[dict[str, object]] = []
    release_of: dict[str, dict[str, object]] = {}
    cluster_digests: dict[str, str | None] = {}
    reused: set[str] = set()
    for cluster in clusters.values():
        if not any(m.can_stand_alone for m in cluster):
            continue
        ordered = sorted(cluster, key=_priority)
        release_id = _release_id(ordered)
        released_on = min((m.released_on for m in ordered if m.released_on), default=None)
        # the frontier of its time counts only for a release with a compute figure (`label_quality_tier`)
        has_compute = any(m.training_compute_flop for m in ordered)
        frontier_of_its_time = frontier.at(released_on) if released_on and has_compute else None
        digest = _cluster_digest(ordered, arxiv_of, frontier_of_its_time, rules)
        cluster_digests[release_id] = digest
        stored = previous.get(release_id)
        if digest is not None and stored is not None and stored.cluster_digest == digest:
            release = _reused(release_id, stored.name, released_on, ordered)
            reused.add(release_id)
        else:
            release = _assemble(release_id, ordered, registry, arxiv_of, frontier, options, family_keys)
            member_rows.extend(_member_rows(release_id, ordered))
        releases.append(release)
        for member in ordered:
            release_of[member.member_key.lower()] = release
    by_family = _releases_by_family(releases, orgs, family_keys)
    for release in releases:
        _set_lineage(release, release_of, by_family, family_keys)
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
            if release_of[member.member_key.lower()] is release:  # not if a key equal but for case went to another
                release_of[member.member_key.lower()] = full
    _apply_label_overrides(overrides, release_of, notes)
    written = [release for release in releases if release["release_id"] not in kept_rows]
    for release in written:
        release["label_reasons"] = json.dumps(release["label_reasons"], sort_keys=True)
        release.pop("_members")
    written.sort(key=lambda r: r["release_id"])
    member_rows.sort(key=lambda r: (r["release_id"], r["member_key"]))
    digests.sort()
    return ReleaseBuild(written, member_rows, exclusions, notes, digests, kept_rows, reused)


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


def _organization_of(member: Member, registry: Registry) -> tuple[str | None, Organization | None]:
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
    kept: list[Member], by_key: dict[str, Member], groups: _UnionFind, split: set[str], options: ReleaseOptions
) -> dict[str, str]:
    """Union records sharing an arXiv paper or naming a Hub repo; returns arXiv id → the member it belongs to.

    One paper can describe models released months apart (the Falcon series report covers Falcon-40B
    of March and Falcon-180B of September): models citing it are one release only within the family
    window, and the paper (with its arXiv record and catalog entries) joins the earliest of them.
    """
    hub_authors: dict[str, set[str]] = defaultdict(set)
    for member in kept:
        if member.source == "huggingface":
            for arxiv_id in member.arxiv_ids:
                hub_authors[arxiv_id].add((member.hf_author or "").lower())
    models: dict[str, list[Member]] = defaultdict(list)
    papers: dict[str, list[str]] = defaultdict(list)
    for member in kept:
        if member.member_key in split:
            continue
        for repo in member.linked_hf_repos:
            target = "hf:" + repo
            if target in by_key and target not in split:
                groups.union(member.member_key, target)
        for arxiv_id in member.arxiv_ids:
            if member.source in ("arxiv", "paperswithcode"):
                papers[arxiv_id].append(member.member_key)
            elif member.source == "huggingface" and (
                member.base_names or len(hub_authors[arxiv_id]) > options.max_hub_authors_per_paper
            ):
                continue  # a derivative's or a much-cited paper: cited, not this repo's own
            else:
                models[arxiv_id].append(member)
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


def _link_families(
    kept: list[Member],
    orgs: dict[str, tuple[str | None, Organization | None]],
    groups: _UnionFind,
    split: set[str],
    options: ReleaseOptions,
    family_keys: FamilyKeys,
) -> None:
    """Union variants: same organization, same family, published within the window of the first."""
    families: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for member in kept:
        org_key, org = orgs[member.member_key]
        if org_key is None or member.released_on is None or member.member_key in split:
            continue
        if member.source not in ("epoch", "huggingface"):
            continue
        words = org.words if org else frozenset()
        families[(org_key, family_keys(member.name, words))].append(member)
    for family_members in families.values():
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
    released_on = min((m.released_on for m in ordered if m.released_on), default=None)
    tier, tier_reason = label_quality_tier(ordered, known_org, frontier.at(released_on) if released_on else None)
    likes = sum(m.likes or 0 for m in ordered)
    notable, notable_reason = _notability(ordered, tier, likes, options)
    evidence = _evaluation_evidence(ordered)
    family = _family_name(ordered, known_org, family_keys)
    # One naming member names the release (Falcon-40B, whatever its repos are called); several make it the
    # family's release (Llama 2).
    names = {m.name for m in _naming_members(ordered)}
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
        "parameters": max((m.parameters for m in ordered if m.parameters), default=None),
        "is_notable": notable,
        "notability_reason": notable_reason,
        "has_evaluation": bool(evidence),
        "evaluation_evidence": evidence,
        "is_open_weights": any(m.is_open_weights for m in ordered),
        "prominence": round(prominence(any(m.in_epoch_notable for m in ordered), tier, likes), 4),
        "hub_likes": likes,
        "training_compute_flop": max((m.training_compute_flop for m in ordered if m.training_compute_flop), default=None),
        "epoch_published_on": min((m.released_on for m in ordered if m.source == "epoch" and m.released_on), default=None),
        "hf_created_on": min((m.released_on for m in ordered if m.source == "huggingface" and m.released_on), default=None),
        "arxiv_published_on": min((m.released_on for m in ordered if m.source == "arxiv" and m.released_on), default=None),
        "hf_repo_ids": sorted(m.source_key for m in ordered if m.source == "huggingface"),
        "arxiv_ids": sorted(arxiv_id for m in ordered for arxiv_id in arxiv_of.get(m.member_key, ())),
        "epoch_names": sorted(m.source_key for m in ordered if m.source == "epoch"),
        "pwc_ids": sorted(m.source_key for m in ordered if m.source == "paperswithcode"),
        "sources": sorted({m.source for m in ordered}, key=lambda s: SOURCE_ORDER.get(s, 9)),
        "label_reasons": {
            "org_type": org_reason,
            "modality": modality_reason,
            "quality_tier": tier_reason,
            "is_notable": notable_reason,
            "has_evaluation": ", ".join(evidence) if evidence else "no model-index, evalResults, Papers With Code results, Epoch benchmark data or Open LLM Leaderboard entry",
        },
        "first_seen_at": _moment(min((m.first_seen_at for m in ordered if m.first_seen_at is not None), default=None)),
        "updated_at": _moment(max((m.last_seen_at for m in ordered if m.last_seen_at is not None), default=None)),
        "open_llm_v1_average": max((m.open_llm_v1_average for m in ordered if m.open_llm_v1_average is not None), default=None),
        "open_llm_v2_average": max((m.open_llm_v2_average for m in ordered if m.open_llm_v2_average is not None), default=None),
        "_members": ordered,
    }


def _moment(microseconds: int | None) -> datetime | None:
    return None if microseconds is None else _EPOCH + timedelta(microseconds=microseconds)


def _evaluation_evidence(ordered: list[Member]) -> list[str]:
    """Every member's evidence, sorted; a leaderboard version's `_merged_or_flagged` mark only when it is all there is.

    Each Hub member marks its Open LLM Leaderboard evidence when every entry of that repo was a merge
    or flagged (the leaderboard warned that merges inflate scores); one unmarked entry among the
    release's members (the chat variant evaluated cleanly, say) lifts the mark for the release.
    """
    evidence = {kind for m in ordered for kind in m.evidence}
    for version in ("v1", "v2"):
        entry, mark = f"open_llm_leaderboard_{version}", f"open_llm_leaderboard_{version}_merged_or_flagged"
        if any(entry in m.evidence and mark not in m.evidence for m in ordered):
            evidence.discard(mark)
    return sorted(evidence)


def _family_name(ordered: list[Member], known_org: Organization | None, family_keys: FamilyKeys) -> str:
    """The family most of the release's models are named after (Phi-3's report also covers Phi-3.5)."""
    named = _naming_members(ordered)
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
    for source in ("epoch", "huggingface", "arxiv"):
        keys = sorted(m.member_key for m in ordered if m.source == source)
        if keys:
            return keys[0]
    return ordered[0].member_key


def _notability(ordered: list[Member], tier: str, likes: int, options: ReleaseOptions) -> tuple[bool, str | None]:
    if any(m.in_epoch_notable for m in ordered):
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


def _releases_by_family(
    releases: list[dict[str, object]],
    orgs: dict[str, tuple[str | None, Organization | None]],
    family_keys: FamilyKeys,
) -> dict[str, _Family]:
    """Releases by the family keys of their Epoch rows and repos, oldest first."""
    index: dict[str, _Family] = defaultdict(_Family)
    for release in sorted(releases, key=lambda r: (r["released_on"] or date.max, r["release_id"])):
        keys = set()
        for member in release["_members"]:
            if member.source in ("epoch", "huggingface"):
                org = orgs[member.member_key][1]
                keys |= {family_keys(member.name), family_keys(member.name, org.words if org else frozenset())}
        for key in sorted(keys):
            index[key].releases.append(release)
            index[key].born.append(release["released_on"] or date.max)
    return index


def _set_lineage(
    release: dict[str, object],
    release_of: dict[str, dict[str, object]],
    by_family: dict[str, _Family],
    family_keys: FamilyKeys,
) -> None:
    """Point a release at its parent: the release holding the Hub base repo or Epoch base model.

    Epoch often names a base that has no row of its own (`LLaMA-7B`, where Epoch has `LLaMA-65B`):
    then the parent is the latest release of that family published before the child.
    """
    for member in release["_members"]:
        for base in member.base_names:
            base = base.strip()
            key = ("hf:" if member.source == "huggingface" else "epoch:") + base
            parent = release_of.get(key.lower())
            how = "names"
            if parent is None:
                parent = _family_parent(by_family.get(family_keys(base)), release)
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
            return


def _family_parent(family: _Family | None, child: dict[str, object]) -> dict[str, object] | None:
    """The family's latest release published on or before the child, else its oldest; never the child.

    Found by bisection: a scan of the family per child was quadratic in the family's size, and a
    popular base's family holds thousands of community releases at Hub scale.
    """
    if family is None:
        return None
    releases = family.releases
    end = bisect.bisect_right(family.born, child["released_on"] or date.max)
    for index in (end - 1, end - 2):  # the child itself may be the latest of them
        if index >= 0 and releases[index] is not child:
            return releases[index]
    return next((release for release in releases[:2] if release is not child), None)


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
