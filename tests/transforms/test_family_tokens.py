"""`name_tokens`, `display_family` and `is_conversion` give what their plainer forms gave.

The references below are those forms: `name_tokens` as the patterns wrote it (split on `[\\s\\-_/:,]+`, then
each piece through the version and letter-digit patterns and the dropped-word test); `display_family` testing
every word for a size; `is_conversion` testing every tag. Names: every model name of the fixtures (Epoch's and
the Hub's), their upper-cased copies, and generated names mixing separators, digits and letters that Unicode
treats specially: other spaces and digits, `İ`, `ı`, `ſ`, the Kelvin sign. Tags: every tag list of the Hub
fixtures and crafted ones holding the tests' words where they must not count.
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
    _WORDS_AND_SEPARATORS,
    CONVERSION_LIBRARIES,
    CONVERSION_MARKERS,
    FORMAT_WORDS,
    SIZE_TOKEN,
    VARIANT_WORDS,
    _is_dropped,
    display_family,
    is_conversion,
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


def reference_display_family(name: str) -> str:
    """`display_family` testing every word for a size."""
    pieces = _WORDS_AND_SEPARATORS.split(_PARENTHESES.sub(" ", name.split("/")[-1]).strip())
    kept: list[str] = []
    for index in range(0, len(pieces), 2):
        word = pieces[index]
        if not word or _is_dropped(word.lower().strip(".")):
            continue
        if kept:
            kept.append(pieces[index - 1])
        kept.append(word)
    return "".join(kept).strip() or name.strip()


def test_display_family_equals_the_word_by_word_test_on_every_name() -> None:
    assert display_family("Llama 2-70B (chat)") == "Llama 2"
    assert [name for name in names() if display_family(name) != reference_display_family(name)] == []


def reference_is_conversion(repo_id: str, tags: list[str], library_name: str | None) -> str | None:
    """`is_conversion` testing every tag."""
    if any(tag.startswith("base_model:quantized:") for tag in tags):
        return "quantized re-upload (base_model:quantized relation)"
    if library_name and library_name.lower() in CONVERSION_LIBRARIES:
        return f"{library_name} conversion"
    lowered_tags = {tag.lower() for tag in tags}
    for marker in ("gguf", "gptq", "awq", "exl2", "mlx"):
        if marker in lowered_tags:
            return f"{marker.upper()} conversion (tag {marker})"
    match = CONVERSION_MARKERS.search(repo_id.split("/")[-1])
    return f"{match.group(1).upper()} conversion (name)" if match else None


CRAFTED_TAGS = [
    [], ["GGUF"], ["AWQ", "gptq"], ["gguf-my-repo"], ["not-gguf"], ["mlx-community"], ["Exl2"],
    ["license:mit", "base_model:quantized:meta-llama/Llama-2-7b-hf"], ["x base_model:quantized:y"],
    ["base_model:finetune:a/b", "base_model:quantized"], ["a\x00base_model:quantized:b"], ["g\x00guf"], ["gg", "uf"],
    ["\u0130gguf"], ["MLX", "base_model:adapter:a/b"],
]


def test_is_conversion_equals_the_tag_by_tag_test_on_every_tag_list() -> None:
    cases = [(model["id"], model.get("tags") or [], model.get("library_name"))
             for path in sorted((FIXTURES / "huggingface").glob("*.json"))
             for model in json.loads(path.read_text("utf-8")) if "id" in model]
    assert sum(bool(tags) for _, tags, _ in cases) > 40
    cases += [(repo, tags, library) for tags in CRAFTED_TAGS for repo in ("org/model-7b", "org/model-Q4_K_M")
              for library in (None, "transformers", "MLX")]
    found = {is_conversion(*case) for case in cases}
    assert {"quantized re-upload (base_model:quantized relation)", "GGUF conversion (tag gguf)", None} <= found
    assert [case for case in cases if is_conversion(*case) != reference_is_conversion(*case)] == []
