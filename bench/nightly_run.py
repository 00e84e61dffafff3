"""Issue 10, measurement 3: one night of the real pipeline on top of a Hub-scale warehouse.

The night's new data (5,000 Hub models created in the last hours, 1,000 arXiv papers submitted
today, and Epoch's unchanged file) is served over loopback HTTP in the sources' real formats by the
demo's replays (`flows.demo_huggingface.HubReplay`, `flows.demo_arxiv.ArxivReplay`, the replay
server's static files), built from `bench/synthetic.py` records; the network is thereby excluded,
and arXiv's 3-second politeness delay is set to 0. The warehouse under it is the full-scale one
`bench/rebuild_at_scale.py` filled and rebuilt (it must have run first, at the same size).

Each run copies that warehouse and the file it last published (the night's publish updates that
copy, as a nightly run finds the one it published the night before), then runs `census run --source
huggingface --source arxiv --source epoch` as a subprocess, exactly as cron would: Python start-up,
Prefect's temporary local server, the flow (ingest, rebuild, publish, report artifact), shutdown. The
runs share one Prefect home whose database is created before the first (`prefect server database
upgrade`), as every night after a deployment's first finds it: creating it and running its migrations
takes the temporary server 6 to 7 s more, once. Reported: the whole command's wall time, and the flow
alone (from Prefect's "Beginning flow run" to its final state, read from the log), medians of `--runs`;
the child's peak RSS.

`--prefect-server running` runs the nights against a Prefect server started once before them (not timed),
as the nightly deployment's runs find the server their worker talks to (README, "Running it for real"):
`census run` then starts no temporary server of its own.

`--in-a-row` times the nights that follow other nights rather than the first one after the backfill: the
warehouse is copied once, a first night runs on it untimed, then `--runs` nights in a row, each with Hub
models and papers of its own, created in the hours before it starts. The first night on a fresh copy of the
full-size warehouse is slower in every stage, ingest, rebuild and publish alike (docs/PERFORMANCE.md); why is
not established (syncing the copy to disk before the night did not change it), and no later night is.
Each night's peak RSS is that of its own `census run` and the processes it waited for.

    .venv/bin/python bench/nightly_run.py            # on the full-size warehouse
    .venv/bin/python bench/nightly_run.py --quick    # on the quick one (`--scale 0.2`: on the fifth)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402
from bench.rebuild_at_scale import DEFAULT_WORKDIR, add_size_options, load_average, sizes_for, real_abstracts  # noqa: E402
from flows import OUR_LOGGERS  # noqa: E402
from flows.demo_arxiv import ArxivReplay, ReplayEntry  # noqa: E402
from flows.demo_huggingface import HubReplay  # noqa: E402
from flows.replay_server import ReplayServer  # noqa: E402

SOURCES = ("huggingface", "arxiv", "epoch")
"""The sources with a night's volume, and Epoch's daily file; Papers With Code and the Open LLM
Leaderboard archives have no synthetic night of their own and are left out."""
NEW_HUB_MODELS = synthetic.HUB_PER_DAY
NEW_PAPERS = synthetic.ARXIV_PER_DAY
_SUMMARY = re.compile(r"<summary>.*?</summary>", re.S)
_LOG_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \|")


def new_hub_models(count: int, now: datetime, arxiv_entries: int, night: int = 0) -> list[dict]:
    """`count` Hub records created in the hours before `now`, newest first, as the listing returns them; the
    `night`-th of nights in a row gets repo ids no other night has."""
    shape = synthetic.HubShape(total=count, per_day=synthetic.HUB_PER_DAY, arxiv_entries=arxiv_entries,
                               seed=synthetic.SEED + 1 + night, newest=now - timedelta(minutes=5))
    pages = (synthetic.hub_page(number, synthetic.HUB_PAGE, shape) for number in range(-(-count // synthetic.HUB_PAGE)))
    suffix = f"-night{night}" if night else ""
    return [{**model, "id": model["id"] + suffix} if suffix else model for page in pages for model in page]


def new_papers(count: int, now: datetime, night: int = 0) -> list[ReplayEntry]:
    """`count` arXiv entries submitted today, with ids no earlier night has (nor, for the `night`-th of nights in a
    row, another of them), and real abstracts (see rebuild_at_scale)."""
    if count > 1_000:
        raise ValueError(f"{count:,} papers: a night's ids are 1,000 numbers of its own")
    abstracts = real_abstracts()
    entries = []
    for index in range(count):
        text = synthetic.arxiv_entry(index, synthetic.SEED + 1) + "\n"
        text = _SUMMARY.sub(lambda _: f"<summary>{escape(abstracts[index % len(abstracts)])}</summary>", text, count=1)
        entry = ReplayEntry.parse(text)
        published = now - timedelta(minutes=5, seconds=index * 86_400 / max(count, 1) / 2)
        entries.append(entry.copy_as(f"{now:%y%m}.{90_000 - night * 1_000 + index:05d}", published, entry.categories[0]))
    return entries


def night_environment(base_url: str, db: Path, prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """Settings pointing every benchmarked source at the local server; Prefect private and quiet, talking to
    `api_url` if given (else `census run` starts a temporary server)."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("MODEL_CENSUS_", "PREFECT_")) and key not in ("HF_TOKEN", "HF_ENDPOINT")}
    environment.update({
        "MODEL_CENSUS_DB": str(db),
        "MODEL_CENSUS_HF_URL": f"{base_url}/huggingface",
        "MODEL_CENSUS_ARXIV_URL": f"{base_url}/arxiv/api/query",
        "MODEL_CENSUS_ARXIV_RSS_URL": f"{base_url}/arxiv/rss/",
        "MODEL_CENSUS_ARXIV_DELAY_SECONDS": "0",
        "MODEL_CENSUS_EPOCH_URL": f"{base_url}/epoch/models.csv",
        "MODEL_CENSUS_TASK_RETRIES": "0",
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # a loaded 2-core machine can take longer than the default 20 s to start the temporary server
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(OUR_LOGGERS),
        "DO_NOT_TRACK": "1",
        "HF_HOME": str(prefect_home / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    })
    if api_url is not None:
        environment["PREFECT_API_URL"] = api_url
    return environment


def flow_seconds(log: str) -> tuple[float | None, float | None]:
    """(server start-up, flow) seconds from Prefect's log lines: temporary server start, flow begin, flow end."""
    def stamp(pattern: str, last: bool = False) -> float | None:
        lines = [line for line in log.splitlines() if re.search(pattern, line) and _LOG_TIME.match(line)]
        if not lines:
            return None
        moment = datetime.strptime(_LOG_TIME.match(lines[-1 if last else 0]).group(1), "%H:%M:%S.%f")
        return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6

    server, begin = stamp(r"Starting temporary server"), stamp(r"Beginning flow run")
    end = stamp(r"Flow run .* - Finished in state", last=True)
    def between(first: float | None, last: float | None) -> float | None:
        return None if first is None or last is None else (last - first) % 86_400  # a night may cross midnight

    return between(server, begin), between(begin, end)


def prefect_environment(home: Path) -> dict[str, str]:
    """The nights' environment for a Prefect command of their home (no source is reached)."""
    return night_environment("http://127.0.0.1:9", home / "unused.duckdb", home)


def prepared_prefect_home(home: Path) -> Path:
    """A Prefect home with its database created and migrated, as a nightly run finds it after the first night."""
    environment = prefect_environment(home)
    subprocess.run([str(ROOT / ".venv" / "bin" / "prefect"), "server", "database", "upgrade", "-y"],
                   env=environment, capture_output=True, check=True)
    return home


@contextmanager
def running_prefect_server(home: Path, timeout_seconds: float = 120) -> Iterator[str]:
    """A Prefect server on a free loopback port, started and healthy before the runs; yields its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/api"
    environment = prefect_environment(home)
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port), "--no-ui"], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not answer on {api_url} (exit code {server.poll()})")
            time.sleep(0.5)
        yield api_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def copy_warehouse(state: Path, published: Path, night: Path) -> None:
    """A fresh copy of the warehouse and its published file in `night`, as a night after the backfill finds them."""
    shutil.rmtree(night, ignore_errors=True)
    (night / "files" / "epoch").mkdir(parents=True)
    shutil.copyfile(state, night / "census.work.duckdb")
    shutil.copyfile(published, night / "census.duckdb")


def one_night(night: Path, prefect_home: Path, epoch_csv: bytes, models: list[dict], papers: list[ReplayEntry],
              failed_log: Path, api_url: str | None = None) -> dict:
    """Serve the night, run `census run` on the warehouse in `night`; seconds, the command's own peak RSS and
    the log's counts (the whole log is kept in `failed_log` if the command fails)."""
    (night / "files" / "epoch" / "models.csv").write_bytes(epoch_csv)
    db = night / "census.duckdb"
    hub = HubReplay(list(models), prefix="/huggingface")
    arxiv = ArxivReplay(list(papers))
    with ReplayServer(night / "files", {**hub.routes(), **arxiv.routes()}) as server:
        environment = night_environment(server.url, db, prefect_home, api_url)
        command = [str(ROOT / ".venv" / "bin" / "census"), "run", *(arg for source in SOURCES for arg in ("--source", source))]
        output_path = night / "census-run.log"
        started = time.perf_counter()
        with output_path.open("wb") as output:
            child = subprocess.Popen(command, env=environment, cwd=night, stdout=output, stderr=subprocess.STDOUT)
            # this command's own peak (with the processes it waited for), not the largest of every night's
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        returncode = os.waitstatus_to_exitcode(status)
    log = output_path.read_text(encoding="utf-8", errors="replace")
    if returncode != 0:
        failed_log.write_text(log, encoding="utf-8")  # the night's folder is temporary; this outlives it
        raise RuntimeError(f"census run exited {returncode} (whole log: {failed_log}):\n{log[-4000:]}")
    startup, flow = flow_seconds(log)
    counts = [line.split(" - ", 1)[-1] for line in log.splitlines()
              if re.search(r"(huggingface|arxiv|epoch): fetched|built curated releases|published .*: \d+ tables", line)]
    return {"wall_s": wall, "startup_s": startup, "flow_s": flow, "peak_rss_mb": usage.ru_maxrss / 1024,
            "counts": counts, "log": log}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--log", type=Path, help="write the last run's full log here")
    parser.add_argument("--in-a-row", action="store_true",
                        help="copy the warehouse once and run an untimed first night, then --runs nights in a row on "
                             "it, each with new models and papers, as the nightly deployment runs night after night "
                             "(default: each run is the first night on a fresh copy)")
    parser.add_argument("--prefect-server", choices=("temporary", "running"), default="temporary",
                        help="temporary: each `census run` starts Prefect's temporary server (the README's command); "
                             "running: one server started before the runs, as a deployment's nightly run finds it")
    args = parser.parse_args(argv)
    sizes = sizes_for(args.quick, args.scale)
    state = args.workdir / f"rebuild-{sizes.label()}.work.duckdb"
    published = args.workdir / f"rebuild-{sizes.label()}.duckdb"
    if not (state.exists() and published.exists()):
        print(f"{state} or {published.name} is missing: run bench/rebuild_at_scale.py{' --quick' if args.quick else ''} first", file=sys.stderr)
        return 2
    now = datetime.now(timezone.utc)
    scale = 10 if args.quick else 1
    epoch_csv = synthetic.epoch_csv(sizes.epoch).encode("utf-8")

    def night_data(number: int, moment: datetime) -> tuple[list[dict], list[ReplayEntry]]:
        """The `number`-th night's new data, created in the hours before `moment`; in a row, with ids of its own."""
        return (new_hub_models(NEW_HUB_MODELS // scale, moment, sizes.arxiv, night=number),
                new_papers(NEW_PAPERS // scale, moment, night=number))

    models, papers = night_data(0, now)
    print(f"warehouse before the night: {state} ({state.stat().st_size / 1e6:,.0f} MB); "
          f"the night: {len(models):,} Hub models, {len(papers):,} papers, {sizes.epoch:,} Epoch rows"
          + ("; an untimed first night on one copy, then nights in a row" if args.in_a_row else ""))
    results = []
    with tempfile.TemporaryDirectory(prefix="census-night-", dir=args.workdir) as folder:
        prefect_home = prepared_prefect_home(Path(folder) / "prefect")
        with ExitStack() as stack:
            api_url = None
            if args.prefect_server == "running":
                api_url = stack.enter_context(running_prefect_server(prefect_home))
                print(f"against the Prefect server at {api_url}, started before the runs")
            night, failed_log = Path(folder) / "night", args.workdir / "nightly-failed.log"
            if args.in_a_row:
                copy_warehouse(state, published, night)
                first = one_night(night, prefect_home, epoch_csv, models, papers, failed_log, api_url)
                print(f"  the first night on the copy (untimed): census run {first['wall_s']:.1f}s")
            for number in range(args.runs):
                load = load_average()
                if args.in_a_row:  # each night's data is dated by the clock of its run, as the listing reads it
                    models, papers = night_data(number + 1, datetime.now(timezone.utc))
                else:
                    copy_warehouse(state, published, night)
                result = one_night(night, prefect_home, epoch_csv, models, papers, failed_log, api_url)
                results.append(result)
                server = ("" if result["startup_s"] is None
                          else f"temporary Prefect server start {result['startup_s']:.1f}s, ")
                print(f"  run {number + 1}: census run {result['wall_s']:.1f}s ({server}"
                      f"flow {result['flow_s'] or float('nan'):.1f}s), "
                      f"peak RSS {result['peak_rss_mb']:,.0f} MB; load average before {load}")
        if args.log:
            args.log.write_text(results[-1]["log"], encoding="utf-8")
    print("\n".join("  " + line for line in results[-1]["counts"]))
    flows = [r["flow_s"] for r in results if r["flow_s"] is not None]
    print(f"median of {len(results)}: census run {statistics.median(r['wall_s'] for r in results):.1f}s end to end, "
          f"flow {statistics.median(flows) if flows else float('nan'):.1f}s; "
          f"peak RSS {max(r['peak_rss_mb'] for r in results):,.0f} MB; target 15 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
