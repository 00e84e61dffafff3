"""Does an arXiv paper announce a named model it introduces or releases? Transparent rules, no ML.

A paper is a model paper when one of its sentences *announces* a *name* whose appositive is a
*model*: "We introduce LLaMA, a collection of foundation language models", "This report
introduces the EXAONE 3.5 instruction-tuned language models", "we report on Kimi k1.5, our latest
multi-modal LLM". The rules, in order:

1. An announcement: `we|this paper|this report ...` + a verb (`introduce`, `present`, `release`,
   `open-source`, `report`, ...) + a name; or a name followed by `, our ... <model noun>` (not at
   the start of a sentence); or `called|named|dubbed <name>` after a model noun, in a sentence
   that says `we` or `our`.
2. A name is a token with a capital letter or a digit (`LLaMA`, `phi-4`, `s1`), optionally followed
   by version-like or capitalised tokens (`Llama 2`, `EXAONE 3.5`, `Kimi k1.5`).
3. After the name, the first head noun decides: a model noun (`model`, `LLM`, `checkpoints`, ...)
   makes it a model; anything else a paper can introduce (`framework`, `method`, `benchmark`,
   `dataset`, `survey`, `tool`, ...) makes it a near miss. A compound such as `model-based` or
   `model-agnostic` is not a model noun.
4. `propose`, `train`, `develop` and `build` are weaker than the other verbs (method papers
   propose named models all the time): they count only when the same sentence says something is
   released (weights, checkpoints, open source, a Hugging Face link).

Evidence is the announcing sentence; weights links are Hugging Face model URLs in the abstract
or comment. Surveys, benchmarks, position and method papers stay unmarked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODEL_NOUN = (
    r"\b(?:(?:language|foundation|base|chat|instruct(?:ion)?|generative|diffusion|multimodal|vision|speech|audio|code|"
    r"embedding|reasoning|reward|world)[\s-])?"
    r"(?:models?|LLMs?|MLLMs?|VLMs?|LMMs?|SLMs?|LMs?|VLAs?|checkpoints?|(?:open[- ]|model )?weights)(?![\w-])"
)
OTHER_NOUN = (
    r"\b(?:frameworks?|methods?|methodology|approach(?:es)?|techniques?|algorithms?|benchmarks?|datasets?|corpus|"
    r"corpora|tools?|toolkits?|library|libraries|platforms?|pipelines?|metrics?|surveys?|reviews?|study|studies|"
    r"converters?|strateg(?:y|ies)|loss|protocols?|evaluations?|leaderboards?|environments?|simulators?|systems?|"
    r"paradigms?|schemes?|mechanisms?|modules?|architectures?|layers?|tasks?|challenges?|competitions?|"
    r"compilers?|games?|agents?|analys[ie]s|regularizers?|optimizers?|objectives?|recipes?|attacks?|theory|"
    r"theories|penalty|penalties|principles?|formulations?|criteri(?:on|a)|concepts?|defen[cs]es?|estimators?|"
    r"tests?|testbeds?|arenas?|collections? of (?:tasks|problems|prompts|data))(?![\w-])"
)
_STRONG_VERB = r"(?:introduc|present|releas|open[- ]sourc|unveil|report|describ|launch|share)"
_WEAK_VERB = r"(?:propos|train|pre-?train|develop|build|buil)"
_VERB = rf"(?:{_STRONG_VERB}|{_WEAK_VERB})"
_TOKEN = r"[A-Za-z0-9][\w.+/-]*[\w+]|[A-Z0-9]"
_NEXT_TOKEN = r"(?:\d[\w.+-]*|[A-Za-z]?\d[\w.+-]*|[A-Z][\w.+-]*)"
_NAME = rf"(?=[\w.+/-]*[A-Z0-9])(?:{_TOKEN})(?: (?:{_NEXT_TOKEN})){{0,3}}"
_NAMES = rf"(?P<names>{_NAME}(?:(?:,\s*|\s+and\s+|,\s+and\s+)(?:the\s+)?{_NAME})*)"
_SUBJECT = r"(?:\bwe|\bthis (?:paper|report|technical report|work|article|note))"
_ANNOUNCE = re.compile(
    rf"(?i:{_SUBJECT}\s+(?:(?:also|further|here|now|then|first|publicly)\s+)?"
    rf"(?P<verb>{_VERB}\w*(?:\s+and\s+{_VERB}\w*)?)"
    rf"(?:\s+(?:on|to the community|publicly))?\s+(?:(?:the|our|of)\s+)*){_NAMES}(?P<rest>.{{0,200}})"
)
_OWNED = re.compile(rf"(?P<names>{_NAME}),\s+our\s+(?P<rest>.{{0,160}})")
_DUBBED = re.compile(rf"(?i:{MODEL_NOUN}[^.;]{{0,80}}?\b(?:called|named|dubbed|termed))\s+(?P<names>{_NAME})(?P<rest>)")
_DUBBED_CUES = ("called", "named", "dubbed", "termed")
"""What `_DUBBED` cannot match without: a sentence lacking it is not scanned for model nouns at every position."""
_OWNED_CUE = ", our "
"""What `_OWNED` cannot match without in squashed text (its `,\\s+our\\s+` is one space each there)."""
_GROUP = r"series|family|suite|collection|herd|line-?up"
_BARE_PHRASE = re.compile(
    r"\s+([a-z][\w-]*(?:\s+[a-z][\w-]*){0,4}?)"
    r"(?=\s*(?:[,.;:()]|$|\s(?:that|which|for|with|to|of|on|in|at|from|by|via|as|is|are|and|trained|based)\b))"
)
"""Lower-case words right after a name, up to punctuation or a joining word: `LZ penalty, ...`."""
_HEAD = re.compile(rf"(?P<model>{MODEL_NOUN})|(?P<other>{OTHER_NOUN})", re.I)
_RELEASE_CUE = re.compile(
    r"\b(?:release[sd]?|open[- ]sourced?|publicly available|open[- ]weights?|weights|checkpoints?|model card)\b"
    r"|huggingface\.co/",
    re.I,
)
_RELEASE_CUES = (
    "release", "open-source", "open source", "publicly available", "weight", "checkpoint", "model card",
    "huggingface.co/",
)
"""What `_RELEASE_CUE` cannot match without, lower-cased (`open[- ]weights?` holds `weight`)."""
_NOT_NAMES = frozenset(
    {"a", "an", "the", "our", "this", "these", "two", "three", "four", "new", "novel", "first", "it", "its", "in",
     "here", "how", "what", "results", "experiments", "evidence", "details", "insights", "findings", "ai", "i",
     "furthermore", "moreover", "overall", "however", "additionally", "finally", "specifically", "notably",
     "importantly", "thus", "therefore", "then", "together", "instead", "second", "third", "lastly", "recently",
     "meanwhile", "consequently", "crucially", "empirically", "experimentally", "hence", "today"}
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_URL_END = ".,;:)]}>'\""
CODE_URL = re.compile(r"https?://(?:www\.)?github\.com/[\w.-]+(?:/[\w.-]+)?", re.I)
HF_URL = re.compile(r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/[\w.-]+(?:/[\w.-]+)?(?:/[\w.-]+)?", re.I)
HF_NOT_MODELS = ("datasets", "spaces", "papers", "docs", "blog", "collections", "learn", "organizations")
_CODE_URL_CUES = ("github.com/",)
_HF_URL_CUES = ("huggingface.co/", "hf.co/")


def _may_match(text: str, cues: tuple[str, ...]) -> bool:
    """False only when a case-insensitive pattern that needs one of the lower-case `cues` cannot match `text`.

    Python's `re` tries a pattern at every character unless it opens with a literal, and these open
    with optional groups or case-insensitive alternatives: `HF_URL` alone took 44 of the 52 us that
    `find_links` spends on an abstract. A substring test of the lower-cased text runs in C. Only for
    ASCII text is it exact: beyond ASCII, case-insensitive matching has equivalences that `lower()`
    does not make (`ſ` matches `s`, `ı` matches `i`), so any other text goes to the pattern.
    """
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(cue in lowered for cue in cues)


@dataclass(frozen=True)
class Links:
    """Code and Hugging Face links written in a paper's abstract or comment."""

    code_urls: tuple[str, ...]
    hf_urls: tuple[str, ...]


@dataclass(frozen=True)
class ModelPaper:
    """The verdict on one paper, with what it rests on."""

    is_model_paper: bool
    announced_models: tuple[str, ...] = ()
    evidence: str | None = None
    weights_links: tuple[str, ...] = ()


def find_links(*texts: str | None) -> Links:
    """GitHub and Hugging Face URLs, in order of appearance, without duplicates or trailing punctuation."""
    joined = "\n".join(text for text in texts if text)
    code = CODE_URL.findall(joined) if _may_match(joined, _CODE_URL_CUES) else []
    hub = HF_URL.findall(joined) if _may_match(joined, _HF_URL_CUES) else []
    return Links(
        tuple(dict.fromkeys(match.rstrip(_URL_END) for match in code)),
        tuple(dict.fromkeys(_absolute(match.rstrip(_URL_END)) for match in hub)),
    )


def weights_links(hf_urls: tuple[str, ...]) -> tuple[str, ...]:
    """Hub URLs that point at a model repo (`huggingface.co/<owner>/<name>`), not a dataset, Space or page."""
    found = []
    for url in hf_urls:
        parts = url.split("huggingface.co/", 1)[-1].split("/")
        if len(parts) >= 2 and parts[0].lower() not in HF_NOT_MODELS and parts[1]:
            found.append(url)
    return tuple(found)


def classify_paper(
    title: str | None, abstract: str | None, comment: str | None = None, *, links: Links | None = None
) -> ModelPaper:
    """Whether the paper announces a named model, which names, the sentence that says so and weights links.

    `links` is `find_links(abstract, comment)` when the caller has it already (a paper's facts need both):
    no link holds whitespace, so squashing the texts does not change them."""
    title_text = _squash(title)
    abstract_text = _squash(abstract)
    comment_text = _squash(comment)
    weights = weights_links((links if links is not None else find_links(abstract_text, comment_text)).hf_urls)
    text = f"{abstract_text} {comment_text}"
    releases = bool(weights) or (_may_match(text, _RELEASE_CUES) and bool(_RELEASE_CUE.search(text)))
    sentences = [*_SENTENCE.split(abstract_text), title_text]
    for number, sentence in enumerate(sentences):
        following = sentences[number + 1] if number + 1 < len(sentences) - 1 else ""
        names = _announced_names(sentence, releases, following)
        if names:
            evidence = sentence if len(sentence) <= 500 else sentence[:497] + "..."
            return ModelPaper(True, names, evidence, weights)
    return ModelPaper(False, (), None, weights)


def _announced_names(sentence: str, releases: bool, following: str) -> tuple[str, ...]:
    for pattern in (_ANNOUNCE, _OWNED, _DUBBED):
        if (pattern is _OWNED and _OWNED_CUE not in sentence) or (
            pattern is _DUBBED and not _may_match(sentence, _DUBBED_CUES)
        ):
            continue  # cannot match; skipping saves most of the time a paper takes
        for match in pattern.finditer(sentence):
            verb = match.groupdict().get("verb") or ""
            weak = bool(verb) and not re.search(_STRONG_VERB, verb, re.I)
            if weak and not (releases and _RELEASE_CUE.search(sentence)):
                continue
            if pattern is _OWNED and not sentence[: match.start()].strip():
                continue  # "Overall, our results ...": a sentence-initial word before ", our" is not a name
            if pattern is _DUBBED and not re.search(rf"{_SUBJECT}|\bour\b", sentence, re.I):
                continue
            names = _names(match["names"])
            if names and _head_is_model(names[-1], match["rest"], following, pattern is _DUBBED):
                return names
    return ()


def _names(text: str) -> tuple[str, ...]:
    """The names of a `Foo, Bar and Baz` list; sentence openers (`Furthermore`) and articles are not names."""
    names = []
    for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", text):
        part = re.sub(r"^the\s+", "", part.strip(), flags=re.I).strip(" .:;")
        if len(part) < 2 or part.split(" ")[0].lower() in _NOT_NAMES:
            return ()
        names.append(part)
    return tuple(names)


def _head_is_model(last_name: str, rest: str, following: str, dubbed: bool) -> bool:
    """The first head noun after the name (or its own last word) says what the name is."""
    if dubbed:
        return True
    own_last = last_name.split(" ")[-1]
    if re.fullmatch(_GROUP, own_last, re.I) or re.match(rf"\s*(?:{_GROUP})\b", rest, re.I):
        # "the Qwen2.5-Coder series, ... This series includes six models": a family is a model if models follow.
        return bool(re.search(MODEL_NOUN, f"{rest} {following}", re.I))
    if re.fullmatch(OTHER_NOUN, own_last, re.I):
        return False
    if rest.startswith(":") and not re.match(r":\s+(?:a|an|the|our)\b", rest, re.I):
        return False  # "We introduce FedPref: frozen language models propose ...": a colon starts an explanation
    phrase = _BARE_PHRASE.match(rest)
    if phrase:
        # "the LZ penalty, ...", "EXAONE 3.5 instruction-tuned language models": the phrase's last word is its head.
        return bool(re.search(rf"{MODEL_NOUN}$", phrase[1], re.I))
    head = _HEAD.search(rest.split(". ")[0])
    if head:
        return bool(head["model"])
    return bool(re.fullmatch(MODEL_NOUN, own_last, re.I))


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _absolute(url: str) -> str:
    """`hf.co/x/y` and `huggingface.co/x/y` as `https://huggingface.co/x/y`."""
    return re.sub(r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/", "https://huggingface.co/", url, flags=re.I)
