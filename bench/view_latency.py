"""Issue 10, measurement 4: how long each analyst view takes on the published warehouse at Hub scale.

Opens the file `bench/rebuild_at_scale.py` published (run it first, at the same size) read-only, as
an analyst does, and times `select * from <view>` with every row fetched into Python, for each view
of `transforms.rebuild.VIEWS`: one untimed warm-up query (DuckDB reads the file's blocks on first
use), then the median of `--runs`. A fresh process and connection; the machine's other load is
printed with the figures.

    .venv/bin/python bench/view_latency.py            # on the full-size warehouse
    .venv/bin/python bench/view_latency.py --quick    # on the quick one (`--scale 0.2`: on the fifth)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.rebuild_at_scale import DEFAULT_WORKDIR, add_size_options, load_average, sizes_for  # noqa: E402
from transforms.rebuild import VIEWS  # noqa: E402
from warehouse.connection import connect  # noqa: E402

TARGET_MS = 200.0


def view_latencies(published: Path, runs: int) -> list[tuple[str, int, float, float, float]]:
    """(view, rows, median ms, slowest ms, median ms inside DuckDB) per analyst view.

    The first three time `select *` with every row fetched into Python, as an analyst's script
    gets them; the last computes every column of every row (each hashed and summed) without
    moving rows to Python, to tell the query's own cost from the transfer of a long result."""
    con = connect(published, read_only=True)
    try:
        measured = []
        for view in VIEWS:
            query = f"select * from {view}"
            inside = f"select sum(hash(columns(*))) from {view}"
            rows = len(con.execute(query).fetchall())  # warm-up: the first read of the file's blocks
            fetched, computed = [], []
            for _ in range(runs):
                started = time.perf_counter()
                con.execute(query).fetchall()
                fetched.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                con.execute(inside).fetchall()
                computed.append((time.perf_counter() - started) * 1000)
            measured.append((view, rows, statistics.median(fetched), max(fetched), statistics.median(computed)))
        return measured
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    sizes = sizes_for(args.quick, args.scale)
    published = args.workdir / f"rebuild-{sizes.label()}.duckdb"
    if not published.exists():
        print(f"{published} is missing: run bench/rebuild_at_scale.py{' --quick' if args.quick else ''} first",
              file=sys.stderr)
        return 2
    con = connect(published, read_only=True)
    releases = con.execute("select count(*) from releases").fetchone()[0]
    con.close()
    print(f"published warehouse: {published} ({published.stat().st_size / 1e6:,.0f} MB, {releases:,} releases); "
          f"load average {load_average()}")
    measured = view_latencies(published, args.runs)
    for view, rows, median, slowest, inside in measured:
        print(f"  {view:<28} {rows:>8,} rows  fetched: median {median:7.1f} ms, slowest {slowest:7.1f} ms;"
              f"  in DuckDB only: median {inside:6.1f} ms")
    worst = max(median for _, _, median, _, _ in measured)
    print(f"slowest view median {worst:.1f} ms of {args.runs} runs; target {TARGET_MS:.0f} ms each; "
          f"load average {load_average()}")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
