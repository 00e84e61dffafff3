"""Model names to family keys: what stays when sizes, variants and formats are taken away.

`Llama-2-13b-chat-hf` and `Llama 2-70B` are both the family `llama 2`, while `Code Llama-7B` is
`code llama`, `Claude 3.5 Sonnet` is not `Claude 3 Opus`, and `Phi-2` is not `Phi-3`: versions and
distinguishing words are kept, only size, tuning-variant and file-format tokens are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SIZE_TOKEN = re.compile(
    r"^(?:"
    r"\d+(?:\.\d+)?[kmbt]"  # 7b, 1.5b, 350m, 1t
    r"|\d+x\d+(?:\.\d+)?[bm]"  # 8x7b
    r"|a\d+(?:\.\d+)?b"  # a22b: active parameters of a mixture of experts
    r"|e\d+b"  # e4b: effective parameters
    r"|\d+k"  # 32k, 128k: context length
    r")$"
)
VARIANT_WORDS = frozenset(
    {
        "base", "chat", "instruct", "instruction", "it", "hf", "sft", "dpo", "rlhf", "rl", "pretrained", "pt",
        "original", "preview", "hf_format", "release", "final", "model",
        # a first version says nothing more than no version: `Mixtral-8x7B-v0.1` is `Mixtral 8x7B`
        "v0.1", "v1", "v1.0",
        # size words used in place of parameter counts
        "mini", "small", "medium", "large", "tiny", "nano", "micro", "xl", "xxl", "xs", "lite",
    }
)
FORMAT_WORDS = frozenset(
    {
        "gguf", "ggml", "gptq", "awq", "exl2", "mlx", "onnx", "fp16", "bf16", "fp8", "fp32", "int4", "int8",
        "4bit", "8bit", "q4", "q8", "q4_k_m", "q5_k_m", "q8_0", "bnb", "nf4", "quantized", "safetensors",
    }
)
CONVERSION_MARKERS = re.compile(
    r"(?:^|[-_.\s])(gguf|ggml|gptq|awq|exl2|mlx|onnx|\d+bit|bnb|nf4|q[2-8]_k(?:_[sml])?|q[48]_0|int[48]|fp8)(?:$|[-_.\s])",
    re.IGNORECASE,
)
CONVERSION_LIBRARIES = frozenset({"gguf", "mlx", "onnx", "ctranslate2", "openvino", "coreml", "tflite", "exl2"})
CONVERSION_TAGS = ("gguf", "gptq", "awq", "exl2", "mlx")
"""Tags (whatever their case) that make a Hub repo a conversion, in the order they are looked for."""
_QUANTIZED_TAG = "base_model:quantized:"
_PARENTHESES = re.compile(r"\([^)]*\)")
_SEPARATOR_SPACES = str.maketrans("-_/:,", "     ")
_DROPPED_WORDS = VARIANT_WORDS | FORMAT_WORDS
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")
_VERSION_PREFIX = re.compile(r"^v(?=\d)")
_WORDS_AND_SEPARATORS = re.compile(r"([\s\-_]+)")


def name_tokens(name: str) -> list[str]:
    """Lower-case tokens of a name with sizes, variants and formats removed; parenthesised notes dropped.

    Split on runs of whitespace, `-`, `_`, `/`, `:` and `,` in C, for 2.5 million names at Hub scale: those
    separators become spaces and `str.split` splits. A piece of letters alone holds no digit, so no size,
    version or letter-digit boundary: it stays whole unless it is a variant or format word.
    `tests/transforms/test_family_tokens.py` checks both against the patterns they replace (5.7 -> 3.8 us
    a name)."""
    text = _without_parentheses(name.split("/")[-1].lower())
    tokens: list[str] = []
    for raw in text.translate(_SEPARATOR_SPACES).split():
        if raw.isalpha():
            if raw not in _DROPPED_WORDS:
                tokens.append(raw)
            continue
        if _is_dropped(raw.strip(".")):
            continue
        for token in _LETTER_DIGIT.sub(" ", _VERSION_PREFIX.sub("", raw.strip("."))).split():
            token = token.strip(".")
            if token and not _is_dropped(token):
                tokens.append(token)
    return tokens


def _without_org_words(tokens: Sequence[str], org_words: frozenset[str]) -> Sequence[str]:
    """Leading words of the organization's own name go (`Meta-Llama-3` is `llama 3`), so that a Hub repo
    and Epoch's row for the same model meet; the last token always stays."""
    start = 0
    while len(tokens) - start > 1 and tokens[start] in org_words:
        start += 1
    return tokens[start:]


def _without_parentheses(text: str) -> str:
    """Parenthesised notes taken out; most names hold none, and the test for `(` costs less than the search."""
    return _PARENTHESES.sub(" ", text) if "(" in text else text


def _is_dropped(token: str) -> bool:
    return token in _DROPPED_WORDS or SIZE_TOKEN.match(token) is not None


def family_key(name: str, org_words: frozenset[str] = frozenset()) -> str:
    """The family a model name belongs to, for grouping variants: `Llama-2-13b-chat-hf` → `llama 2`."""
    return " ".join(_without_org_words(name_tokens(name), org_words)) or name.strip().lower()


class FamilyKeys:
    """`family_key` for one build, each name split into tokens once.

    A build asks for a name's key up to four times (matching, naming, lineage; with its organization's
    words and without), and splitting the name is what costs. So each name's tokens are remembered,
    joined into one string (a tuple of them would take a few hundred bytes more per name, millions
    of names at Hub scale), and only the organization's words are taken off per call.
    """

    def __init__(self) -> None:
        self._joined: dict[str, str] = {}

    def __call__(self, name: str, org_words: frozenset[str] = frozenset()) -> str:
        joined = self._joined.get(name)
        if joined is None:
            joined = self._joined[name] = " ".join(name_tokens(name))
        if org_words and joined.split(" ", 1)[0] in org_words:
            joined = " ".join(_without_org_words(joined.split(" "), org_words))
        return joined or name.strip().lower()


def display_family(name: str) -> str:
    """The family as people write it, keeping the original spelling: `Llama 2-70B` → `Llama 2`."""
    text = _without_parentheses(name.split("/")[-1]).strip()
    pieces = _WORDS_AND_SEPARATORS.split(text)
    kept: list[str] = []
    for index in range(0, len(pieces), 2):
        word = pieces[index]
        if not word:
            continue
        lowered = word.lower().strip(".")
        # letters alone are no size (each size holds a digit): only the word sets can drop them
        if lowered in _DROPPED_WORDS or (not lowered.isalpha() and SIZE_TOKEN.match(lowered)):
            continue
        if kept:
            kept.append(pieces[index - 1])
        kept.append(word)
    return "".join(kept).strip() or name.strip()


def is_conversion(repo_id: str, tags: list[str], library_name: str | None) -> str | None:
    """Why a Hub repo is a converted or quantized re-upload, or None when it is not one.

    Each tag test runs only where its text appears in the tags joined: one search in C of every tag, where
    most of the 2.5 million repos of the full-size benchmark hold none of them."""
    joined = "\x00".join(tags)
    if _QUANTIZED_TAG in joined and any(tag.startswith(_QUANTIZED_TAG) for tag in tags):
        return "quantized re-upload (base_model:quantized relation)"
    if library_name and library_name.lower() in CONVERSION_LIBRARIES:
        return f"{library_name} conversion"
    lowered = joined.lower()
    markers = [marker for marker in CONVERSION_TAGS if marker in lowered]
    if markers:
        lowered_tags = {tag.lower() for tag in tags}
        for marker in markers:
            if marker in lowered_tags:
                return f"{marker.upper()} conversion (tag {marker})"
    match = CONVERSION_MARKERS.search(repo_id.split("/")[-1])
    if match:
        return f"{match.group(1).upper()} conversion (name)"
    return None
