"""Model-paper rules on real abstracts: model announcements, and the surveys, benchmarks and methods that are not."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import feedparser
import pytest

from transforms.arxiv_facts import paper_facts, repair_mojibake
from transforms.model_papers import classify_paper, find_links, weights_links

from .test_arxiv_facts_prefilter import corpus

FIXTURES = Path(__file__).parents[1] / "fixtures"
ATOM = "{http://www.w3.org/2005/Atom}"


@cache
def epoch_abstracts() -> dict[str, tuple[str, str]]:
    """Epoch's copies of arXiv titles and abstracts, by Epoch model name."""
    found = {}
    for name in ("notable_ai_models_snapshot_2026-07-19.csv", "all_ai_models_snapshot_2025-04-23.csv"):
        with (FIXTURES / "epoch" / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("Abstract"):
                    found.setdefault(row["Model"], (row["Reference"], row["Abstract"]))
    return found


@cache
def arxiv_abstracts() -> dict[str, tuple[str, str, str | None]]:
    """Title, abstract and comment of every entry of the genuine API answers, by id with version."""
    found = {}
    for path in (FIXTURES / "arxiv").glob("api_query_search-*.xml"):
        for entry in ET.parse(path).getroot().iter(f"{ATOM}entry"):
            comment = entry.findtext("{http://arxiv.org/schemas/atom}comment")
            found[entry.findtext(f"{ATOM}id").rsplit("/", 1)[-1]] = (
                entry.findtext(f"{ATOM}title"), entry.findtext(f"{ATOM}summary"), comment)
    return found


@cache
def rss_abstracts() -> dict[str, tuple[str, str]]:
    """Title and abstract of every item of the genuine RSS announcement day, by id with version."""
    feed = feedparser.parse((FIXTURES / "arxiv" / "rss_cs.LG_2026-08-20_announcement.xml").read_bytes())
    return {entry.id.rsplit(":", 1)[-1]: (entry.title, entry.summary.split("Abstract:", 1)[-1]) for entry in feed.entries}


@pytest.mark.parametrize(
    ("epoch_model", "names", "evidence_starts"),
    [
        ("LLaMA-65B", ("LLaMA",), "We introduce LLaMA, a collection of foundation language models"),
        ("Llama 2-70B", ("Llama 2",), "In this work, we develop and release Llama 2"),
        ("Mistral 7B", ("Mistral 7B v0.1",), "We introduce Mistral 7B v0.1, a 7-billion-parameter language model"),
        ("Phi-4 Mini", ("Phi-4-Mini", "Phi-4-Multimodal"), "We introduce Phi-4-Mini and Phi-4-Multimodal"),
        ("EXAONE 3.5 2.4B", ("EXAONE 3.5",), "This technical report introduces the EXAONE 3.5"),
        ("Qwen2.5-Coder (32B)", ("Qwen2.5-Coder",), "In this report, we introduce the Qwen2.5-Coder series"),
        ("Kimi k1.5", ("Kimi k1.5",), "In light of this, we report on the training practice of Kimi k1.5, our latest"),
        ("Hunyuan-Large", ("Hunyuan-Large",), "In this paper, we introduce Hunyuan-Large, which is"),
        ("Emu3", ("Emu3",), "In this paper, we introduce Emu3, a new suite of state-of-the-art multimodal models"),
        ("Jamba 1.5-Large", ("Jamba-1.5",), "We present Jamba-1.5, new instruction-tuned large language models"),
    ],
)
def test_real_model_announcements_are_model_papers(epoch_model: str, names: tuple[str, ...], evidence_starts: str) -> None:
    title, abstract = epoch_abstracts()[epoch_model]
    verdict = classify_paper(title, abstract)
    assert verdict.is_model_paper
    assert verdict.announced_models == names
    assert verdict.evidence.startswith(evidence_starts)


@pytest.mark.parametrize(
    ("arxiv_id", "kind"),
    [
        ("2503.05378v2", "survey"),
        ("2202.09076v1", "literature review"),
        ("2503.23466v1", "dataset"),
        ("2502.07719v2", "converter tool (OpenCat)"),
        ("1912.09881v1", "test tool (Morphy)"),
        ("2312.06056v1", "framework evaluating LLMs (METAL)"),
        ("2507.10541v2", "stress-test framework for reasoning models (REST)"),
        ("2501.17461v1", "LLM-driven approach (AugmenTest)"),
        ("2509.05540v1", "approach using an LLM (RestTSLLM)"),
        ("2412.16620v1", "empirical study fine-tuning LLMs"),
        ("2602.19294v1", "study using GPT-4o and DeepSeek Coder"),
        ("2007.09895v2", "a 'model called' in theory, not a released model"),
    ],
)
def test_surveys_benchmarks_tools_and_studies_from_the_api_sample_are_not_model_papers(arxiv_id: str, kind: str) -> None:
    title, abstract, comment = arxiv_abstracts()[arxiv_id]
    assert not classify_paper(title, abstract, comment).is_model_paper, kind


@pytest.mark.parametrize(
    ("arxiv_id", "kind"),
    [
        ("2608.16971v1", "'We introduce FedPref: frozen public language models propose ...' (a method)"),
        ("2504.20131v4", "'the LZ penalty, a penalty ... language models' (a decoding penalty)"),
        ("2606.12289v2", "'the Standard Interpretable Model (SIM), a general theory'"),
        ("2607.19083v3", "'GEqTrain, a configuration-driven framework'"),
        ("2608.14635v2", "'Belayer, an efficient fault-tolerant system for LLM ... training'"),
        ("2608.16959v1", "'MagViT, an interpretable ... transformer framework'"),
        ("2608.17253v2", "'Co-RL, a framework in which multiple decoupled models ...'"),
        ("2608.16926v1", "'Data-DPO, a target model-oriented SFT data selection method'"),
        ("2608.16929v1", "'Furthermore, our model identifies ...' (a sentence opener is not a name)"),
    ],
)
def test_near_misses_from_a_real_announcement_day_are_not_model_papers(arxiv_id: str, kind: str) -> None:
    title, abstract = rss_abstracts()[arxiv_id]
    assert not classify_paper(title, abstract).is_model_paper, kind


def test_no_paper_of_the_real_announcement_day_is_marked_without_an_announcing_sentence() -> None:
    marked = [key for key, (title, abstract) in rss_abstracts().items() if classify_paper(title, abstract).is_model_paper]
    assert marked == []


def test_a_proposed_named_model_counts_only_with_a_release() -> None:
    proposed = "We propose Foo-7B, a decoder-only language model trained on code."
    assert not classify_paper("Foo", proposed).is_model_paper
    released = proposed + " We release Foo-7B weights at https://huggingface.co/foo-org/Foo-7B."
    verdict = classify_paper("Foo", released)
    assert verdict.is_model_paper and verdict.announced_models == ("Foo-7B",)
    assert verdict.weights_links == ("https://huggingface.co/foo-org/Foo-7B",)


def test_links_are_found_in_comment_and_abstract_without_trailing_punctuation() -> None:
    links = find_links(
        "Code: https://github.com/org/repo. Weights at huggingface.co/org/model-7b).",
        "Data at https://huggingface.co/datasets/org/data; see https://github.com/org/repo",
    )
    assert links.code_urls == ("https://github.com/org/repo",)
    assert links.hf_urls == ("https://huggingface.co/org/model-7b", "https://huggingface.co/datasets/org/data")
    assert weights_links(links.hf_urls) == ("https://huggingface.co/org/model-7b",)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("Dirk WÃ¼bben", "Dirk Wübben"),  # as arXiv serves 1707.08567
        ("Dirk Wübben", "Dirk Wübben"),
        ("Łukasz Kaiser", "Łukasz Kaiser"),
        ("王小明", "王小明"),
        ("Ahmed", "Ahmed"),
    ],
)
def test_only_double_encoded_names_are_repaired(received: str, expected: str) -> None:
    assert repair_mojibake(received) == expected


def test_links_found_on_the_raw_texts_give_the_verdict_found_on_the_squashed_ones() -> None:
    """`paper_facts` hands `classify_paper` the links it found on the raw abstract and comment, found once: no
    link holds whitespace, so squashing cannot change them. Checked on every real paper of the fixtures, with
    their whitespace as received and turned into line breaks, tabs and non-breaking spaces."""
    papers = corpus()
    assert sum(bool(find_links(abstract, comment).hf_urls) for _, _, abstract, comment, _ in papers) > 10
    for _, title, abstract, comment, _ in papers:
        for spacing in (" ", "\n", " \t ", "\u00a0"):
            raw_abstract = abstract.replace(" ", spacing) if abstract else abstract
            raw_comment = comment.replace(" ", spacing) if comment else comment
            links = find_links(raw_abstract, raw_comment)
            assert classify_paper(title, raw_abstract, raw_comment, links=links) == classify_paper(
                title, raw_abstract, raw_comment
            )


def test_a_papers_facts_take_its_weights_links_from_the_comment_too() -> None:
    """The links `paper_facts` finds once and hands on cover the comment, where arXiv authors often put them."""
    facts = paper_facts("Foo", "We release Foo-7B, a language model for chemistry.",
                        "Weights:\thttps://huggingface.co/org/foo-7b.", ["A. Author"])
    assert facts["hf_urls"] == ["https://huggingface.co/org/foo-7b"]
    assert facts["model_evidence"] == (
        "We release Foo-7B, a language model for chemistry. | weights: https://huggingface.co/org/foo-7b"
    )
