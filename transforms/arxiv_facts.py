"""What Python knows about each arXiv paper that SQL cannot say: repaired author names, links, model verdict.

DuckDB runs Python functions only with numpy installed, which this project does not ship, so the
facts are computed here and stored in `_arxiv_paper_facts`, one row per distinct raw payload
(content hash), which `stg_arxiv__papers.sql` joins. Only payloads without facts are computed, so a
nightly rebuild classifies the day's new papers, not all of them again. The rules' own source code
is part of the key: editing `transforms/model_papers.py` or this module recomputes every paper,
so a rule fix reaches history without refetching. The table starts with `_`, so it is not published.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

import duckdb
import orjson

from transforms import model_papers
from transforms.model_papers import classify_paper, find_links
from transforms.source_digest import source_digest

logger = logging.getLogger(__name__)

FACTS_TABLE = "_arxiv_paper_facts"
MOJIBAKE_MARKERS = frozenset("ÃÂÄÅÆÐÑØâ")
"""First characters of UTF-8 multi-byte sequences read as Latin-1 or Windows-1252 (`Ã¼` for `ü`)."""
BATCH = 20_000
FACT_DEFINITIONS = {
    "authors": "varchar[]", "code_urls": "varchar[]", "hf_urls": "varchar[]", "is_model_paper": "boolean not null",
    "announced_models": "varchar[]", "model_evidence": "varchar",
}
FACT_COLUMNS = tuple(FACT_DEFINITIONS)
CREATE_FACTS = f"""
create table if not exists {FACTS_TABLE} (content_hash varchar not null, rules varchar not null,
    {", ".join(f"{column} {definition}" for column, definition in FACT_DEFINITIONS.items())},
    primary key (content_hash, rules))
"""
STORE_FACTS = f"""
insert into {FACTS_TABLE} (content_hash, rules, {", ".join(FACT_COLUMNS)})
select content_hash, $rules, {", ".join(FACT_COLUMNS)}
from (select unnest(json_transform_strict(facts, $structure)) from (select unnest($facts) as facts))
"""
FACT_STRUCTURE = json.dumps({
    "content_hash": "varchar",
    **{column: definition.removesuffix(" not null") for column, definition in FACT_DEFINITIONS.items()},
})
"""A paper's facts as `classify_rows` writes them, for `json_transform_strict`: a missing or mistyped field fails."""

RULES_VERSION = source_digest(model_papers, sys.modules[__name__])[:16]
"""The rules' source, digested: any edit to them invalidates every stored verdict."""


def repair_mojibake(text: str | None) -> str | None:
    """UTF-8 text that was decoded as Latin-1/Windows-1252 and encoded again (`Dirk WÃ¼bben`), repaired.

    Only text that round-trips exactly is changed: a correct name (`Wübben`, `Łukasz`, `王`) does
    not give valid UTF-8 bytes through Latin-1, so it is returned untouched.
    """
    if not text or not MOJIBAKE_MARKERS.intersection(text):
        return text
    for codec in ("latin-1", "cp1252"):
        try:
            repaired = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if repaired != text:
            return repaired
    return text


def paper_facts(title: str | None, abstract: str | None, comment: str | None, authors: list[str]) -> dict[str, object]:
    """One paper's facts, as the columns of `_arxiv_paper_facts` (without the key)."""
    links = find_links(abstract, comment)
    verdict = classify_paper(title, abstract, comment, links=links)
    evidence = verdict.evidence
    if evidence and verdict.weights_links:
        evidence = f"{evidence} | weights: {', '.join(verdict.weights_links)}"
    return {
        "authors": [repair_mojibake(name) for name in authors],
        "code_urls": list(links.code_urls),
        "hf_urls": list(links.hf_urls),
        "is_model_paper": verdict.is_model_paper,
        "announced_models": list(verdict.announced_models),
        "model_evidence": evidence,
    }


PLAIN_TEXT = r"^[\t\n\r\x20-\x7e]*$"
"""Printable ASCII: where DuckDB's RE2 and Python's `re` agree on `\\s`, `\\w`, `\\b` and case folding."""
_SUBJECT_SQL = r"\b(we|this\s+(paper|report|technical\s+report|work|article|note))\s+((also|further|here|now|then|first|publicly)\s+)?"
_WEAK_SQL = r"(propos|train|pre-?train|develop|build|buil)"
CANDIDATE_PATTERNS = (
    # `_ANNOUNCE` with a strong verb, possibly after a weak one ("we train and release")
    # (a strong stem inside a weak verb's word counts too, as `re.search(_STRONG_VERB, verb)` finds it there)
    rf"(?i:{_SUBJECT_SQL}({_WEAK_SQL}\w*\s+and\s+)?(pre-)?\w*(introduc|present|releas|open[-\s]+sourc|unveil|report|describ|launch|share))",
    # `_OWNED`: a name (its last token holds a capital or digit) then ", our "
    r"(?:[A-Z0-9][\w.+/-]*,\s+our\s)",
    # `_DUBBED`: a model noun, then called/named/dubbed/termed within the sentence
    r"(?i:(models?|lms?|lmms?|vlas?|checkpoints?|weights)[^.;]*(called|named|dubbed|termed)\s)",
)
"""Necessary conditions of the model-paper rules, in RE2: a paper matching none cannot be a model paper.

Looser than the rules (whitespace runs, no length bounds, title and abstract joined), never stricter,
so the SQL prefilter only decides which papers Python must read. A weak verb counts only with a
release cue in the same sentence (`WEAK_CANDIDATE` and `RELEASE_CUE_SQL` together). Each pattern keeps its
flags to itself, so that the prefilter can search for all three in one pass (`CANDIDATE_PATTERN`).
"""
CANDIDATE_PATTERN = "|".join(CANDIDATE_PATTERNS)
"""Any of `CANDIDATE_PATTERNS`: RE2 reads a text once for all of them, where three searches read it three times
(800,000 papers at Hub scale: 3.8 -> 1.1 s, docs/PERFORMANCE.md)."""
WEAK_CANDIDATE = rf"(?i){_SUBJECT_SQL}{_WEAK_SQL}"
RELEASE_CUE_SQL = (
    r"(?i)\b(release[sd]?|open[-\s]+sourced?|publicly\s+available|open[-\s]+weights?|weights|checkpoints?|model\s+card)\b"
)
LINK_CUE_SQL = r"(?i)github\.com|huggingface\.co|hf\.co"
"""`CODE_URL` and `HF_URL` need one of these; without any, a paper has no links."""
MOJIBAKE_SQL = "[" + "".join(sorted(MOJIBAKE_MARKERS)) + "]"

_TODO_SQL = """
create or replace temp table _arxiv_facts_todo as
with missing as (
    select
        content_hash,
        json_extract_string(payload, ['$.title[0]', '$.summary[0]', '$."arxiv:comment"[0]']) as texts,
        coalesce(json_extract_string(payload, '$.author[*].name[0]'), []) as authors
    from raw_arxiv__papers
    -- found by row id: the latest versions through `raw_arxiv__papers_latest` carry every payload through its
    -- window (1.3 s a night at 800,000 papers, against 0.4 s)
    where rowid in (
        select rowid from raw_arxiv__papers
        where content_hash not in (select content_hash from _arxiv_paper_facts)
            and (source_key, version) in (select source_key, max(version) from raw_arxiv__papers group by 1)
    )
),

texts as (
    select
        content_hash,
        texts[1] as title,
        texts[2] as abstract,
        texts[3] as comment,
        authors,
        coalesce(texts[1], '') || ' ' || coalesce(texts[2], '') as sentences,
        coalesce(texts[2], '') || ' ' || coalesce(texts[3], '') as link_text
    from missing
)

-- the joined texts only decide `needs_python`: kept, they tripled the text the table and its sort carry (32.8 -> 16.5 s
-- for 800,000 papers under the rebuild's 2GB memory limit)
select
    * exclude (sentences, link_text),
    (row_number() over (partition by needs_python order by content_hash) - 1) // $batch as batch
from (
select
    *,
    -- a CASE runs each test only on the papers the tests before it left undecided, where an OR runs every test
    -- on every paper; printable ASCII is tested text by text, as the joined texts hold the abstract twice
    case
        when regexp_matches(sentences, $candidate) then true
        when regexp_matches(link_text, $link_cue) then true
        when not regexp_matches(coalesce(title, ''), $plain) then true
        when not regexp_matches(coalesce(abstract, ''), $plain) then true
        when not regexp_matches(coalesce(comment, ''), $plain) then true
        when regexp_matches(array_to_string(authors, ' '), $mojibake) then true
        when regexp_matches(sentences, $weak) and regexp_matches(sentences, $release_cue) then true
        else false
    end as needs_python
from texts
)
"""


def build_paper_facts(con: duckdb.DuckDBPyConnection, *, processes: int | None = None) -> int:
    """Compute facts for every latest raw payload that has none under the current rules; returns how many.

    Most papers announce no model, link nothing and have clean author names: the prefilter
    (`CANDIDATE_PATTERN`, in DuckDB, on both cores) gives those their facts in one statement, and
    only the rest go through the Python rules, which cost about half a millisecond a paper: in
    batches, on `processes` processes (default: one per core) when there is more than one batch.
    """
    con.execute(CREATE_FACTS)
    con.execute(f"delete from {FACTS_TABLE} where rules <> ?", [RULES_VERSION])
    con.execute(_TODO_SQL, {
        "plain": PLAIN_TEXT, "mojibake": MOJIBAKE_SQL, "link_cue": LINK_CUE_SQL, "candidate": CANDIDATE_PATTERN,
        "weak": WEAK_CANDIDATE, "release_cue": RELEASE_CUE_SQL,
        "batch": BATCH,
    })
    con.execute(
        f"insert into {FACTS_TABLE} select content_hash, ?, authors, [], [], false, [], null "
        "from _arxiv_facts_todo where not needs_python",
        [RULES_VERSION],
    )
    plain, computed = con.execute(
        "select count(*) filter (where not needs_python), count(*) from _arxiv_facts_todo"
    ).fetchone()
    batches = (computed - plain + BATCH - 1) // BATCH
    _classify_batches(con, batches, min(processes or _cores(), batches))
    con.execute("drop table _arxiv_facts_todo")
    if computed:
        logger.info(
            "arxiv: classified %s new or changed papers (%s by the prefilter alone, %s by the Python rules)",
            f"{computed:,}", f"{plain:,}", f"{computed - plain:,}",
        )
    return computed


def _classify_batches(con: duckdb.DuckDBPyConnection, batches: int, processes: int) -> None:
    """Each batch of `_arxiv_facts_todo` that needs Python through the rules, and its facts stored.

    With more than one process, batches go to fresh (`spawn`ed) processes while this one reads the
    next batch and stores the finished ones: a first build's 376,000 Python papers at Hub scale take
    two thirds of the time on two cores (215 -> 140 s). At most one batch per process waits, so memory stays a few batches.
    A night's thousand papers are one batch, classified here without starting a process. As with any
    `spawn` pool, a script that rebuilds must guard its entry point (`if __name__ == "__main__"`), as
    `census` and the benchmarks do: each new process imports the script's main module again.
    """
    if processes <= 1:
        for batch in range(batches):
            _store_facts(con, classify_rows(_batch_rows(con, batch)))
        return
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        waiting: deque[Future[list[str]]] = deque()
        for batch in range(batches):
            waiting.append(pool.submit(classify_rows, _batch_rows(con, batch)))
            if len(waiting) > processes:
                _store_facts(con, waiting.popleft().result())
        for facts in waiting:
            _store_facts(con, facts.result())


def _cores() -> int:
    """Cores this process may run on (its affinity where the platform tells, as in containers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _batch_rows(con: duckdb.DuckDBPyConnection, batch: int) -> list[tuple]:
    return con.execute(
        "select content_hash, title, abstract, comment, authors from _arxiv_facts_todo "
        "where needs_python and batch = ? order by content_hash",
        [batch],
    ).fetchall()


def classify_rows(rows: list[tuple]) -> list[str]:
    """`paper_facts` of each (content_hash, title, abstract, comment, authors) row, with its hash, as JSON text: what
    a process runs. Text is what costs least to send back and to insert (`_store_facts`): the process that
    stores the facts shares the cores with the ones that compute them."""
    return [
        orjson.dumps({"content_hash": content_hash, **paper_facts(title, abstract, comment, authors)}).decode()
        for content_hash, title, abstract, comment, authors in rows
    ]


def _store_facts(con: duckdb.DuckDBPyConnection, facts: list[str]) -> None:
    con.execute(STORE_FACTS, {"facts": facts, "rules": RULES_VERSION, "structure": FACT_STRUCTURE})
