"""Peak memory and speed of a 100,000-model Hub ingest from a local server (issue 3: under 300 MB).

The local Hub (the demo's replay of the listing, cursor paging by `Link` header, 1,000 a page) runs
in this process; each measured ingest runs in a child process of its own, into a fresh DuckDB file,
and reports its own peak RSS, so the server's memory is never counted. Prints the medians of 3 runs.

    /tmp/venv/bin/python bench/hf_ingest_memory.py [--models 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "huggingface"
NOW = datetime(2026, 9, 28, 12, 0, tzinfo=timezone.utc)


def models(count: int) -> list[dict]:
    """`count` records shaped like the fixtures (the real slice and the fully expanded ones), a minute apart."""
    templates = []
    for name in ("api_models_page_2026-09-28_from_slice.json", "api_models_expanded_constructed.json"):
        templates += json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    out = []
    for index in range(count):
        model = dict(templates[index % len(templates)])
        model["id"] = f"{model['id']}-{index}"
        model["createdAt"] = (NOW - timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        out.append(model)
    return out


def child(url: str, database: str, count: int) -> None:
    """One measured ingest: a first nightly run whose look-back covers every model."""
    from flows.ingest import IngestRun, Window
    from flows.ingest_huggingface import ingest_with
    from flows.settings import Settings
    from sources.huggingface import HubListing
    from warehouse.connection import open_work_db

    con = open_work_db(Path(database))
    run = IngestRun(con, "huggingface", "bench")
    days = count // (24 * 60) + 2
    started = time.perf_counter()
    ingest_with(run, Settings(hf_url=url, hf_lookback_days=days, hf_max_requests=10_000), Window(),
                HubListing(url, max_requests=10_000), now=NOW)
    seconds = time.perf_counter() - started
    con.close()
    print(json.dumps({"landed": run.counts.new, "requests": run.requests, "seconds": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("URL", "DB", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    from flows.demo_huggingface import HubReplay
    from flows.replay_server import ReplayServer

    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": tempfile.mkdtemp(prefix="bench-hf-")}
    results = []
    with ReplayServer(Path("/nonexistent"), HubReplay(models(args.models)).routes()) as server:
        for number in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                output = subprocess.run(
                    [sys.executable, __file__, "--child", server.url, str(Path(folder) / "bench.duckdb"), str(args.models)],
                    cwd=ROOT, env=env, check=True, capture_output=True, text=True,
                ).stdout
            result = json.loads(output.strip().splitlines()[-1])
            results.append(result)
            print(f"run {number + 1}: {result['landed']:,} models, {result['requests']} requests, "
                  f"{result['seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    rate = statistics.median(r["landed"] / r["seconds"] for r in results)
    peak = statistics.median(r["peak_rss_mb"] for r in results)
    print(f"median of {len(results)}: peak RSS {peak:.0f} MB, {rate:,.0f} records/s "
          f"(server in the parent process, not counted)")


if __name__ == "__main__":
    main()
