"""The release rules on small hand-made inputs: what merges, what stays apart, what is never a release."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from transforms.family import FamilyKeys, family_key
from transforms.labels import label_modality
from transforms.organizations import Registry, load_registry
from transforms.releases import Member, Override, ReleaseOptions, _priority, build_releases

FIXTURES = Path(__file__).parents[1] / "fixtures"
REGISTRY_CSV = """org_id,name,org_type,aliases,hf_namespaces
meta,Meta AI,big_tech,Meta,meta-llama|facebook
anthropic,Anthropic,ai_lab,,
microsoft,Microsoft,big_tech,Microsoft Research,microsoft
stanford,Stanford University,academic,,tatsu-lab
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("registry") / "organizations.csv"
    path.write_text(REGISTRY_CSV, encoding="utf-8")
    return load_registry(path)


def epoch(name: str, org: str, day: str, **extra: object) -> Member:
    return Member(f"epoch:{name}", "epoch", name, name, organization=org, released_on=date.fromisoformat(day), **extra)


def hub(repo: str, day: str, **extra: object) -> Member:
    return Member(f"hf:{repo}", "huggingface", repo, repo, hf_author=repo.split("/")[0],
                  released_on=date.fromisoformat(day), is_open_weights=True, **extra)


def releases_by_member(members: list[Member], registry: Registry, **kwargs: object) -> dict[str, dict]:
    build = build_releases(members, registry, **kwargs)
    release_of = {row["member_key"]: row["release_id"] for row in build.members}
    by_id = {release["release_id"]: release for release in build.releases}
    return {key: by_id[release_id] for key, release_id in release_of.items()}


def test_a_builds_remembered_family_keys_equal_family_key_whatever_order_they_are_asked_in() -> None:
    """Tokens are remembered by name, the organization's words taken off per call: never one call's for another's."""
    names = [row["Model"] for row in csv.DictReader((FIXTURES / "epoch" / "notable_ai_models_snapshot_2026-07-19.csv").open(encoding="utf-8"))]
    names += [model["id"] for model in json.loads((FIXTURES / "huggingface" / "api_models_page_2026-09-28_from_slice.json").read_text("utf-8"))]
    # each name with no words, then with its own first word as its organization's (`Meta` of `Meta-Llama-3`)
    asked = [(name, words) for name in names for words in (frozenset(), frozenset(family_key(name).split()[:1]))]
    stripped = sum(family_key(name, words) != family_key(name) for name, words in asked)
    assert len(names) > 500 and stripped > 300
    for order in (asked, asked[::-1]):
        keys = FamilyKeys()
        assert [keys(name, words) for name, words in order] == [family_key(name, words) for name, words in order]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Claude 3 Opus", "Claude 3.5 Sonnet"),
        ("Phi-2", "Phi-3"),
        ("Llama 2-7B", "Code Llama-7B"),
        ("Vicuna-13B v0", "Vicuna-13B-v1.5"),
    ],
)
def test_near_miss_names_are_different_families(a: str, b: str) -> None:
    assert family_key(a) != family_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Llama-2-13b-chat-hf", "Llama 2-70B"), ("LLaMA-65B", "LLaMA-7B"), ("GPT-4 (Mar 2023)", "GPT-4"), ("Mixtral 8x7B", "Mixtral-8x7B-Instruct-v0.1")],
)
def test_size_and_variant_names_are_one_family(a: str, b: str) -> None:
    assert family_key(a) == family_key(b)


def test_near_misses_published_the_same_week_stay_apart(registry: Registry) -> None:
    members = [
        epoch("Claude 3 Opus", "Anthropic", "2024-03-04"),
        epoch("Claude 3.5 Sonnet", "Anthropic", "2024-03-06"),
        epoch("Llama 2-7B", "Meta AI", "2023-07-18"),
        epoch("Code Llama-7B", "Meta AI", "2023-07-20"),
    ]
    assert len(build_releases(members, registry).releases) == 4


def test_llama_2_is_one_release_with_its_sizes_and_chat_repos_as_members(registry: Registry) -> None:
    members = [
        epoch("Llama 2-7B", "Meta AI", "2023-07-18", in_epoch_notable=True, arxiv_ids=["2307.09288"]),
        epoch("Llama 2-70B", "Meta AI", "2023-07-18"),
        hub("meta-llama/Llama-2-7b-hf", "2023-07-13", arxiv_ids=["2307.09288"], likes=2000),
        hub("meta-llama/Llama-2-13b-chat-hf", "2023-07-14", likes=1000),
        hub("meta-llama/Llama-2-70b-hf", "2023-07-14"),
    ]
    build = build_releases(members, registry)
    assert len(build.releases) == 1
    release = build.releases[0]
    assert release["name"] == "Llama 2"
    assert release["organization"] == "Meta AI" and release["org_type"] == "big_tech"
    assert release["released_on"] == date(2023, 7, 13), "the earliest public date across sources"
    assert release["epoch_published_on"] == date(2023, 7, 18) and release["hf_created_on"] == date(2023, 7, 13)
    assert release["arxiv_ids"] == ["2307.09288"]
    assert sorted(row["role"] for row in build.members) == ["main", "variant", "variant", "variant", "variant"]


def test_a_releases_row_takes_each_sum_least_and_most_over_all_its_members(registry: Registry) -> None:
    """No column is read off the main member or the first of a source: each extreme is held by a later member."""
    seen = {"first_seen_at": 300, "last_seen_at": 500}
    members = [
        epoch("Llama 2-7B", "Meta AI", "2023-07-20", in_epoch_notable=True, parameters=7_000_000_000,
              training_compute_flop=8.4e22, **seen),
        epoch("Llama 2-70B", "Meta AI", "2023-07-18", parameters=70_000_000_000, training_compute_flop=8.1e23,
              first_seen_at=100, last_seen_at=900),
        epoch("Llama 2-13B", "Meta AI", "2023-07-19", **seen),
        hub("meta-llama/Llama-2-7b-hf", "2023-07-16", likes=2000, open_llm_v1_average=50.0, **seen),
        hub("meta-llama/Llama-2-70b-hf", "2023-07-13", likes=5, open_llm_v1_average=60.0, **seen),
    ]
    assert sorted(members, key=_priority) == members, "the order the release reads its members in"
    build = build_releases(members, registry)
    assert len(build.releases) == 1
    release = build.releases[0]
    assert (release["released_on"], release["epoch_published_on"], release["hf_created_on"]) == (
        date(2023, 7, 13), date(2023, 7, 18), date(2023, 7, 13))
    assert (release["parameters"], release["training_compute_flop"]) == (70_000_000_000, 8.1e23)
    assert (release["hub_likes"], release["open_llm_v1_average"], release["open_llm_v2_average"]) == (2005, 60.0, None)
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert (release["first_seen_at"], release["updated_at"]) == (moment + timedelta(microseconds=100),
                                                                 moment + timedelta(microseconds=900))
    assert release["epoch_names"] == ["Llama 2-13B", "Llama 2-70B", "Llama 2-7B"]
    assert release["hf_repo_ids"] == ["meta-llama/Llama-2-70b-hf", "meta-llama/Llama-2-7b-hf"]
    assert release["sources"] == ["epoch", "huggingface"] and release["is_open_weights"] is True


def test_variants_more_than_14_days_apart_are_separate_releases(registry: Registry) -> None:
    members = [epoch("Code Llama-7B", "Meta AI", "2023-08-14"), epoch("Code Llama-70B", "Meta AI", "2024-01-29")]
    assert len(build_releases(members, registry).releases) == 2


@pytest.mark.parametrize(
    ("repo", "extra"),
    [
        ("TheBloke/Llama-2-7B-GGUF", {}),
        ("someone/Llama-2-7b-hf-awq", {}),
        ("mlx-community/Llama-2-7b-mlx", {"library_name": "mlx"}),
        ("someone/llama2-q", {"tags": ["base_model:quantized:meta-llama/Llama-2-7b-hf"], "base_relation": "quantized"}),
    ],
)
def test_quantized_or_converted_reupload_is_not_a_release(registry: Registry, repo: str, extra: dict) -> None:
    build = build_releases([hub(repo, "2023-07-20", base_names=["meta-llama/Llama-2-7b-hf"], **extra)], registry)
    assert build.releases == []
    assert build.exclusions[0]["member_key"] == f"hf:{repo}"
    assert "conversion" in build.exclusions[0]["reason"] or "quantized" in build.exclusions[0]["reason"]


def test_adapters_and_merges_are_excluded_unless_notable_or_switched_on(registry: Registry) -> None:
    adapter = hub("someone/lora", "2023-07-20", base_names=["meta-llama/Llama-2-7b-hf"], base_relation="adapter", likes=3)
    famous_adapter = hub("someone/famous-lora", "2023-07-20", base_names=["x/y"], base_relation="adapter", likes=500)
    merge = hub("someone/merge", "2023-07-20", base_names=["x/y"], base_relation="merge")
    assert len(build_releases([adapter, famous_adapter, merge], registry).releases) == 1
    with_merges = build_releases([merge], registry, options=ReleaseOptions(include_merges=True))
    assert len(with_merges.releases) == 1


def test_a_cited_paper_does_not_merge_community_finetunes_into_their_base(registry: Registry) -> None:
    members = [
        hub("meta-llama/Llama-2-7b-hf", "2023-07-18", arxiv_ids=["2307.09288", "1910.09700"]),
        hub("lmsys/vicuna-7b-v1.5", "2023-08-01", arxiv_ids=["2307.09288"], base_names=["meta-llama/Llama-2-7b-hf"],
            base_relation="finetune"),
        hub("alice/model-a", "2023-08-02", arxiv_ids=["1910.09700"]),
        hub("bob/model-b", "2023-08-03", arxiv_ids=["1910.09700"]),
    ]
    by_member = releases_by_member(members, registry)
    assert len({r["release_id"] for r in by_member.values()}) == 4
    vicuna = by_member["hf:lmsys/vicuna-7b-v1.5"]
    assert vicuna["base_release_id"] == by_member["hf:meta-llama/Llama-2-7b-hf"]["release_id"]
    assert vicuna["lineage_relation"] == "finetune"
    assert vicuna["arxiv_ids"] == [] and by_member["hf:meta-llama/Llama-2-7b-hf"]["arxiv_ids"] == ["2307.09288"]


def test_epoch_base_model_gives_lineage_across_releases(registry: Registry) -> None:
    members = [
        epoch("LLaMA-7B", "Meta AI", "2023-02-24"),
        epoch("Alpaca", "Stanford University", "2023-03-13", base_names=["LLaMA-7B"], base_relation="finetune"),
    ]
    by_member = releases_by_member(members, registry)
    alpaca = by_member["epoch:Alpaca"]
    assert alpaca["base_model"] == "LLaMA-7B" and alpaca["org_type"] == "academic"
    assert alpaca["base_release_id"] == by_member["epoch:LLaMA-7B"]["release_id"]


def test_papers_and_catalog_entries_join_the_release_they_name(registry: Registry) -> None:
    members = [
        epoch("LLaMA-65B", "Meta AI", "2023-02-24", arxiv_ids=["2302.13971"], in_epoch_notable=True),
        Member("arxiv:2302.13971", "arxiv", "2302.13971", "LLaMA", released_on=date(2023, 2, 27),
               arxiv_ids=["2302.13971"]),
        Member("pwc:llama", "paperswithcode", "llama", "LLaMA", arxiv_ids=["2302.13971"],
               evidence=["paperswithcode"], can_stand_alone=False),
        Member("pwc:orphan", "paperswithcode", "orphan", "Some paper", can_stand_alone=False),
    ]
    build = build_releases(members, registry)
    assert len(build.releases) == 1
    release = build.releases[0]
    assert release["sources"] == ["epoch", "arxiv", "paperswithcode"]
    assert release["has_evaluation"] and release["evaluation_evidence"] == ["paperswithcode"]
    assert release["arxiv_published_on"] == date(2023, 2, 27) and release["released_on"] == date(2023, 2, 24)


def test_labels_stay_in_their_vocabularies_and_every_label_has_a_reason(registry: Registry) -> None:
    members = [
        epoch("GPT-4", "OpenAI", "2023-03-15", training_compute_flop=2.1e25, domain="Multimodal,Language,Vision"),
        epoch("StarCoder", "Hugging Face,ServiceNow", "2023-05-09", task="Code generation", org_categorization="Industry"),
        hub("alice/tiny-chat", "2023-05-10", pipeline_tag="text-generation"),
        epoch("Stable Diffusion", "Stability AI", "2022-08-22", domain="Image generation"),
    ]
    build = build_releases(members, registry)
    labels = {r["name"]: (r["org_type"], r["modality"], r["quality_tier"]) for r in build.releases}
    assert labels == {
        "GPT-4": ("other", "multimodal", "frontier"),
        "StarCoder": ("startup", "code", "experimental"),
        "alice/tiny-chat": ("open_source_community", "text", "experimental"),
        "Stable Diffusion": ("other", "image", "experimental"),
    }
    for release in build.releases:
        reasons = json.loads(release["label_reasons"])
        assert all(reasons[label] for label in ("org_type", "modality", "quality_tier"))


@pytest.mark.parametrize(
    ("tags", "pipeline_tag", "expected"),
    [
        # the code word of a tag whatever its case; of two, the first in the tags' sorted order
        (["transformers", "base_model:bigcode/StarCoder2-3B"], "text-generation", ("code", "name or tag says 'starcoder'")),
        (["StarCoder", "CodeGen"], None, ("code", "name or tag says 'codegen'")),
        # no pipeline tag: the first task tag in sorted order, lower-cased
        (["text-to-image", "Text-Generation", "diffusers"], None, ("text", "Hub tag text-generation")),
        # the cue without a code word: an encoder and a decoder write no code
        (["Encoder", "decoder"], None, ("other", "no domain, pipeline tag or name says which modality")),
    ],
)
def test_a_repos_modality_comes_from_its_tags_when_its_name_says_nothing(
    tags: list[str], pipeline_tag: str | None, expected: tuple[str, str]
) -> None:
    assert label_modality([hub("acme/foo-3b", "2024-01-01", tags=tags, pipeline_tag=pipeline_tag)]) == expected


def test_notability_by_likes_tier_or_epoch(registry: Registry) -> None:
    members = [
        hub("alice/popular", "2024-01-01", likes=150),
        hub("bob/quiet", "2024-01-01", likes=3),
        epoch("Claude", "Anthropic", "2023-03-14", in_epoch_notable=True),
    ]
    by_member = releases_by_member(members, registry)
    assert by_member["hf:alice/popular"]["is_notable"] and "150 Hub likes" in by_member["hf:alice/popular"]["notability_reason"]
    assert not by_member["hf:bob/quiet"]["is_notable"]
    assert by_member["epoch:Claude"]["is_notable"]


def test_overrides_merge_split_and_relabel(registry: Registry) -> None:
    members = [
        epoch("Llama 2-7B", "Meta AI", "2023-07-18"),
        epoch("Llama 2-70B", "Meta AI", "2023-07-18"),
        epoch("Alpaca", "Stanford University", "2023-03-13"),
        epoch("Alpaca-LoRA", "Stanford University", "2023-03-20"),
    ]
    overrides = [
        Override("split", "epoch:Llama 2-70B"),
        Override("merge", "epoch:Alpaca", other_member_key="epoch:Alpaca-LoRA"),
        Override("label", "epoch:Alpaca", field="org_type", value="open_source_community", note="checked by hand"),
        Override("label", "epoch:Nope", field="org_type", value="academic"),
    ]
    build = build_releases(members, registry, overrides)
    by_member = {row["member_key"]: row["release_id"] for row in build.members}
    assert by_member["epoch:Llama 2-7B"] != by_member["epoch:Llama 2-70B"]
    assert by_member["epoch:Alpaca"] == by_member["epoch:Alpaca-LoRA"]
    alpaca = next(r for r in build.releases if r["release_id"] == by_member["epoch:Alpaca"])
    assert alpaca["org_type"] == "open_source_community"
    assert json.loads(alpaca["label_reasons"])["org_type"] == "override: checked by hand"
    assert build.notes == ["label override skipped: epoch:Nope org_type=academic"]


def test_two_builds_from_shuffled_inputs_are_identical(registry: Registry) -> None:
    members = [
        epoch("Llama 2-7B", "Meta AI", "2023-07-18", arxiv_ids=["2307.09288"]),
        hub("meta-llama/Llama-2-7b-hf", "2023-07-13", arxiv_ids=["2307.09288"]),
        hub("lmsys/vicuna-7b-v1.5", "2023-08-01", base_names=["meta-llama/Llama-2-7b-hf"], base_relation="finetune"),
        epoch("Alpaca", "Stanford University", "2023-03-13"),
    ]
    first = build_releases(members, registry)
    second = build_releases(list(reversed(members)), registry)
    assert first.releases == second.releases and first.members == second.members


def test_one_paper_covering_models_months_apart_does_not_merge_them(registry: Registry) -> None:
    members = [
        epoch("Falcon-40B", "TII", "2023-03-15", arxiv_ids=["2311.16867"]),
        epoch("Falcon-180B", "TII", "2023-09-06", arxiv_ids=["2311.16867"]),
        Member("arxiv:2311.16867", "arxiv", "2311.16867", "Falcon", released_on=date(2023, 11, 28),
               arxiv_ids=["2311.16867"]),
    ]
    by_member = releases_by_member(members, registry)
    assert by_member["epoch:Falcon-40B"]["release_id"] != by_member["epoch:Falcon-180B"]["release_id"]
    assert by_member["arxiv:2311.16867"] is by_member["epoch:Falcon-40B"], "the paper joins the earliest model"
    assert by_member["epoch:Falcon-180B"]["released_on"] == date(2023, 9, 6)
    assert by_member["epoch:Falcon-180B"]["arxiv_ids"] == []


def test_a_base_named_by_a_size_without_its_own_row_resolves_to_the_family(registry: Registry) -> None:
    members = [
        epoch("LLaMA-65B", "Meta AI", "2023-02-24"),
        epoch("Vicuna-13B v0", "LMSYS", "2023-03-30", base_names=["LLaMA-13B"], base_relation="finetune"),
    ]
    by_member = releases_by_member(members, registry)
    vicuna = by_member["epoch:Vicuna-13B v0"]
    assert vicuna["base_release_id"] == by_member["epoch:LLaMA-65B"]["release_id"]
    assert "by family" in json.loads(vicuna["label_reasons"])["lineage"]


@pytest.mark.parametrize(
    ("child_name", "child_day", "parent"),
    [
        ("Bar-13B", "2023-02-01", "epoch:Foo-65B"),  # the family's latest release on or before the child
        ("Bar-13B", "2023-03-01", "epoch:Foo-33B"),  # published the same day counts as before
        ("Bar-13B", "2022-12-01", "epoch:Foo-65B"),  # nothing before it: the family's oldest
        ("Bar-13B", None, "epoch:Foo-33B"),  # undated: after every dated release
        ("Foo-Chat", "2023-03-20", "epoch:Foo-33B"),  # the family's latest is the child itself: the one before
        ("Foo-Chat", "2022-12-01", "epoch:Foo-65B"),  # the child is the family's oldest: the next one
    ],
)
def test_a_base_resolved_by_family_is_the_latest_release_of_it_before_the_child(
    registry: Registry, child_name: str, child_day: str | None, parent: str
) -> None:
    """Releases of the family Foo on 1 January and 1 March (apart, so two releases); the child names `Foo-7B`,
    which has no row of its own."""
    child = Member(f"epoch:{child_name}", "epoch", child_name, child_name,
                   organization="Bar Lab" if child_name.startswith("Bar") else "Foo Lab",
                   released_on=date.fromisoformat(child_day) if child_day else None,
                   base_names=["Foo-7B"], base_relation="finetune")
    members = [epoch("Foo-65B", "Foo Lab", "2023-01-01"), epoch("Foo-33B", "Foo Lab", "2023-03-01"), child]
    by_member = releases_by_member(members, registry)
    assert len({release["release_id"] for release in by_member.values()}) == 3
    assert by_member[child.member_key]["base_release_id"] == by_member[parent]["release_id"]


def test_a_base_named_without_its_organizations_word_finds_its_family(registry: Registry) -> None:
    """`Meta-Llama-3-8B` is of the family `llama 3` once Meta's own word is taken off the front: a child naming
    its base `Llama-3-70B` (no row of its own) finds it there."""
    meta = hub("meta-llama/Meta-Llama-3-8B", "2024-04-18")
    child = epoch("Bar-Chat", "Bar Lab", "2024-05-01", base_names=["Llama-3-70B"], base_relation="finetune")
    by_member = releases_by_member([meta, child], registry)
    assert by_member[child.member_key]["base_release_id"] == by_member[meta.member_key]["release_id"]
    assert by_member[child.member_key]["base_model"] == by_member[meta.member_key]["name"]


def test_an_override_corrects_the_release_date_and_says_why(registry: Registry) -> None:
    members = [epoch("Mistral 7B", "Mistral AI", "2023-10-10")]
    overrides = [Override("label", "epoch:Mistral 7B", field="released_on", value="2023-09-27", note="announcement")]
    release = build_releases(members, registry, overrides).releases[0]
    assert release["released_on"] == date(2023, 9, 27) and release["epoch_published_on"] == date(2023, 10, 10)
    assert json.loads(release["label_reasons"])["released_on"] == "override: announcement"
