"""Synthetic data at Hub scale, in each source's real wire format, for the benchmarks of issue 10.

Everything is deterministic (a seed) and streamed page by page: a page is a pure function of
(seed, page number, sizes), so 2.5 million Hub records never sit in one list, a server can build
any page on demand, and two runs with the same seed produce the same bytes.

Shapes follow the real samples, never guesses:
- Hub: `GET /api/models?sort=createdAt&expand=...` records (`sources.huggingface.EXPAND`), as in
  tests/fixtures/huggingface/ (the 2026-09-28 slice and the constructed fully expanded records);
- arXiv: API query pages (Atom, opensearch totals), as in tests/fixtures/arxiv/api_query_search-*.xml;
- Epoch: CSV with the header of the newest real snapshot (notable_ai_models_snapshot_2026-07-19.csv);
- Papers With Code: the revived catalog's `papers/` and `evaluations/` objects
  (tests/fixtures/paperswithcode/revived_evaluations_paper9_page1.json, demo/snapshot/paperswithcode/).

Cross-source links resolve: a Hub `arxiv:` tag, a PWC paper's `arxiv_id` and an Epoch `Link` name
arXiv ids of the synthetic arXiv set (`arxiv_id_at`), so a rebuild over this data joins as the real one does.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
EPOCH_HEADER_SOURCE = ROOT / "tests" / "fixtures" / "epoch" / "notable_ai_models_snapshot_2026-07-19.csv"

NEWEST = datetime(2026, 9, 28, 12, 0, tzinfo=timezone.utc)
"""The newest synthetic record: the day the real Hub slice was taken."""
SEED = 10
HUB_RECORDS = 2_500_000
ARXIV_ENTRIES = 800_000
EPOCH_ROWS = 3_000
PWC_RESULTS = 100_000
HUB_PER_DAY = 5_000
"""New Hub models a day (issue 10: "about 5,000 Hub models" a night), so 2.5 M span about 500 days."""
ARXIV_PER_DAY = 1_000
"""New AI papers a day (issue 10: 1,000 papers a night); 800,000 span about 800 days."""
HUB_PAGE = 1_000
USERS = 600_000
"""Distinct uploaders to draw from (fixed, not scaled with the total, so a smaller set is a prefix of a larger one)."""
ARXIV_PAGE = 2_000
"""The arXiv API's documented page cap."""
PWC_PAGE = 100
"""The revived catalog's page_size cap (1..100)."""

# --- vocabularies, from the real slice and fixtures -------------------------------------------------------------

BASE_MODELS = (
    # (repo, parameters, pipeline tag, architecture tag), roughly in order of how often they are fine-tuned
    ("Qwen/Qwen3-8B", 8_190_000_000, "text-generation", "qwen3"),
    ("meta-llama/Llama-3.1-8B-Instruct", 8_030_000_000, "text-generation", "llama"),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1_540_000_000, "text-generation", "qwen2"),
    ("Qwen/Qwen3.5-2B", 2_000_000_000, "text-generation", "qwen3_5"),
    ("google/gemma-3-270m", 268_000_000, "text-generation", "gemma3_text"),
    ("mistralai/Mistral-7B-Instruct-v0.3", 7_250_000_000, "text-generation", "mistral"),
    ("Qwen/Qwen3.6-35B-A3B", 35_100_000_000, "image-text-to-text", "qwen3_5_moe"),
    ("google/gemma-4-E4B-it", 7_900_000_000, "image-text-to-text", "gemma4"),
    ("sentence-transformers/all-MiniLM-L6-v2", 22_700_000, "sentence-similarity", "bert"),
    ("answerdotai/ModernBERT-base", 149_000_000, "fill-mask", "modernbert"),
    ("FacebookAI/xlm-roberta-large", 560_000_000, "fill-mask", "xlm-roberta"),
    ("openai/whisper-medium", 769_000_000, "automatic-speech-recognition", "whisper"),
    ("Qwen/Qwen-Image-2.1", 20_400_000_000, "text-to-image", "qwen-image"),
    ("Wan-AI/Wan2.1-T2V-1.3B", 1_300_000_000, "text-to-video", "wan"),
    ("moonshotai/Kimi-K3", 1_040_000_000_000, "text-generation", "kimi_k3"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 7_620_000_000, "text-generation", "qwen2"),
    ("black-forest-labs/FLUX.1-dev", 12_000_000_000, "text-to-image", "flux"),
    ("microsoft/phi-4", 14_700_000_000, "text-generation", "phi3"),
)
ORGS = ("Qwen", "google", "meta-llama", "mistralai", "microsoft", "nvidia", "deepseek-ai", "allenai", "ibm-granite",
        "HuggingFaceTB", "tiiuae", "moonshotai", "openbmb", "LiquidAI", "stabilityai", "Wan-AI", "XiaomiMiMo")
"""Labs: few repos each, but the popular ones; they release families of sizes on one day."""
QUANTIZERS = ("mradermacher", "bartowski", "unsloth", "lmstudio-community", "QuantFactory", "RunningHubAI")
"""Accounts that re-upload others' models by the thousand (the real slice: RunningHubAI, GGUF re-uploads)."""
PIPELINES = (
    (None, 30), ("text-generation", 26), ("text-to-image", 7), ("image-text-to-text", 5), ("text-classification", 6),
    ("feature-extraction", 3), ("sentence-similarity", 2), ("automatic-speech-recognition", 3),
    ("reinforcement-learning", 5), ("robotics", 2), ("text-to-speech", 2), ("image-classification", 3),
    ("token-classification", 2), ("audio-classification", 1), ("text-to-video", 1), ("translation", 2),
)
"""`pipeline_tag` shares: about a third of new repos have none (the slice: 9 of 40 carry only `region:us`)."""
LIBRARIES = {
    "text-generation": "transformers", "image-text-to-text": "transformers", "text-classification": "transformers",
    "feature-extraction": "transformers", "token-classification": "transformers", "translation": "transformers",
    "sentence-similarity": "sentence-transformers", "automatic-speech-recognition": "transformers",
    "text-to-image": "diffusers", "text-to-video": "diffusers", "reinforcement-learning": "stable-baselines3",
    "robotics": "lerobot", "text-to-speech": "transformers", "image-classification": "timm",
    "audio-classification": "transformers",
}
LICENSES = ("apache-2.0", "mit", "other", "cc-by-nc-4.0", "llama3.1", "gemma", "cc-by-4.0", "openrail", "cc-by-nc-sa-4.0")
WORDS = ("agent", "reason", "math", "coder", "vision", "chat", "instruct", "tiny", "base", "distill", "merge", "rl",
         "grpo", "dpo", "sft", "medical", "legal", "finance", "amharic", "swahili", "vi", "ja", "ko", "arabic", "retrieval",
         "embed", "rerank", "ocr", "speech", "tts", "asr", "diffusion", "lora", "anime", "style", "policy", "robot",
         "pick", "place", "spatial", "calibrated", "router", "guard", "moderation", "summarize", "translate")
SIZES = ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")
SYLLABLES = ("ka", "ri", "mo", "ten", "shi", "lo", "va", "nek", "zu", "ar", "bel", "dan", "el", "fi", "gor", "hu",
             "jin", "ko", "lin", "mar", "no", "pe", "qui", "ros", "sa", "tor", "ul", "wei", "xi", "yan")
CATEGORIES = (("cs.LG", 34), ("cs.CV", 22), ("cs.CL", 20), ("cs.AI", 12), ("stat.ML", 4), ("cs.RO", 4), ("cs.NE", 2),
              ("eess.AS", 2))
"""Primary categories of the AI listing, by share of new submissions."""
CROSS = ("cs.AI", "cs.LG", "stat.ML", "cs.CL", "cs.CV", "cs.IR", "math.OC", "cs.HC")


def _weighted(pairs: tuple[tuple, ...]) -> tuple[list, list[int]]:
    return [value for value, _ in pairs], [weight for _, weight in pairs]


def _iso(moment: datetime) -> str:
    """The Hub's timestamp format: `2026-09-28T08:20:13.000Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _heavy_tail(rng: random.Random, zero_share: float, alpha: float, scale: float, cap: int) -> int:
    """0 with probability `zero_share`, else a Pareto(alpha) count times `scale`: most repos get nothing, a few a lot."""
    if rng.random() < zero_share:
        return 0
    return min(int(scale * rng.paretovariate(alpha)), cap)


def _author(rng: random.Random, population: int) -> str:
    """A user of a heavy-tailed population (Pareto ranks): the top 100 post about 3% of user repos, the median user 1 or 2."""
    rank = int(2_000 * rng.paretovariate(0.7)) - 1_999
    if rank > population:  # the tail past the population: anyone, rather than piling onto the last rank
        rank = rng.randint(1, population)
    first = SYLLABLES[rank % len(SYLLABLES)] + SYLLABLES[(rank // len(SYLLABLES)) % len(SYLLABLES)]
    return f"{first.capitalize()}{rank // 900}" if rank >= 900 else f"{first}{rank}"


# --- arXiv ids: a pure function of an entry's position, so other sources can cite them ---------------------------


def arxiv_time_at(index: int, *, per_day: int = ARXIV_PER_DAY, newest: datetime = NEWEST) -> datetime:
    """First-version submission time of the arXiv entry at `index` (0 = newest), evenly spaced per day."""
    return newest - timedelta(seconds=index * 86_400 / per_day)


def arxiv_id_at(index: int, *, per_day: int = ARXIV_PER_DAY, newest: datetime = NEWEST) -> str:
    """The new-style id (`YYMM.NNNNN`) of the entry at `index`: numbered up from 1 within its month, as arXiv does."""
    moment = arxiv_time_at(index, per_day=per_day, newest=newest)
    month_start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_in_month = math.floor((newest - month_start).total_seconds() * per_day / 86_400)
    number = last_in_month - index + 1
    if number > 99_999:
        raise ValueError(f"{per_day:,} papers a day overflow arXiv's five-digit monthly numbers")
    return f"{moment:%y%m}.{number:05d}"


# --- Hugging Face Hub ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubShape:
    """Sizes a Hub page depends on: the total, the day rate, and the arXiv set its `arxiv:` tags cite."""

    total: int = HUB_RECORDS
    per_day: int = HUB_PER_DAY
    arxiv_entries: int = ARXIV_ENTRIES
    seed: int = SEED
    newest: datetime = NEWEST


def hub_page(number: int, page_size: int = HUB_PAGE, shape: HubShape = HubShape()) -> list[dict]:
    """Page `number` (0 = newest) of the listing, as `GET /api/models?sort=createdAt&expand=...` returns it.

    Distributions, each from the real 2026-09-28 slice (40 models in an hour) or the Hub's known shape:
    - creation times strictly newest first, `per_day` a day, at most a few seconds of jitter;
    - authors Zipf-like (a few accounts own thousands of repos), plus quantizers (about 15% of
      records: `-GGUF` re-uploads with `gguf` and `base_model:quantized:`) and labs, which release
      a family of 2 to 5 size variants within minutes (same author, same stem, sizes in the name);
    - lineage on about half: finetune 25%, adapter (peft/lora) 12%, quantized 15%, merge 1%; the
      `base_model:` tags and `cardData.base_model` (a string, or a list for merges) agree;
    - `arxiv:` tags on about 7% (3 of 40 in the slice), citing ids of the synthetic arXiv set;
    - likes and downloads heavy-tailed, mostly 0 (the slice: 38 of 40 with no like, all with no
      download yet), labs far above the rest; `model-index` on 3%, `evalResults` on 1%;
    - `safetensors` totals where the tags say safetensors; optional fields absent as the Hub omits them.
    """
    rng = random.Random(f"hub:{shape.seed}:{number}:{page_size}")
    first = number * page_size
    last = min(first + page_size, shape.total)
    gap = 86_400 / shape.per_day
    page: list[dict] = []
    family: tuple[str, str, str, int] | None = None  # author, stem, kind, variants left
    pipelines, pipeline_weights = _weighted(PIPELINES)
    for index in range(first, last):
        created = shape.newest - timedelta(seconds=index * gap + rng.random() * gap * 0.5)
        if family is None or family[3] == 0:
            family = _next_family(rng, index, shape)
        author, stem, kind, left = family
        family = (author, stem, kind, left - 1)
        page.append(_hub_record(rng, index, created, author, stem, kind, left, pipelines, pipeline_weights, shape))
    return page


def _next_family(rng: random.Random, index: int, shape: HubShape) -> tuple[str, str, str, int]:
    """Who posts next and what: a lab's family of sizes, a quantizer's re-upload, or one user repo."""
    draw = rng.random()
    if draw < 0.02:
        return rng.choice(ORGS), f"{rng.choice(WORDS).capitalize()}-{index:x}", "lab", rng.randint(2, 5)
    if draw < 0.17:
        return rng.choice(QUANTIZERS), "", "quantized", 1
    kind = rng.choices(("finetune", "adapter", "merge", "none"), (25, 12, 1, 45))[0]
    return _author(rng, USERS), "", kind, 1


def _hub_record(rng: random.Random, index: int, created: datetime, author: str, stem: str, kind: str, left: int,
                pipelines: list, pipeline_weights: list[int], shape: HubShape) -> dict:
    base, base_params, base_pipeline, arch = BASE_MODELS[min(int(rng.paretovariate(1.2)) - 1, len(BASE_MODELS) - 1)]
    suffix = f"{index:x}"  # a run id, as real names carry (`...-r52`, `...-2104476532268945409`)
    tags: list[str] = []
    card: dict = {}
    record: dict = {"_id": f"{0x66F7C1A0 + index:08x}{rng.getrandbits(64):016x}", "id": ""}
    if kind == "lab":
        size = SIZES[left % len(SIZES)]
        name, pipeline, library = f"{stem}-{size}", base_pipeline, "transformers"
        params = int(float(size[:-1]) * 1e9)
        tags += ["transformers", "safetensors", arch, pipeline, "conversational"]
    elif kind == "quantized":
        name = f"{base.split('/')[1]}-{rng.choice(('GGUF', 'i1-GGUF', 'AWQ', 'GPTQ-Int4', 'NVFP4'))}-{suffix}"
        pipeline, library, params = base_pipeline, "gguf", base_params
        tags += ["gguf", f"base_model:{base}", f"base_model:quantized:{base}", "endpoints_compatible", "conversational"]
        card["base_model"] = base
    else:
        pipeline = rng.choices(pipelines, pipeline_weights)[0] if kind == "none" else base_pipeline
        library = LIBRARIES.get(pipeline) if pipeline else None
        name = "-".join([base.split("/")[1].lower() if kind != "none" else rng.choice(WORDS),
                         *rng.sample(WORDS, rng.randint(0, 2)), suffix])
        params = base_params if kind != "none" else int(10 ** rng.uniform(5, 10))
        if kind == "adapter":
            library = "peft"
            tags += ["peft", "safetensors", "lora", f"base_model:{base}", f"base_model:adapter:{base}"]
            card["base_model"] = base
        elif kind == "finetune":
            tags += [library or "transformers", "safetensors", arch, f"base_model:{base}", f"base_model:finetune:{base}"]
            card["base_model"] = base
        elif kind == "merge":
            other = rng.choice(BASE_MODELS)[0]
            tags += ["transformers", "safetensors", "mergekit", "merge", f"base_model:{base}", f"base_model:merge:{base}",
                     f"base_model:{other}", f"base_model:merge:{other}"]
            card["base_model"] = [base, other]
        elif rng.random() < 0.5:
            tags += [library or "pytorch", "safetensors"]
        if pipeline:
            tags.append(pipeline)
    record["id"] = f"{author}/{name}"
    if rng.random() < 0.07 and shape.arxiv_entries:
        tags.append(f"arxiv:{arxiv_id_at(rng.randrange(shape.arxiv_entries))}")
    if rng.random() < 0.05:
        tags.append(f"dataset:{_author(rng, 1_000)}/{rng.choice(WORDS)}-{rng.choice(WORDS)}")
    if rng.random() < 0.6:
        license_name = rng.choice(LICENSES)
        tags.append(f"license:{license_name}")
        card["license"] = license_name
    tags.append("region:us")
    popular = kind == "lab"
    record.update({
        "author": author,
        "createdAt": _iso(created),
        "lastModified": _iso(created + timedelta(seconds=int(rng.expovariate(1 / 3600)))),
        "downloads": _heavy_tail(rng, 0.05 if popular else 0.6, 0.8, 2_000 if popular else 3, 50_000_000),
        "likes": _heavy_tail(rng, 0.05 if popular else 0.85, 1.1, 30 if popular else 1, 20_000),
        "tags": tags,
    })
    if pipeline:
        record["pipeline_tag"] = pipeline
    if library:
        record["library_name"] = library
    if rng.random() < (0.5 if popular else 0.03):
        tags.append("model-index")
        card["model-index"] = [{"name": name, "results": [{
            "task": {"type": pipeline or "text-generation"},
            "dataset": {"name": "GPQA", "type": "Idavidrein/gpqa"},
            "metrics": [{"type": "accuracy", "value": round(rng.uniform(0.2, 0.8), 3)}]}]}]
    if card:
        record["cardData"] = card
    if rng.random() < (0.3 if popular else 0.01):
        record["evalResults"] = [{"dataset": {"id": "Idavidrein/gpqa", "task_id": "gpqa_diamond"},
                                  "value": round(rng.uniform(0.2, 0.8), 3)}]
    if "safetensors" in tags:
        record["safetensors"] = {"parameters": {"BF16": params}, "total": params}
    return record


def iter_hub_pages(n: int = HUB_RECORDS, page_size: int = HUB_PAGE, seed: int = SEED, *,
                   per_day: int = HUB_PER_DAY, arxiv_entries: int = ARXIV_ENTRIES) -> Iterator[list[dict]]:
    """`n` Hub listing records, newest first, a page (list of dicts) at a time; see `hub_page` for the distributions."""
    shape = HubShape(n, per_day, arxiv_entries, seed)
    for number in range(math.ceil(n / page_size)):
        yield hub_page(number, page_size, shape)


def write_hub_pages(folder: Path, n: int = HUB_RECORDS, page_size: int = HUB_PAGE, seed: int = SEED) -> list[Path]:
    """The listing's first `n` records as JSON array files, the bodies a local Hub serves, newest page first.

    A page is a pure function of (seed, number, page size), and its file is named by its number and
    record count (`page-00000-1000.json`), so a file already there is that page and is kept: a larger
    set extends a smaller one instead of generating it again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shape = HubShape(n, seed=seed)
    paths = []
    for number in range(math.ceil(n / page_size)):
        path = folder / f"page-{number:05d}-{min(page_size, n - number * page_size)}.json"
        if not path.exists():
            path.write_text(json.dumps(hub_page(number, page_size, shape), ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


# --- arXiv -----------------------------------------------------------------------------------------------------


def arxiv_entry(index: int, seed: int = SEED, *, per_day: int = ARXIV_PER_DAY) -> str:
    """One Atom `<entry>` as the export API writes it (namespaces of the enclosing feed), for entry `index`.

    Authors per paper log-normal around 4 (a few large collaborations of 100+); 85% one version,
    the rest 2 to 4 with `updated` later; a primary category by AI-listing share and 0 to 3 cross
    lists; a comment on 40%, a journal ref on 8%, a DOI on 10% (with its related link).
    """
    rng = random.Random(f"arxiv:{seed}:{index}")
    identifier = arxiv_id_at(index, per_day=per_day)
    published = arxiv_time_at(index, per_day=per_day)
    version = 1 if rng.random() < 0.85 else rng.randint(2, 4)
    updated = published + timedelta(days=rng.randint(1, 120)) if version > 1 else published
    primary = rng.choices(*_weighted(CATEGORIES))[0]
    categories = [primary, *sorted(set(rng.sample(CROSS, rng.randint(0, 3))) - {primary})]
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
    title = " ".join(word.capitalize() for word in words)
    summary = " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 250)))
    authors = max(1, min(int(rng.lognormvariate(1.3, 0.8)), 400))
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731 (arXiv's format, used four times)
    lines = [
        "  <entry>",
        f"    <id>http://arxiv.org/abs/{identifier}v{version}</id>",
        f"    <title>{escape(title)}</title>",
        f"    <updated>{stamp(updated)}</updated>",
        f'    <link href="https://arxiv.org/abs/{identifier}v{version}" rel="alternate" type="text/html"/>',
        f'    <link href="https://arxiv.org/pdf/{identifier}v{version}" rel="related" type="application/pdf" title="pdf"/>',
        f"    <summary>{escape(summary)}</summary>",
        *(f'    <category term="{term}" scheme="http://arxiv.org/schemas/atom"/>' for term in categories),
        f"    <published>{stamp(published)}</published>",
    ]
    if rng.random() < 0.4:
        lines.append(f"    <arxiv:comment>{rng.randint(6, 40)} pages, {rng.randint(1, 12)} figures</arxiv:comment>")
    lines.append(f'    <arxiv:primary_category term="{primary}"/>')
    if rng.random() < 0.08:
        lines.append(f"    <arxiv:journal_ref>Proceedings of {rng.choice(('NeurIPS', 'ICML', 'ICLR', 'ACL', 'CVPR'))} "
                     f"{published.year}</arxiv:journal_ref>")
    for number in range(authors):
        name = f"{_author(rng, 200_000).capitalize()} {rng.choice(SYLLABLES).capitalize()}{rng.choice(SYLLABLES)}"
        lines += ["    <author>", f"      <name>{escape(name)}</name>", "    </author>"]
    if rng.random() < 0.1:
        doi = f"10.{rng.randint(1000, 9999)}/{identifier}"
        lines += [f"    <arxiv:doi>{doi}</arxiv:doi>", f'    <link rel="related" href="https://doi.org/{doi}" title="doi"/>']
    lines.append("  </entry>")
    return "\n".join(lines)


def arxiv_feed(start: int, max_results: int, total: int, search_query: str, seed: int = SEED) -> bytes:
    """One API query page (`start`, `max_results`) over `total` entries, newest submission first, as arXiv serves it."""
    query = f"search_query={search_query}&id_list=&start={start}&max_results={max_results}"
    head = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns="http://www.w3.org/2005/Atom">',
        f"  <id>https://arxiv.org/api/synthetic-{seed}-{start}</id>",
        f"  <title>{escape('arXiv Query: ' + query)}</title>",
        f"  <updated>{NEWEST:%Y-%m-%dT%H:%M:%SZ}</updated>",
        f"  <link href={quoteattr('https://arxiv.org/api/query?' + query)} type=\"application/atom+xml\"/>",
        f"  <opensearch:itemsPerPage>{max_results}</opensearch:itemsPerPage>",
        f"  <opensearch:totalResults>{total}</opensearch:totalResults>",
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>",
    ]
    entries = [arxiv_entry(index, seed) for index in range(start, min(start + max_results, total))]
    return ("\n".join(head + entries + ["</feed>"]) + "\n").encode("utf-8")


def iter_arxiv_feeds(n: int = ARXIV_ENTRIES, page_size: int = ARXIV_PAGE, seed: int = SEED,
                     search_query: str = "cat:cs.LG OR cat:cs.CL OR cat:cs.CV OR cat:cs.AI") -> Iterator[bytes]:
    """`n` entries as consecutive API query pages (Atom bytes, `page_size` entries each); see `arxiv_entry`."""
    for start in range(0, n, page_size):
        yield arxiv_feed(start, page_size, n, search_query, seed)


# --- Epoch AI --------------------------------------------------------------------------------------------------


def epoch_header() -> list[str]:
    """The columns of the newest real snapshot, read from the fixture (Epoch renames them between releases)."""
    with EPOCH_HEADER_SOURCE.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle))


def epoch_csv(rows: int = EPOCH_ROWS, seed: int = SEED) -> str:
    """An Epoch CSV of `rows` models with the real header, newest publication first.

    As in the real snapshot: numbers as text (`9.702e+24`, `975000000000.0`), comma-separated lists
    in `Organization`, `Domain` and `Notability criteria`, abstracts with newlines, 2% of rows
    without a publication date, links to arXiv abstracts of the synthetic set on 60%, and
    `Base model` naming another Epoch model (never a Hub repo) on 15%.
    """
    rng = random.Random(f"epoch:{seed}")
    header = epoch_header()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    names: list[str] = []
    for index in range(rows):
        org = rng.sample(ORGS, rng.choice((1, 1, 1, 2)))
        name = f"{rng.choice(WORDS).capitalize()}-{rng.choice(SIZES)}-{index}"
        names.append(name)
        published = NEWEST - timedelta(days=index * 3_650 / max(rows, 1) + rng.random())
        params = 10 ** rng.uniform(6, 12.2)
        compute = 6 * params * 10 ** rng.uniform(9, 13.5)
        cells = {
            "Model": name,
            "Organization": ",".join(org),
            "Publication date": "" if rng.random() < 0.02 else f"{published:%Y-%m-%d}",
            "Domain": ",".join(rng.sample(("Language", "Vision", "Multimodal", "Audio", "Video", "Robotics"), rng.randint(1, 3))),
            "Task": "Language modeling/generation,Chat",
            "Parameters": f"{float(int(params))}",
            "Training compute (FLOP)": f"{compute:.3e}".replace("e+0", "e+"),
            "Confidence": rng.choice(("Confident", "Likely", "Speculative")),
            "Link": f"https://arxiv.org/abs/{arxiv_id_at(rng.randrange(ARXIV_ENTRIES))}" if rng.random() < 0.6 else "",
            "Abstract": f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)}.\n\n{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)}.",
            "Organization categorization": ",".join(rng.sample(("Industry", "Academia", "Government"), rng.randint(1, 2))),
            "Country (of organization)": rng.choice(("United States of America", "China", "France", "United Kingdom")),
            "Notability criteria": ",".join(rng.sample(("SOTA improvement", "Highly cited", "Training cost", "Discretionary"),
                                                       rng.randint(1, 2))),
            "Base model": rng.choice(names[:-1]) if len(names) > 1 and rng.random() < 0.15 else "",
            "Model accessibility": rng.choice(("Open weights (unrestricted)", "API access", "Unreleased",
                                               "Open weights (restricted use)")),
            "Open model weights?": rng.choice(("True", "False", "")),
        }
        writer.writerow([cells.get(column, "") for column in header])
    return out.getvalue()


# --- Papers With Code (revived catalog) -----------------------------------------------------------------------


def pwc_paper(catalog_id: int, seed: int = SEED) -> dict:
    """One `papers/{id}?include_resources=true` object; 90% cite an arXiv id of the synthetic set."""
    rng = random.Random(f"pwc-paper:{seed}:{catalog_id}")
    arxiv_id = arxiv_id_at(rng.randrange(ARXIV_ENTRIES)) if rng.random() < 0.9 else None
    published = NEWEST - timedelta(days=rng.randint(0, 800))
    return {
        "id": str(catalog_id),
        "arxiv_id": arxiv_id,
        "route_identifier": arxiv_id or str(catalog_id),
        "title": " ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(4, 10))),
        "published": f"{published:%Y-%m-%d}",
        "authors": [f"{_author(rng, 50_000).capitalize()} {rng.choice(SYLLABLES).capitalize()}" for _ in range(rng.randint(1, 12))],
        "url_abs": f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        "citation_count": _heavy_tail(rng, 0.4, 1.0, 2, 100_000) or None,
        "repositories": [{"url": f"https://github.com/{_author(rng, 50_000)}/{rng.choice(WORDS)}", "is_official": True}]
        if rng.random() < 0.5 else [],
        "project_pages": [],
        "hf_models": [], "hf_datasets": [], "hf_spaces": [],
    }


def iter_pwc_results(n: int = PWC_RESULTS, page_size: int = PWC_PAGE, seed: int = SEED) -> Iterator[list[dict]]:
    """`n` `evaluations/` rows, in pages of dicts, grouped by paper as `evaluations/?paper_id=` returns them.

    Rows per paper are heavy-tailed (most papers 1 to 3 results, a few benchmark papers 50+);
    paper ids run from 1 up, so `pwc_paper(int(row["paper_id"]))` is the paper each row cites.
    """
    rng = random.Random(f"pwc-results:{seed}")
    page: list[dict] = []
    paper, left, row = 0, 0, 0
    for _ in range(n):
        if left == 0:
            paper, left, row = paper + 1, min(int(rng.paretovariate(1.3)), 80), 0
        left, row = left - 1, row + 1
        metric = rng.choice(("accuracy", "f1", "mean iou (class)", "bleu", "exact match", "pass@1"))
        page.append({
            "id": f"{paper}-{row}", "paper_id": str(paper), "task_id": str(rng.randint(1, 400)),
            "dataset_id": str(rng.randint(1, 2_000)),
            "model_name": f"{rng.choice(WORDS)}-{rng.choice(SIZES).lower()}", "harness": None,
            "metrics": {metric: f"{rng.uniform(10, 95):.1f}%"}, "best_metric": metric if row == 1 else None,
            "best_rank": rng.randint(1, 50) if rng.random() < 0.5 else None,
            "task_name": rng.choice(("Semantic Segmentation", "Question Answering", "Code Generation", "Math Reasoning")),
            "dataset_name": rng.choice(("Cityscapes test", "SQuAD1.1", "HumanEval", "GSM8K", "MMLU")),
            "is_open": rng.random() < 0.7, "num_parameters": None,
            "result_url": f"https://paperswithcode.co/paper/{paper}",
        })
        if len(page) == page_size:
            yield page
            page = []
    if page:
        yield page


def iter_pwc_papers(n: int, page_size: int = PWC_PAGE, seed: int = SEED) -> Iterator[list[dict]]:
    """Papers 1..`n` (`pwc_paper`), in pages of dicts as `papers/?include_resources=true` lists them.

    Call it with the highest `paper_id` of `iter_pwc_results` to have a paper for every result.
    """
    for first in range(1, n + 1, page_size):
        yield [pwc_paper(catalog_id, seed) for catalog_id in range(first, min(first + page_size, n + 1))]
