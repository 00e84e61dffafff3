"""Issue 10, measurement 2: a full rebuild (staging, releases, views) and publish from raw at Hub scale.

Fills a work warehouse's raw tables with `bench/synthetic.py`'s records (2.5 M Hub models, 800,000
arXiv entries, 3,000 Epoch rows, 100,000 Papers With Code results by default), page by page through
the product's own parsers (`sources.*`) and raw loader (`flows.ingest.IngestRun.land`, that is
`warehouse.raw.land_page`): the ingest minus HTTP, which is measurement 1's business. The filled file
is kept under `--workdir` and reused by later runs and by `bench/nightly_run.py` and
`bench/view_latency.py`.

Then times `transforms.rebuild.rebuild` + `warehouse.publish.publish` in a child process per run
(so each run's peak RSS is its own): once cold (no arXiv facts, no stored releases and no staged
versions yet: a first build, or the first after a rule edit) and `--runs` times warm (nothing new since the last build:
facts and release rows are reused; `bench/nightly_run.py` adds a night's data). Prints per-stage
seconds, medians, peak memory, and checks that two rebuilds give identical release tables.

    .venv/bin/python bench/rebuild_at_scale.py               # full size
    .venv/bin/python bench/rebuild_at_scale.py --scale 0.2   # a fifth of it
    .venv/bin/python bench/rebuild_at_scale.py --quick       # 20,000 Hub models etc., seconds
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from unittest.mock import patch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402
from flows.ingest import IngestRun  # noqa: E402
from flows.settings import Settings  # noqa: E402
from sources import arxiv, epoch, huggingface, paperswithcode  # noqa: E402
from sources.records import RawRecord, Rejected  # noqa: E402
from warehouse.connection import connect, open_work_db  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
DEFAULT_WORKDIR = Path(os.environ.get("TMPDIR", "/tmp")) / "model-census-bench"
RUN_ID = "bench-fill"
ATOM = "{http://www.w3.org/2005/Atom}"
COMPARED_TABLES = ("releases", "release_members", "release_exclusions")


@dataclass(frozen=True)
class Sizes:
    hub: int = synthetic.HUB_RECORDS
    arxiv: int = synthetic.ARXIV_ENTRIES
    epoch: int = synthetic.EPOCH_ROWS
    pwc_results: int = synthetic.PWC_RESULTS

    def label(self) -> str:
        return f"hub{self.hub}-arxiv{self.arxiv}-epoch{self.epoch}-pwc{self.pwc_results}"


QUICK = Sizes(hub=20_000, arxiv=6_000, epoch=300, pwc_results=2_000)


def sizes_for(quick: bool, scale: float) -> Sizes:
    """The quick sizes, or the issue's full sizes times `scale` (Epoch's 3,000 rows stay whole)."""
    if quick:
        return QUICK
    full = Sizes()
    return Sizes(hub=round(full.hub * scale), arxiv=round(full.arxiv * scale), epoch=full.epoch,
                 pwc_results=round(full.pwc_results * scale))


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """`--quick` and `--scale`, shared by the three benchmarks so they find each other's files."""
    parser.add_argument("--quick", action="store_true", help=f"small sizes ({QUICK.label()})")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the issue's sizes (default 1: 2.5 M Hub models, 800,000 papers)")


# --- filling raw ---------------------------------------------------------------------------------------------


def real_abstracts() -> list[str]:
    """Abstracts of the genuine arXiv answers in the fixtures (an API search and an RSS announcement day).

    The generator's abstracts are random words that announce nothing and link nothing, so the model-
    paper rules would never have to read one; real ones do (about 45% need the Python rules), so the
    benchmark swaps them in, round robin, to cost what a real backfill costs.
    """
    texts = []
    for path in sorted((FIXTURES / "arxiv").glob("api_query_search-*.xml")):
        texts += [entry.findtext(f"{ATOM}summary") or "" for entry in ET.parse(path).getroot().iter(f"{ATOM}entry")]
    rss = ET.parse(FIXTURES / "arxiv" / "rss_cs.LG_2026-08-20_announcement.xml").getroot()
    texts += [(item.findtext("description") or "").split("Abstract:", 1)[-1] for item in rss.iter("item")]
    return [text for text in texts if text.strip()]


def with_real_abstract(item: RawRecord | Rejected, abstracts: list[str], index: int) -> RawRecord | Rejected:
    """The record with a real abstract in place of the synthetic one (same key, same shape)."""
    if not isinstance(item, RawRecord):
        return item
    payload = json.loads(item.payload)
    payload["summary"] = [abstracts[index % len(abstracts)]]
    return RawRecord(item.key, json.dumps(payload, ensure_ascii=False))


def fill(path: Path, sizes: Sizes, *, log=print) -> None:
    """Land every synthetic record in a new work warehouse at `path`, a page per transaction."""
    path.unlink(missing_ok=True)
    con = open_work_db(path)
    try:
        started = time.perf_counter()
        hub = IngestRun(con, "huggingface", RUN_ID)
        for number, page in enumerate(synthetic.iter_hub_pages(sizes.hub, arxiv_entries=sizes.arxiv)):
            parsed = huggingface.parse_page(json.dumps(page, ensure_ascii=False).encode("utf-8"), "synthetic://hub")
            hub.land("raw_huggingface__models", parsed[0])
            if number % 250 == 0:
                log(f"  hub: {hub.counts.fetched:,} landed, {time.perf_counter() - started:.0f}s")
        abstracts = real_abstracts()
        papers = IngestRun(con, "arxiv", RUN_ID)
        for feed in synthetic.iter_arxiv_feeds(sizes.arxiv):
            items = arxiv.parse_feed(feed, "synthetic://arxiv").items
            papers.land("raw_arxiv__papers", [with_real_abstract(item, abstracts, papers.counts.fetched + offset)
                                              for offset, item in enumerate(items)])
        log(f"  arxiv: {papers.counts.fetched:,} landed, {time.perf_counter() - started:.0f}s")
        models = IngestRun(con, "epoch", RUN_ID)
        rows = epoch.read_records(io.BytesIO(synthetic.epoch_csv(sizes.epoch).encode("utf-8")), "synthetic://epoch/models.csv")
        while page := list(islice(rows, 1_000)):
            models.land("raw_epoch__models", page)
        catalog = IngestRun(con, "paperswithcode", RUN_ID)
        last_paper = 0
        for page in synthetic.iter_pwc_results(sizes.pwc_results):
            # the ingest's own keying of an evaluation row (`api:<paper id>#<row id>`)
            catalog.land("raw_paperswithcode__results",
                         [paperswithcode._evaluation_record(row["paper_id"], row) for row in page])
            last_paper = max(last_paper, *(int(row["paper_id"]) for row in page))
        for page in synthetic.iter_pwc_papers(last_paper):
            catalog.land("raw_paperswithcode__papers", [paperswithcode.paper_record(item) for item in page])
        log(f"  epoch {models.counts.fetched:,}, pwc {catalog.counts.fetched:,} landed, {time.perf_counter() - started:.0f}s")
        con.execute("checkpoint")
    finally:
        con.close()


def filled(workdir: Path, sizes: Sizes, *, log=print) -> Path:
    """The filled raw warehouse for these sizes, filling it the first time (minutes at full size)."""
    path = workdir / f"raw-{sizes.label()}.duckdb"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        log(f"filling {path} (once; later runs reuse it)")
        partial = path.with_suffix(".filling")
        fill(partial, sizes, log=log)
        os.replace(partial, path)
    return path


# --- one timed rebuild, in its own process -------------------------------------------------------------------


def timed_rebuild(work: Path, published: Path, *, cold: bool, duckdb_memory_limit: str | None = None) -> dict[str, object]:
    """Rebuild and publish `work` once; seconds per stage, peak RSS of this process, row counts, table digests."""
    from transforms import arxiv_facts, build_releases, keyed_staging, rebuild as rebuild_module
    from warehouse.publish import publish

    stages: dict[str, float] = {}

    def timing(patches: ExitStack, module, name: str, label) -> None:
        """Time every call of `module.name` into `stages` while `patches` is open; the original comes back after."""
        original = getattr(module, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = label(*args)
                stages[key] = stages.get(key, 0.0) + time.perf_counter() - started

        patches.enter_context(patch.object(module, name, timed))

    con = connect(work)
    if duckdb_memory_limit:
        con.execute("set memory_limit = ?", [duckdb_memory_limit])
    if cold:
        con.execute(f"drop table if exists {arxiv_facts.FACTS_TABLE}")
        con.execute(f"drop table if exists {build_releases.RULES_TABLE}")
        con.execute(f"drop table if exists {keyed_staging.RULES_TABLE}")  # the large staging tables staged whole
    with ExitStack() as patches:
        timing(patches, rebuild_module, "build_paper_facts", lambda *a: "arxiv facts (Python rules)")
        timing(patches, rebuild_module, "_build_table", lambda con, layer, name: f"{layer} {name}")
        timing(patches, rebuild_module, "stage_keyed", lambda con, model: f"staging {model.name}")
        timing(patches, build_releases, "read_members", lambda *a: "releases: read members")
        timing(patches, build_releases, "stored_releases", lambda *a: "releases: read stored digests")
        # includes reading the changed and regrouped members, also counted under "read members"
        timing(patches, build_releases, "_regroup", lambda *a: "releases: find the clusters to regroup")
        timing(patches, build_releases, "_delete", lambda con, table, *a: f"releases: delete changed {table}")
        timing(patches, build_releases, "build_releases", lambda *a: "releases: match and label (Python)")
        # each chunk's text is written while the chunk before it is inserted (`build_releases.Inserts`)
        timing(patches, build_releases, "_write_rows", lambda *a: "releases: write the tables (text and inserts)")
        started = time.perf_counter()
        built = rebuild_module.rebuild(con)
        rebuilt = time.perf_counter()
        publish(con, published)
        finished = time.perf_counter()
    digests = {
        table: hashlib.sha256(repr(con.execute(f"select * from {table} order by all").fetchall()).encode()).hexdigest()[:16]
        for table in COMPARED_TABLES
    }
    con.close()
    return {
        "cold": cold,
        "rebuild_s": rebuilt - started,
        "publish_s": finished - rebuilt,
        "total_s": finished - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stages": stages,
        "rows": {f"{b.layer} {b.name}": b.rows for b in built},
        "digests": digests,
    }


def run_child(work: Path, published: Path, *, cold: bool, max_memory_gb: float, duckdb_memory_limit: str | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", str(work), "--published", str(published),
               "--max-memory-gb", str(max_memory_gb)] + (["--cold"] if cold else [])
    if duckdb_memory_limit:
        command += ["--duckdb-memory-limit", duckdb_memory_limit]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rebuild run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser)
    parser.add_argument("--runs", type=int, default=3, help="warm rebuilds to take the median of (default 3)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--published", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-memory-gb", type=float, default=20.0,
                        help="address-space cap of each rebuild process, so a run too big for the machine fails "
                             "with MemoryError instead of pushing other work out of memory (default 20: a first build "
                             "at full size peaks at 13.4 GB resident and needs a little over 16 GB of address space)")
    parser.add_argument("--duckdb-memory-limit", default=Settings.model_fields["rebuild_memory_limit"].default,
                        help="DuckDB's `memory_limit` for the rebuild (default: the pipeline's, "
                             "MODEL_CENSUS_REBUILD_MEMORY_LIMIT's default)")
    args = parser.parse_args(argv)
    if args.child:
        cap = int(args.max_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(json.dumps(timed_rebuild(args.child, args.published, cold=args.cold,
                                        duckdb_memory_limit=args.duckdb_memory_limit)))
        return 0

    sizes = sizes_for(args.quick, args.scale)
    raw = filled(args.workdir, sizes)
    work = args.workdir / f"rebuild-{sizes.label()}.work.duckdb"
    published = args.workdir / f"rebuild-{sizes.label()}.duckdb"
    shutil.copyfile(raw, work)
    print(f"raw: {raw} ({raw.stat().st_size / 1e6:,.0f} MB); load average before: {load_average()}")
    results = [run_child(work, published, cold=True, max_memory_gb=args.max_memory_gb,
                         duckdb_memory_limit=args.duckdb_memory_limit)]
    print(report_line(results[0]))
    for _ in range(args.runs):
        results.append(run_child(work, published, cold=False, max_memory_gb=args.max_memory_gb,
                                  duckdb_memory_limit=args.duckdb_memory_limit))
        print(report_line(results[-1]))
    warm = results[1:]
    print(f"load average after: {load_average()}")
    print("rows: " + ", ".join(f"{name} {rows:,}" for name, rows in results[0]["rows"].items()))
    print("where the time goes (cold run): " + stage_summary(results[0]))
    if len(results) > 1:
        print("where the time goes (warm, last run): " + stage_summary(results[-1]))
    identical = all(result["digests"] == results[0]["digests"] for result in results)
    print(f"identical release tables across {len(results)} rebuilds: {identical}")
    summary = f"cold: rebuild+publish {results[0]['total_s']:.1f}s, peak {results[0]['peak_rss_mb']:,.0f} MB"
    if warm:
        summary += (
            f"; warm median of {len(warm)}: {statistics.median(r['total_s'] for r in warm):.1f}s "
            f"(rebuild {statistics.median(r['rebuild_s'] for r in warm):.1f}s, "
            f"publish {statistics.median(r['publish_s'] for r in warm):.1f}s), "
            f"peak {statistics.median(r['peak_rss_mb'] for r in warm):,.0f} MB"
        )
    print(summary + "; target 60 s")
    return 0 if identical else 1


def report_line(result: dict[str, object]) -> str:
    kind = "cold" if result["cold"] else "warm"
    return (f"  {kind}: rebuild {result['rebuild_s']:.1f}s + publish {result['publish_s']:.1f}s = "
            f"{result['total_s']:.1f}s, peak RSS {result['peak_rss_mb']:,.0f} MB")


def stage_summary(result: dict[str, object]) -> str:
    stages = sorted(result["stages"].items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in stages if seconds >= 0.05)


if __name__ == "__main__":
    sys.exit(main())
