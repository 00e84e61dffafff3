"""Open LLM Leaderboard evidence on releases: any member's entry counts, best average per version, merges marked."""

from __future__ import annotations

from datetime import date

import pytest

from transforms.organizations import Registry, load_registry
from transforms.releases import Member, build_releases

REGISTRY_CSV = """org_id,name,org_type,aliases,hf_namespaces
meta,Meta AI,big_tech,Meta,meta-llama
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("registry") / "organizations.csv"
    path.write_text(REGISTRY_CSV, encoding="utf-8")
    return load_registry(path)


def hub(repo: str, day: str, **extra: object) -> Member:
    return Member(f"hf:{repo}", "huggingface", repo, repo, hf_author=repo.split("/")[0],
                  released_on=date.fromisoformat(day), is_open_weights=True, **extra)


def only_release(members: list[Member], registry: Registry) -> dict:
    build = build_releases(members, registry)
    assert len(build.releases) == 1, [release["name"] for release in build.releases]
    return build.releases[0]


def test_a_release_whose_chat_variant_alone_was_evaluated_counts_as_evaluated(registry: Registry) -> None:
    base = hub("meta-llama/Llama-2-7b-hf", "2023-07-18", likes=2_000)
    chat = hub("meta-llama/Llama-2-7b-chat-hf", "2023-07-18", likes=500,
               evidence=["open_llm_leaderboard_v1"], open_llm_v1_average=50.74)

    release = only_release([base, chat], registry)

    assert release["has_evaluation"] is True
    assert release["evaluation_evidence"] == ["open_llm_leaderboard_v1"]
    assert release["open_llm_v1_average"] == 50.74 and release["open_llm_v2_average"] is None
    assert "open_llm_leaderboard_v1" in release["label_reasons"]


def test_the_release_keeps_the_best_average_of_its_members_per_version(registry: Registry) -> None:
    members = [
        hub("meta-llama/Meta-Llama-3-8B", "2024-04-18", evidence=["open_llm_leaderboard_v1", "open_llm_leaderboard_v2"],
            open_llm_v1_average=62.6, open_llm_v2_average=13.4),
        hub("meta-llama/Meta-Llama-3-8B-Instruct", "2024-04-18", evidence=["open_llm_leaderboard_v2"],
            open_llm_v2_average=23.9),
    ]

    release = only_release(members, registry)

    assert (release["open_llm_v1_average"], release["open_llm_v2_average"]) == (62.6, 23.9)
    assert release["evaluation_evidence"] == ["open_llm_leaderboard_v1", "open_llm_leaderboard_v2"]


def test_evidence_resting_only_on_merged_or_flagged_entries_is_marked(registry: Registry) -> None:
    merged = hub("someone/wizard-merge-7b", "2024-01-10",
                 evidence=["open_llm_leaderboard_v1", "open_llm_leaderboard_v1_merged_or_flagged"], open_llm_v1_average=76.0)

    release = only_release([merged], registry)

    assert release["has_evaluation"] is True
    assert release["evaluation_evidence"] == ["open_llm_leaderboard_v1", "open_llm_leaderboard_v1_merged_or_flagged"]


def test_one_clean_entry_among_the_members_lifts_the_mark(registry: Registry) -> None:
    members = [
        hub("someone/wizard-7b", "2024-01-10", evidence=["open_llm_leaderboard_v1"], open_llm_v1_average=60.0),
        hub("someone/wizard-7b-dpo", "2024-01-12",
            evidence=["open_llm_leaderboard_v1", "open_llm_leaderboard_v1_merged_or_flagged"], open_llm_v1_average=74.0),
    ]

    release = only_release(members, registry)

    assert release["evaluation_evidence"] == ["open_llm_leaderboard_v1"]
    assert release["open_llm_v1_average"] == 74.0, "the best average is kept; the evidence says which kind it rests on"


def test_a_release_no_leaderboard_evaluated_has_neither_evidence_nor_averages(registry: Registry) -> None:
    release = only_release([hub("someone/new-model", "2025-06-01")], registry)

    assert release["has_evaluation"] is False
    assert (release["open_llm_v1_average"], release["open_llm_v2_average"]) == (None, None)
    assert "Open LLM Leaderboard" in release["label_reasons"]
