"""The rebuild and view-latency benchmarks at a tiny size: they run, and their counts reconcile.

`bench/rebuild_at_scale.py` fills raw through the sources' parsers and the raw loader, then rebuilds
and publishes; every synthetic record must arrive where the benchmark claims it does, or its timings
would be of the wrong work. `bench/nightly_run.py` is left to its own `--quick` run: it starts
Prefect's temporary server, which alone takes longer than this whole file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import transforms.arxiv_facts
import transforms.rebuild
from bench import rebuild_at_scale, synthetic
from bench.view_latency import view_latencies
from transforms.rebuild import VIEWS
from warehouse.connection import connect

TINY = rebuild_at_scale.Sizes(hub=2_000, arxiv=600, epoch=50, pwc_results=300)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rebuild_at_scale.filled(tmp_path_factory.mktemp("bench"), TINY, log=lambda line: None)


def test_every_synthetic_record_lands_in_raw(raw: Path) -> None:
    con = connect(raw, read_only=True)
    landed = {table: con.execute(f"select count(*) from {table}").fetchone()[0]
              for table in ("raw_huggingface__models", "raw_arxiv__papers", "raw_epoch__models", "raw_paperswithcode__results")}
    papers = con.execute("select count(*) from raw_paperswithcode__papers").fetchone()[0]
    con.close()
    highest_paper = max(int(row["paper_id"]) for page in synthetic.iter_pwc_results(TINY.pwc_results) for row in page)
    assert landed == {"raw_huggingface__models": TINY.hub, "raw_arxiv__papers": TINY.arxiv,
                      "raw_epoch__models": TINY.epoch, "raw_paperswithcode__results": TINY.pwc_results}
    assert papers == highest_paper


def test_a_timed_rebuild_accounts_for_every_repo_and_repeats_itself(raw: Path, tmp_path: Path) -> None:
    work = tmp_path / "work.duckdb"
    work.write_bytes(raw.read_bytes())

    cold = rebuild_at_scale.timed_rebuild(work, tmp_path / "published.duckdb", cold=True)
    warm = rebuild_at_scale.timed_rebuild(work, tmp_path / "published.duckdb", cold=False)

    assert cold["rows"]["staging stg_huggingface__models"] == TINY.hub
    assert cold["rows"]["staging stg_arxiv__papers"] == TINY.arxiv
    con = connect(tmp_path / "published.duckdb", read_only=True)
    hub_members = con.execute("select count(*) from release_members where source = 'huggingface'").fetchone()[0]
    excluded = con.execute("select count(*) from release_exclusions where source = 'huggingface'").fetchone()[0]
    con.close()
    assert hub_members + excluded == TINY.hub  # each repo is a release's member or excluded, with its reason
    assert cold["stages"]["arxiv facts (Python rules)"] > warm["stages"]["arxiv facts (Python rules)"]
    assert cold["digests"] == warm["digests"]
    assert cold["total_s"] >= cold["rebuild_s"] > 0 and cold["peak_rss_mb"] > 0
    assert transforms.rebuild.build_paper_facts is transforms.arxiv_facts.build_paper_facts, "timing wrappers removed"


def test_view_latency_times_every_view_of_the_published_file(raw: Path, tmp_path: Path) -> None:
    work = tmp_path / "work.duckdb"
    work.write_bytes(raw.read_bytes())
    rebuild_at_scale.timed_rebuild(work, tmp_path / "published.duckdb", cold=True)

    measured = view_latencies(tmp_path / "published.duckdb", runs=2)

    assert [view for view, *_ in measured] == list(VIEWS)
    assert all(rows > 0 and 0 < median <= slowest and inside > 0 for _, rows, median, slowest, inside in measured)
