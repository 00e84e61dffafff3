"""The benchmarks of issue 10 at tiny sizes, so they cannot rot: each runs, and its counts reconcile."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bench import synthetic
from sources import arxiv, epoch, paperswithcode
from sources.huggingface import parse_page
from sources.records import RawRecord

ROOT = Path(__file__).resolve().parents[1]
DLT_PYTHON = ROOT / "bench" / ".venv-dlt" / "bin" / "python"


@pytest.fixture(scope="module")
def quick_ingest() -> dict:
    """One `--quick` run of the ingest benchmark (2,000 records in pages of 500, then 3,000), dlt append if installed."""
    modes = "append" if DLT_PYTHON.exists() else ""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest_throughput.py"), "--quick", "--dlt-modes", modes],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    last = completed.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    return json.loads(last.removeprefix("RESULT "))


def test_every_loader_lands_every_record_served(quick_ingest: dict) -> None:
    runs = quick_ingest["runs"]
    for name in ("ours", "read_json", "model_info", "ours_at_3000"):
        (result,) = runs[name]
        assert result["rows"] == result["keys"] == result["records"], name
        assert result["records_per_second"] > 0 and 0 < result["peak_rss_mb"] < 2_000
    assert runs["ours"][0]["records"] == 2_000 and runs["ours"][0]["requests"] == 4  # 4 pages of 500, one GET each
    assert runs["ours_at_3000"][0]["requests"] == 6
    assert quick_ingest["ratios"]["ours_over_read_json"] > 0


def test_the_dlt_baseline_lands_the_same_records(quick_ingest: dict) -> None:
    if not quick_ingest["dlt"]:
        pytest.skip("no bench/.venv-dlt: create it with bench/make_dlt_venv.sh to run the dlt baseline")
    (result,) = quick_ingest["runs"]["dlt_append"]
    assert result["rows"] == result["keys"] == 2_000
    assert quick_ingest["ratios"]["ours_over_dlt_append"] > 0


def test_hub_pages_are_deterministic_prefixes_newest_first() -> None:
    shape = synthetic.HubShape(total=2_500)
    pages = [synthetic.hub_page(number, 1_000, shape) for number in range(3)]
    assert synthetic.hub_page(1, 1_000, synthetic.HubShape(total=9_000)) == pages[1]  # a larger set extends it
    assert [len(page) for page in pages] == [1_000, 1_000, 500]
    records = [record for page in pages for record in page]
    assert len({record["id"] for record in records}) == len(records)
    created = [record["createdAt"] for record in records]
    assert created == sorted(created, reverse=True) and len(set(created)) == len(created)


def test_hub_records_parse_as_the_source_parses_the_listing() -> None:
    page = synthetic.hub_page(0, 1_000, synthetic.HubShape())
    items, created = parse_page(json.dumps(page).encode("utf-8"), "http://127.0.0.1/api/models")
    assert all(isinstance(item, RawRecord) for item in items) and None not in created
    tags = [tag for record in page for tag in record["tags"]]
    for kind in ("finetune", "adapter", "quantized"):
        assert any(tag.startswith(f"base_model:{kind}:") for tag in tags), kind
    assert any(tag.startswith("arxiv:") for tag in tags)
    assert sum(record["likes"] == 0 for record in page) > len(page) / 2  # most repos have no like


def test_arxiv_pages_parse_and_ids_are_unique() -> None:
    feeds = list(synthetic.iter_arxiv_feeds(250, page_size=100))
    pages = [arxiv.parse_feed(feed, "http://127.0.0.1/api/query") for feed in feeds]
    assert [len(page.items) for page in pages] == [100, 100, 50]
    assert all(page.total == 250 for page in pages)
    keys = [item.key for page in pages for item in page.items]
    assert len(set(keys)) == 250 and keys[0] == synthetic.arxiv_id_at(0)


def test_epoch_csv_has_the_real_header_and_every_row_reads() -> None:
    text = synthetic.epoch_csv(200)
    assert text.splitlines()[0].split(",")[:3] == ["Model", "Organization", "Publication date"]
    records = list(epoch.read_csv(io.BytesIO(text.encode("utf-8")), "notable_ai_models.csv"))
    assert len(records) == 200 and all(isinstance(record, RawRecord) for record in records)


def test_pwc_results_cite_papers_that_exist() -> None:
    pages = list(synthetic.iter_pwc_results(500, page_size=100))
    rows = [row for page in pages for row in page]
    assert len(rows) == 500 and all(len(page) <= 100 for page in pages)
    papers = [paper for page in synthetic.iter_pwc_papers(int(rows[-1]["paper_id"])) for paper in page]
    assert {row["paper_id"] for row in rows} <= {paper["id"] for paper in papers}
    assert all(isinstance(paperswithcode.paper_record(paper), RawRecord) for paper in papers)
    assert all(datetime.strptime(paper["published"], "%Y-%m-%d") for paper in papers)
