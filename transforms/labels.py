"""Labels of a release, each with the reason it was given: pure functions of the release's members.

Vocabularies are fixed (docs/DATA.md explains each value); every function returns (label, reason).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from datetime import date
from typing import Protocol

from transforms.organizations import Organization, Registry

MODALITIES = ("text", "code", "image", "video", "audio", "multimodal", "other")
QUALITY_TIERS = ("frontier", "near_frontier", "production", "experimental")
LINEAGE_RELATIONS = ("finetune", "adapter", "merge", "continued_pretraining")

FRONTIER_FLOP = 1e25
NEAR_FRONTIER_FLOP = 1e23
NEAR_FRONTIER_DISTANCE = 10.0
"""Near-frontier also means within one order of magnitude of the largest training run of the past year."""

PIPELINE_MODALITY = {
    "text-generation": "text", "text2text-generation": "text", "fill-mask": "text", "summarization": "text",
    "translation": "text", "question-answering": "text", "text-classification": "text",
    "token-classification": "text", "sentence-similarity": "text", "feature-extraction": "text",
    "zero-shot-classification": "text", "table-question-answering": "text",
    "image-text-to-text": "multimodal", "visual-question-answering": "multimodal", "any-to-any": "multimodal",
    "image-to-text": "multimodal", "video-text-to-text": "multimodal", "document-question-answering": "multimodal",
    "audio-text-to-text": "multimodal",
    "text-to-image": "image", "image-to-image": "image", "unconditional-image-generation": "image",
    "text-to-video": "video", "image-to-video": "video", "video-to-video": "video",
    "text-to-speech": "audio", "text-to-audio": "audio", "automatic-speech-recognition": "audio",
    "audio-to-audio": "audio", "audio-classification": "audio", "voice-activity-detection": "audio",
}
CODE_WORDS = re.compile(
    r"(?<!en)(?<!de)coder|codellama|code[-_ ]?llama|codegen|codex|codestral|codet5|codegemma|stable-code|starcoder"
)
"""Name or tag words that make a language model a code model."""
CODE_CUE = "cod"
"""What each of `CODE_WORDS`' words holds. Most names and tags lack it and are not searched: 0.1 instead of 4 us."""

OFFICIAL_ACCESS = ("open weights", "api access", "hosted access")


class MemberFacts(Protocol):
    """The member fields labels read (see transforms.releases.Member)."""

    source: str
    name: str
    organization: str | None
    hf_author: str | None
    domain: str | None
    task: str | None
    pipeline_tag: str | None
    tags: list[str]
    training_compute_flop: float | None
    is_epoch_frontier: bool
    org_categorization: str | None
    is_open_weights: bool
    model_accessibility: str | None


EPOCH_CATEGORY_TYPE = {
    "academia": "academic",
    "government": "government",
    "research collective": "open_source_community",
    "industry": "startup",
}


def label_org_type(members: Sequence[MemberFacts], registry: Registry) -> tuple[str, str, Organization | None]:
    """Registry first, then Epoch's `Organization categorization`, then the Hub namespace."""
    for member in members:
        org = registry.first_known(member.organization) or registry.by_hub_namespace(member.hf_author)
        if org:
            return org.org_type, f"registry: {org.name} is {org.org_type}", org
    for member in members:
        category = (member.org_categorization or "").split(",")[0].strip().lower()
        if category in EPOCH_CATEGORY_TYPE:
            label = EPOCH_CATEGORY_TYPE[category]
            return label, f"Epoch categorizes {member.organization or 'the organization'} as {category}", None
    for member in members:
        if member.hf_author:
            return (
                "open_source_community",
                f"Hub namespace {member.hf_author} is not in the registry: an individual or community account",
                None,
            )
    return "other", "organization unknown to the registry and to Epoch", None


def label_modality(members: Sequence[MemberFacts]) -> tuple[str, str]:
    """Multimodal wins over code, code over text; Epoch's domain, the Hub's pipeline tag, then names."""
    found: dict[str, str] = {}
    for member in members:
        for modality, why in _member_modalities(member):
            found.setdefault(modality, why)
    for modality in ("multimodal", "code", "text", "image", "video", "audio"):
        if modality in found:
            return modality, found[modality]
    return "other", "no domain, pipeline tag or name says which modality"


def _member_modalities(member: MemberFacts) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    name = member.name.lower()
    # Most members hold no cue: it is looked for in the tags joined by a NUL, which it cannot span, and only a member
    # holding it has its words sorted (the reason quotes the first code word of the sorted words).
    if CODE_CUE in name or CODE_CUE in "\x00".join(member.tags).lower():
        code_word = CODE_WORDS.search(" ".join([name, *sorted(set(map(str.lower, member.tags)))]))
        if code_word:
            out.append(("code", f"name or tag says {code_word.group(0)!r}"))
    tasks = [part.strip().lower() for part in (member.task or "").split(",") if part.strip()]
    if tasks and all("code" in task for task in tasks):
        # a language model that also writes code lists code among other tasks; a code model lists only code
        out.append(("code", f"Epoch task {member.task!r}"))
    if member.domain:
        domains = {part.strip().lower() for part in member.domain.split(",")}
        if "multimodal" in domains or ({"language", "vision"} <= domains):
            out.append(("multimodal", f"Epoch domain {member.domain!r}"))
        if "language" in domains:
            out.append(("text", f"Epoch domain {member.domain!r}"))
        if "image generation" in domains:
            out.append(("image", f"Epoch domain {member.domain!r}"))
        if "video" in domains:
            out.append(("video", f"Epoch domain {member.domain!r}"))
        if domains & {"speech", "audio"}:
            out.append(("audio", f"Epoch domain {member.domain!r}"))
    if member.pipeline_tag in PIPELINE_MODALITY:
        out.append((PIPELINE_MODALITY[member.pipeline_tag], f"Hub pipeline_tag {member.pipeline_tag}"))
    else:
        # records without pipeline_tag still carry the task among their tags (the first of them in sorted order)
        task_tag = min((tag for tag in map(str.lower, member.tags) if tag in PIPELINE_MODALITY), default=None)
        if task_tag:
            out.append((PIPELINE_MODALITY[task_tag], f"Hub tag {task_tag}"))
    return out


def label_quality_tier(
    members: Sequence[MemberFacts],
    known_org: Organization | None,
    frontier_compute_of_its_time: float | None,
) -> tuple[str, str]:
    """Frontier, near-frontier, production or experimental, by compute first and provenance after."""
    compute = max((m.training_compute_flop for m in members if m.training_compute_flop), default=None)
    if any(m.is_epoch_frontier for m in members):
        return "frontier", "Epoch flags it as a frontier model"
    if compute and compute >= FRONTIER_FLOP:
        return "frontier", f"training compute {compute:.2g} FLOP >= 1e25"
    if compute and compute >= NEAR_FRONTIER_FLOP:
        return "near_frontier", f"training compute {compute:.2g} FLOP >= 1e23"
    if compute and frontier_compute_of_its_time and compute * NEAR_FRONTIER_DISTANCE >= frontier_compute_of_its_time:
        return (
            "near_frontier",
            f"training compute {compute:.2g} FLOP within 10x of the year's largest ({frontier_compute_of_its_time:.2g})",
        )
    if known_org:
        access = next((m.model_accessibility for m in members if _is_official_access(m)), None)
        if access:
            return "production", f"official release by {known_org.name}, a registry organization ({access})"
    return "experimental", "no frontier-scale compute and not an official open or API release of a known organization"


def _is_official_access(member: MemberFacts) -> bool:
    access = (member.model_accessibility or "").lower()
    return member.is_open_weights or any(access.startswith(kind) for kind in OFFICIAL_ACCESS)


class ComputeFrontier:
    """The largest training compute released in the year up to a given day."""

    def __init__(self, points: Sequence[tuple[date, float]]) -> None:
        ordered = sorted(points)
        self._days = [day.toordinal() for day, _ in ordered]
        self._compute = [compute for _, compute in ordered]
        self._at: dict[date, float | None] = {}

    def at(self, day: date) -> float | None:
        """Remembered per day: a build asks once per release, and releases share a few thousand days."""
        if day not in self._at:
            end = bisect.bisect_right(self._days, day.toordinal())
            start = bisect.bisect_right(self._days, day.toordinal() - 365)
            self._at[day] = max(self._compute[start:end], default=None)
        return self._at[day]


def prominence(is_epoch_notable: bool, tier: str, likes: int) -> float:
    """One number to order releases "most notable first": tier, then Epoch's notability, then likes."""
    tier_weight = {"frontier": 3.0, "near_frontier": 2.0, "production": 1.0, "experimental": 0.0}[tier]
    return tier_weight * 10 + (5.0 if is_epoch_notable else 0.0) + math.log10(1 + max(likes, 0))
