"""`name_tokens` splits and keeps in C what the patterns it replaced split and kept.

The reference below is `name_tokens` as the patterns wrote it: split on `[\\s\\-_/:,]+`, then each piece
through the version and letter-digit patterns and the dropped-word test. Checked on every model name of
the fixtures (Epoch's and the Hub's), their upper-cased copies, and generated names mixing separators,
digits and letters that Unicode treats specially: other spaces and digits, `İ`, `ı`, `ſ`, the Kelvin sign.
"""

from __future__ import annotations

import csv
import json
import random
import re
from functools import cache
from pathlib import Path

from transforms.family import (
    _LETTER_DIGIT,
    _PARENTHESES,
    _VERSION_PREFIX,
    FORMAT_WORDS,
    SIZE_TOKEN,
    VARIANT_WORDS,
    _is_dropped,
    name_tokens,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SEPARATORS = re.compile(r"[\s\-_/:,]+")
CRAFTED = [
    "Llama-2-13b-chat-hf", "Mixtral-8x7B-Instruct-v0.1", "GPT-4 (Mar 2023)", "qwen2.5-1.5b", "v2-base", "..7b..",
    "Phi\u00a03\u2003mini", "Model\u0660\u0661b", "v\u0661\u0662-chat", "mo\u212adel", "İnstruct-7B", "ıt", "ſmall",
    "a\x1cb\x1fc\x85d", "-leading_and_trailing-", "", "   ", "org/name:with,commas", "E4B-it", "a22b", "8X7B",
]
ALPHABET = "aAbceEiIkKmMtTvVxX0123456789.-_/:, \t()" + "\u00a0\u2003\u0660\u0661\uff11\u212a\u0130\u0131\u017f\x1c\x85"


def reference_tokens(name: str) -> list[str]:
    """`name_tokens` as the patterns wrote it."""
    text = _PARENTHESES.sub(" ", name.split("/")[-1].lower())
    tokens: list[str] = []
    for raw in SEPARATORS.split(text):
        if reference_dropped(raw.strip(".")):
            continue
        for token in _LETTER_DIGIT.sub(" ", _VERSION_PREFIX.sub("", raw.strip("."))).split():
            token = token.strip(".")
            if token and not reference_dropped(token):
                tokens.append(token)
    return tokens


def reference_dropped(token: str) -> bool:
    return bool(SIZE_TOKEN.match(token)) or token in VARIANT_WORDS or token in FORMAT_WORDS


@cache
def real_names() -> tuple[str, ...]:
    """Every model name of the fixtures: Epoch's and the Hub's (read once)."""
    found: list[str] = []
    for path in sorted((FIXTURES / "epoch").glob("*.csv")):
        with path.open(encoding="utf-8") as rows:
            found += [row["Model"] for row in csv.DictReader(rows) if row.get("Model")]
    for path in sorted((FIXTURES / "huggingface").glob("*.json")):
        found += [model["id"] for model in json.loads(path.read_text("utf-8")) if "id" in model]
    with (FIXTURES / "huggingface" / "hub_new_models_hourly_2026-09-28T08-20_to_09-21_slice.csv").open(encoding="utf-8") as rows:
        found += [row["model"] for row in csv.DictReader(rows)]
    return tuple(found)


@cache
def names() -> tuple[str, ...]:
    """The real names, crafted and generated ones, and their upper-cased copies."""
    generate = random.Random(10)
    found = [*real_names(), *CRAFTED]
    found += ["".join(generate.choices(ALPHABET, k=generate.randint(1, 16))) for _ in range(20_000)]
    return (*found, *(name.upper() for name in found))


def test_name_tokens_equal_the_patterns_tokens_on_every_name() -> None:
    assert len(names()) > 40_000
    differ = [name for name in names() if name_tokens(name) != reference_tokens(name)]
    assert differ == []


def test_a_piece_of_letters_alone_that_is_a_variant_or_format_word_is_dropped() -> None:
    assert name_tokens("Meta-Llama-Instruct-GGUF") == ["meta", "llama"]
    assert name_tokens("Mistral Chat AWQ") == ["mistral"]


def test_dropped_words_are_the_patterns_dropped_words() -> None:
    pieces = {piece.strip(".") for name in names() for piece in SEPARATORS.split(name.lower())}
    pieces |= VARIANT_WORDS | FORMAT_WORDS | {"7b", "1.5b", "8x7b", "a22b", "e4b", "32k", "7B", "\u0661b"}
    assert [piece for piece in pieces if _is_dropped(piece) != reference_dropped(piece)] == []
