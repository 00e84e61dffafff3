"""The SQL prefilter of `build_paper_facts` never changes a paper's facts, only who computes them.

Every real abstract the fixtures hold (Epoch's copies of model papers, the arXiv API answers, an
RSS announcement day), landed as arXiv entries, gets exactly the facts the Python rules give it
when called directly; and the prefilter does take most non-model papers off Python's hands.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import feedparser
import pytest

from sources.records import RawRecord
from transforms import arxiv_facts
from transforms.arxiv_facts import FACT_COLUMNS, FACTS_TABLE, build_paper_facts, paper_facts
from warehouse.raw import land_page

FIXTURES = Path(__file__).parents[1] / "fixtures"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"


def corpus() -> list[tuple[str, str | None, str | None, str | None, list[str]]]:
    """(key, title, abstract, comment, authors) of every real paper text in the fixtures."""
    papers = []
    for name in ("notable_ai_models_snapshot_2026-07-19.csv", "all_ai_models_snapshot_2025-04-23.csv"):
        with (FIXTURES / "epoch" / name).open(encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle)):
                if row.get("Abstract"):
                    papers.append((f"epoch-{name[:8]}-{number}", row["Reference"], row["Abstract"], None,
                                   [part.strip() for part in (row.get("Authors") or "").split(",") if part.strip()]))
    for path in sorted((FIXTURES / "arxiv").glob("api_query_*.xml")):
        for number, entry in enumerate(ET.parse(path).getroot().iter(f"{ATOM}entry")):
            authors = [author.findtext(f"{ATOM}name") for author in entry.iter(f"{ATOM}author")]
            papers.append((f"{path.stem}-{number}", entry.findtext(f"{ATOM}title"), entry.findtext(f"{ATOM}summary"),
                           entry.findtext(f"{ARXIV}comment"), authors))
    feed = feedparser.parse((FIXTURES / "arxiv" / "rss_cs.LG_2026-08-20_announcement.xml").read_bytes())
    for number, entry in enumerate(feed.entries):
        papers.append((f"rss-{number}", entry.title, entry.summary.split("Abstract:", 1)[-1], None,
                       [name.strip() for name in entry.get("author", "").split(",") if name.strip()]))
    return papers


def as_entry(key: str, title: str | None, abstract: str | None, comment: str | None, authors: list[str]) -> str:
    """The raw payload shape of `sources/arxiv.py`: each element as a list of values."""
    entry: dict[str, object] = {"id": [f"http://arxiv.org/abs/{key}v1"], "author": [{"name": [name]} for name in authors]}
    if title is not None:
        entry["title"] = [title]
    if abstract is not None:
        entry["summary"] = [abstract]
    if comment is not None:
        entry["arxiv:comment"] = [comment]
    return json.dumps(entry, ensure_ascii=False)


@pytest.mark.parametrize(
    ("batch", "processes"),
    [(arxiv_facts.BATCH, None), (250, 2)],
    ids=["one batch, in this process", "batches of 250 on two spawned processes"],
)
def test_prefiltered_facts_equal_the_python_rules_on_every_real_abstract(
    fresh_db: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, batch: int, processes: int | None
) -> None:
    papers = corpus()
    assert len(papers) > 1_000
    land_page(fresh_db, "raw_arxiv__papers",
              [RawRecord(key, as_entry(key, *rest)) for key, *rest in papers], run_id="test")
    monkeypatch.setattr(arxiv_facts, "BATCH", batch)

    computed = build_paper_facts(fresh_db, processes=processes)

    stored = {
        row[0]: dict(zip(FACT_COLUMNS, row[1:]))
        for row in fresh_db.execute(
            f"select raw.source_key, {', '.join('facts.' + name for name in FACT_COLUMNS)} "
            f"from raw_arxiv__papers raw inner join {FACTS_TABLE} facts using (content_hash)"
        ).fetchall()
    }
    assert computed == len(papers) == len(stored)
    mismatches = [key for key, *rest in papers if stored[key] != paper_facts(*rest)]
    assert mismatches == []
    model_papers = sum(facts["is_model_paper"] for facts in stored.values())
    assert model_papers > 100  # Epoch's abstracts: the rules did see the model announcements


def test_the_prefilter_spares_python_most_papers_that_announce_nothing(
    fresh_db: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    general = [(key, *rest) for key, *rest in corpus() if key.startswith(("rss", "api"))]
    land_page(fresh_db, "raw_arxiv__papers", [RawRecord(key, as_entry(key, *rest)) for key, *rest in general], run_id="test")

    with caplog.at_level(logging.INFO, logger="transforms.arxiv_facts"):
        build_paper_facts(fresh_db)

    counts = re.search(r"classified ([\d,]+) .*\(([\d,]+) by the prefilter alone, ([\d,]+) by the Python rules\)", caplog.text)
    total, by_sql, by_python = (int(group.replace(",", "")) for group in counts.groups())
    assert total == len(general) == by_sql + by_python
    assert by_sql > by_python  # a general day of arXiv: most papers announce no model


def test_the_joined_candidate_pattern_matches_where_one_of_its_patterns_does() -> None:
    """`CANDIDATE_PATTERN` is one search for the three patterns: on every real text, and on texts each of them
    alone matches, it finds what one of them finds. A flag that leaks out of one pattern into the next (a bare
    `(?i)`) would make `, our` after a lower-case word match."""
    crafted = ["We introduce Foo, a model", "Foo-7B, our newest model", "a model called Foo here",
               "In our results, our method wins", "We propose Foo", "WE INTRODUCE FOO"]
    texts = [f"{title or ''} {abstract or ''}" for _, title, abstract, _, _ in corpus()] + crafted
    with duckdb.connect() as con:
        separately, joined = zip(*con.execute(
            "select list_bool_or([regexp_matches(text, pattern) for pattern in $patterns]), "
            "regexp_matches(text, $joined) from (select unnest($texts) as text)",
            {"patterns": list(arxiv_facts.CANDIDATE_PATTERNS), "joined": arxiv_facts.CANDIDATE_PATTERN, "texts": texts},
        ).fetchall())
    assert list(joined) == list(separately)
    assert list(joined[-len(crafted):]) == [True, True, True, False, False, True]
    assert 0 < sum(joined) < len(texts)
