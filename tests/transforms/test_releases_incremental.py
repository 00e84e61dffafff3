"""A build that reuses the previous build's rows gives the same rows as a build from nothing.

Each case builds once, then again after a change, with the first build's digests: the rows it kept
plus the rows it wrote must be exactly what a build without them gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, replace

import pytest

from transforms.organizations import Registry
from transforms.releases import Member, ReleaseBuild, StoredRelease, build_releases

from .test_releases import epoch, hub, registry  # noqa: F401  (the registry fixture)

RULES = "rules under test"


def digested(members: list[Member]) -> list[Member]:
    """Members with a content digest, as `transforms.build_releases.read_members` gives them."""
    return [replace(m, content_digest=hash(repr(astuple(replace(m, content_digest=None))))) for m in members]


def before() -> list[Member]:
    return [
        epoch("LLaMA-65B", "Meta AI", "2023-02-24"),
        epoch("Vicuna-13B v0", "LMSYS", "2023-03-30", base_names=["LLaMA-13B"], base_relation="finetune"),
        hub("meta-llama/Llama-2-7b-hf", "2023-07-18", likes=50),
        hub("meta-llama/Llama-2-13b-hf", "2023-07-18", likes=20),
        hub("someone/llama-2-7b-alpaca", "2023-08-01", base_names=["meta-llama/Llama-2-7b-hf"], base_relation="finetune"),
        epoch("Small-1B", "Org A", "2023-01-10", training_compute_flop=2e22),
        epoch("Mid-7B", "Org A", "2023-06-01", training_compute_flop=3e22),
        hub("lab-x/paper-model", "2023-09-20", arxiv_ids=["2309.00001"]),
    ]


def with_likes(members: list[Member], key: str, likes: int) -> list[Member]:
    return [replace(m, likes=likes) if m.member_key == key else m for m in members]


CHANGES: dict[str, Callable[[list[Member]], list[Member]]] = {
    "nothing": lambda members: members,
    "a new size joins a family": lambda members: [*members, hub("meta-llama/Llama-2-70b-hf", "2023-07-19")],
    "likes change": lambda members: with_likes(members, "hf:meta-llama/Llama-2-7b-hf", 60),
    "likes change which repo names the release": lambda members: with_likes(members, "hf:meta-llama/Llama-2-13b-hf", 500),
    # paper-model's own record is unchanged, but the paper it claimed goes to an earlier repo's release
    "an earlier repo claims the paper": lambda members: [
        *members, hub("lab-y/first-model", "2023-08-01", arxiv_ids=["2309.00001"])
    ],
    # Vicuna's members stay as they were; its base now has a row of its own, in a release with a new id
    "a child's base gets a row of its own": lambda members: [*members, epoch("LLaMA-13B", "Meta AI", "2023-02-24")],
    # Mid-7B was within 10x of the year's largest run; a far larger one moves the frontier away from it
    "a larger training run moves the frontier": lambda members: [
        *members, epoch("Huge-1T", "Org B", "2023-05-01", training_compute_flop=9e24)
    ],
}


def stored_from(build: ReleaseBuild) -> dict[str, StoredRelease]:
    """What `transforms.build_releases.stored_releases` reads back of a build that wrote every release."""
    names = {release["release_id"]: release["name"] for release in build.releases}
    return {release_id: StoredRelease(cluster, row, names[release_id]) for release_id, cluster, row in build.digests}


def rebuilt(first: ReleaseBuild, second: ReleaseBuild) -> tuple[list[dict], list[dict]]:
    """The release and member rows a warehouse holds after writing `second` over `first`."""
    old = {release["release_id"]: release for release in first.releases}
    releases = [old[release_id] for release_id in second.kept_rows] + second.releases
    members = [row for row in first.members if row["release_id"] in second.kept_members] + second.members
    return (sorted(releases, key=lambda r: r["release_id"]),
            sorted(members, key=lambda r: (r["release_id"], r["member_key"])))


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_rows_kept_and_written_equal_a_build_from_nothing(registry: Registry, change: str) -> None:
    first = build_releases(digested(before()), registry, rules=RULES)
    stored = stored_from(first)
    after = digested(CHANGES[change](before()))
    second = build_releases(after, registry, previous=stored, rules=RULES)
    scratch = build_releases(after, registry, rules=RULES)
    assert rebuilt(first, second) == (scratch.releases, scratch.members)
    assert second.digests == scratch.digests
    assert len(second.releases) < len(scratch.releases), "a change this small rewrites only the releases it touches"
    if change == "nothing":
        assert (second.releases, second.members) == ([], [])


def test_a_release_whose_base_changed_is_rewritten_with_its_members_kept(registry: Registry) -> None:
    first = build_releases(digested(before()), registry, rules=RULES)
    stored = stored_from(first)
    second = build_releases(digested(CHANGES["a child's base gets a row of its own"](before())), registry,
                            previous=stored, rules=RULES)
    vicuna = next(row["release_id"] for row in first.members if row["member_key"] == "epoch:Vicuna-13B v0")
    assert vicuna in second.kept_members and vicuna not in second.kept_rows
    assert "names LLaMA-13B" in next(r["label_reasons"] for r in second.releases if r["release_id"] == vicuna)


def test_other_rules_reuse_nothing(registry: Registry) -> None:
    first = build_releases(digested(before()), registry, rules=RULES)
    stored = stored_from(first)
    second = build_releases(digested(before()), registry, previous=stored, rules="other rules")
    assert (second.kept_rows, len(second.releases)) == (set(), len(first.releases))


def test_members_without_a_content_digest_are_never_reused(registry: Registry) -> None:
    first = build_releases(before(), registry, rules=RULES)
    assert {cluster for _, cluster, _ in first.digests} == {None}
    # the stored digests are None as well, so they compare equal: the guard, not the comparison, must refuse them
    second = build_releases(before(), registry, previous=stored_from(first), rules=RULES)
    assert second.kept_rows == second.kept_members == set() and second.releases == first.releases
    assert second.members == first.members
