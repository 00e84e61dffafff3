"""What Python knows about each arXiv paper that SQL cannot say: repaired author names, links, model verdict.

DuckDB runs Python functions only with numpy installed, which this project does not ship, so the
facts are computed here and stored in `_arxiv_paper_facts`, one row per distinct raw payload
(content hash), which `stg_arxiv__papers.sql` joins. Only payloads without facts are computed, so a
nightly rebuild classifies the day's new papers, not all of them again. The rules' own source code
is part of the key: editing `transforms/model_papers.py` or this module recomputes every paper,
so a rule fix reaches history without refetching. The table starts with `_`, so it is not published.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import sys

import duckdb

from transforms import model_papers
from transforms.model_papers import classify_paper, find_links

logger = logging.getLogger(__name__)

FACTS_TABLE = "_arxiv_paper_facts"
MOJIBAKE_MARKERS = frozenset("ÃÂÄÅÆÐÑØâ")
"""First characters of UTF-8 multi-byte sequences read as Latin-1 or Windows-1252 (`Ã¼` for `ü`)."""
BATCH = 20_000
FACT_COLUMNS = ("authors", "code_urls", "hf_urls", "is_model_paper", "announced_models", "model_evidence")


def rules_version() -> str:
    """A digest of the rules' source: any edit to them invalidates every stored verdict."""
    source = inspect.getsource(model_papers) + inspect.getsource(sys.modules[__name__])
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


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
    verdict = classify_paper(title, abstract, comment)
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


def build_paper_facts(con: duckdb.DuckDBPyConnection) -> int:
    """Compute facts for every latest raw payload that has none under the current rules; returns how many."""
    version = rules_version()
    con.execute(
        f"create table if not exists {FACTS_TABLE} (content_hash varchar not null, rules varchar not null, "
        "authors varchar[], code_urls varchar[], hf_urls varchar[], is_model_paper boolean not null, "
        "announced_models varchar[], model_evidence varchar, primary key (content_hash, rules))"
    )
    con.execute(f"delete from {FACTS_TABLE} where rules <> ?", [version])
    missing = [row[0] for row in con.execute(
        f"select content_hash from raw_arxiv__papers_latest "
        f"where content_hash not in (select content_hash from {FACTS_TABLE})"
    ).fetchall()]
    for first in range(0, len(missing), BATCH):
        rows = con.execute(
            """
            select
                content_hash,
                payload ->> '$.title[0]',
                payload ->> '$.summary[0]',
                payload ->> '$."arxiv:comment"[0]',
                coalesce(json_extract_string(payload, '$.author[*].name[0]'), [])
            from raw_arxiv__papers_latest
            where content_hash in (select unnest($hashes))
            """,
            {"hashes": missing[first : first + BATCH]},
        ).fetchall()
        facts = [paper_facts(title, abstract, comment, authors) for _, title, abstract, comment, authors in rows]
        con.execute(
            f"insert into {FACTS_TABLE} select unnest($hashes), $rules, unnest($authors::varchar[][]), "
            "unnest($code_urls::varchar[][]), unnest($hf_urls::varchar[][]), unnest($is_model_paper::boolean[]), "
            "unnest($announced_models::varchar[][]), unnest($model_evidence::varchar[])",
            {"hashes": [row[0] for row in rows], "rules": version,
             **{name: [fact[name] for fact in facts] for name in FACT_COLUMNS}},
        )
    computed = len(missing)
    if computed:
        logger.info("arxiv: classified %s new or changed papers", f"{computed:,}")
    return computed
