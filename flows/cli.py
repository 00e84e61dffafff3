"""The `census` command: run the pipeline, run the demo, show status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from flows import OUR_LOGGERS

# Before Prefect is imported: no telemetry from this machine, and our modules' logs in the run log.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", ",".join(OUR_LOGGERS))
# Without `PREFECT_API_URL`, Prefect starts a temporary server, which in a new Prefect home first creates its
# database: on a busy 2-core machine that outlasted Prefect's 20 s default and failed a clean clone's demo.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date of the form YYYY-MM-DD") from None


def _folder(value: str) -> Path:
    """A folder to write into: it may not exist yet, but it may not be a file."""
    path = Path(value)
    if not value.strip() or (path.exists() and not path.is_dir()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a folder")
    return path


def _quarter(value: str) -> str:
    from flows.report import quarter_start

    try:
        quarter_start(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="census", description="Count and classify notable AI model releases.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the pipeline: nightly without --since, a backfill with it")
    run.add_argument("--source", action="append", dest="sources", metavar="NAME", help="only this source (repeatable)")
    run.add_argument("--since", type=_date, help="backfill from this day (UTC), inclusive")
    run.add_argument("--until", type=_date, help="backfill up to this day (UTC), exclusive; default today")

    demo = commands.add_parser("demo", help="run the pipeline on the bundled snapshot over loopback HTTP")
    demo.add_argument("--db", type=Path, help="warehouse file for the demo (default data/demo.duckdb)")

    status = commands.add_parser("status", help="per source: last success, watermark, raw rows, rejects")
    status.add_argument("--db", type=Path, help="published warehouse to read (default MODEL_CENSUS_DB)")

    report = commands.add_parser("report", help="the quarter's story: tables and SVG charts from the views")
    report.add_argument("--quarter", type=_quarter, help="quarter to tell, e.g. 2023-Q1 (default: the latest)")
    report.add_argument("--format", choices=("md", "html"), default="md", dest="fmt", help="document format")
    report.add_argument("--out", type=_folder, default=Path("reports"), help="folder to write into (default reports/)")
    report.add_argument("--db", type=Path, help="published warehouse to read (default MODEL_CENSUS_DB)")

    export = commands.add_parser("export", help="curated tables and every view, one Parquet or CSV file each")
    export.add_argument("out", type=_folder, metavar="DIR", help="folder to write into")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet", dest="fmt", help="file format")
    export.add_argument("--db", type=Path, help="published warehouse to read (default MODEL_CENSUS_DB)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return command_run(args.sources, args.since, args.until)
        if args.command == "demo":
            return command_demo(args.db)
        if args.command == "report":
            return command_report(args.quarter, args.fmt, args.out, args.db)
        if args.command == "export":
            return command_export(args.fmt, args.out, args.db)
        return command_status(args.db)
    except KeyboardInterrupt:
        print("census: interrupted; what was committed is kept and the next run resumes", file=sys.stderr)
        return EXIT_FAILED


def command_run(sources: list[str] | None, since: date | None, until: date | None) -> int:
    from pydantic import ValidationError

    from flows import pipeline

    try:
        from flows.settings import Settings

        Settings()
        pipeline.validate_request(sources or pipeline.ALL_SOURCES, since, until, today=pipeline.utc_today())
    except (ValueError, ValidationError) as exc:
        print(f"census: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if since is None:
        state = pipeline.nightly(sources=sources or list(pipeline.ALL_SOURCES), return_state=True)
    else:
        state = pipeline.backfill(
            since=since, until=until, sources=sources or list(pipeline.ALL_SOURCES), return_state=True
        )
    return _report(state)


def command_demo(db: Path | None) -> int:
    from flows import pipeline
    from flows.demo import DEMO_DB, DEMO_SINCE, demo_settings

    target = db or DEMO_DB
    with demo_settings(target) as url:
        print(f"census: demo snapshot served at {url}; warehouse {target}")
        state = pipeline.backfill(since=DEMO_SINCE, until=None, sources=list(pipeline.ALL_SOURCES), return_state=True)
    code = _report(state)
    if code == EXIT_OK:
        print(f"census: demo done. Try: census status --db {target}")
        print(f"        duckdb -readonly {target} \"select * from release_cadence_quarterly\"")
    return code


def command_status(db: Path | None) -> int:
    from flows.settings import Settings
    from warehouse.status import StatusUnavailable, read_status

    path = db or Settings().db
    try:
        print(read_status(path))
    except StatusUnavailable as exc:
        print(f"census: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def command_report(quarter: str | None, fmt: str, out: Path, db: Path | None) -> int:
    from flows.report import ReportUnavailable, write_report
    from flows.settings import Settings

    try:
        document = write_report(db or Settings().db, quarter, fmt, out)
    except ReportUnavailable as exc:
        print(f"census: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the folder cannot be made or written (a file in its path, no permission)
        print(f"census: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"census: wrote {document}")
    return EXIT_OK


def command_export(fmt: str, out: Path, db: Path | None) -> int:
    from flows.export import ExportRefused, export
    from flows.report import NoPublishedWarehouse
    from flows.settings import Settings

    try:
        files = export(db or Settings().db, fmt, out)
    except ExportRefused as exc:
        print(f"census: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoPublishedWarehouse as exc:
        print(f"census: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the folder cannot be made or written (a file in its path, no permission)
        print(f"census: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"census: wrote {len(files)} {fmt} files to {out}")
    return EXIT_OK


def _report(state: object) -> int:
    """Exit 0 on success; otherwise one line per failed source (or the one error) and exit 1."""
    from flows.pipeline import SourcesFailed, failure_line

    if state.is_completed():
        return EXIT_OK
    error = state.result(raise_on_failure=False)
    if isinstance(error, SourcesFailed):
        for outcome in error.outcomes:
            print(f"census: {failure_line(outcome)}", file=sys.stderr)
    else:
        print(f"census: run failed: {_one_line(error)}", file=sys.stderr)
    return EXIT_FAILED


def _one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
