"""The cue tests in front of the model-paper patterns skip only texts the patterns cannot match.

`_may_match` spares Python's `re` a scan of every character (`HF_URL`, `CODE_URL`, `_RELEASE_CUE` and
`_DUBBED` open with optional groups or case-insensitive alternatives). It may let through a text the
pattern then rejects, never hold back one it matches: checked on every real title, abstract, comment
and sentence of the fixtures, on their upper-cased copies, and on spellings that case-insensitive
matching equates beyond ASCII.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from transforms.labels import CODE_CUE, CODE_WORDS
from transforms.model_papers import (
    _CODE_URL_CUES,
    _DUBBED,
    _DUBBED_CUES,
    _HF_URL_CUES,
    _RELEASE_CUE,
    _RELEASE_CUES,
    _SENTENCE,
    CODE_URL,
    HF_URL,
    _may_match,
)

from .test_arxiv_facts_prefilter import corpus

CRAFTED = [
    "Weights at HF.CO/Org/Model-7B.",
    "see https://www.HuggingFace.co/org/model",
    "Code: HTTPS://GitHub.com/org/repo.",
    "We release the checkpoints.",
    "The model is Publicly Available under an Open-Weights licence.",
    "See the Model Card.",
    "We train a language model, which we call Foo-7B, on code.",
    "Our vision model, DUBBED Bar, and a reward model termed Baz.",
    # beyond ASCII, `re.I` equates `ſ` with `s`, `ı` and `İ` with `i`, which `lower()` does not
    "We relea\u017fe it.",
    "Weights at huggıngface.co/org/model.",
    "Code at HTTPS://GİTHUB.com/org/repo and weights at huggİngface.co/org/model.",
    "Our vision model, dubbed Ünsal-7B, is open.",
]


@cache
def texts() -> tuple[str, ...]:
    """Every real text the rules read, its sentences, upper-cased copies and the crafted cases (read once)."""
    found = list(CRAFTED)
    for _key, title, abstract, comment, _authors in corpus():
        for text in (title, abstract, comment):
            if text:
                squashed = " ".join(text.split())
                found += [text, squashed, *_SENTENCE.split(squashed)]
    return (*found, *(text.upper() for text in found))


@pytest.mark.parametrize(
    ("pattern", "cues"),
    [(HF_URL, _HF_URL_CUES), (CODE_URL, _CODE_URL_CUES), (_RELEASE_CUE, _RELEASE_CUES), (_DUBBED, _DUBBED_CUES)],
    ids=["HF_URL", "CODE_URL", "_RELEASE_CUE", "_DUBBED"],
)
def test_a_text_the_cues_hold_back_never_matches_the_pattern(pattern: re.Pattern[str], cues: tuple[str, ...]) -> None:
    matched = held_back = 0
    for text in texts():
        if pattern.search(text):
            matched += 1
            assert _may_match(text, cues), f"{pattern.pattern[:40]!r} matches {text[:120]!r}, which the cues hold back"
        elif not _may_match(text, cues):
            held_back += 1
    assert matched >= 4, "the texts must include matches for the check to mean anything"
    assert held_back > 1_000, "the cues must spare the pattern most texts"


def test_every_code_word_holds_the_code_cue() -> None:
    """`_member_modalities` searches for `CODE_WORDS` only in text holding `CODE_CUE`."""
    alternatives = CODE_WORDS.pattern.split("|")
    assert len(alternatives) >= 10
    assert all(CODE_CUE in alternative for alternative in alternatives), alternatives
