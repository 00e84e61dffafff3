"""`census status`: what the last published run says about each source."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.connection import connect

STATUS_COLUMNS = (
    "source", "last_success_at", "watermark", "raw_records", "raw_versions",
    "rejected_records", "last_status", "last_error",
)


class StatusUnavailable(RuntimeError):
    """No published warehouse to read yet, or one from before status was recorded."""


def read_status(published: Path) -> str:
    """A plain-text table, one line per source, from the published copy (never the writer's file)."""
    if not published.exists():
        raise StatusUnavailable(f"no warehouse at {published} yet: run `census run` (or `census demo`) first")
    con = connect(published, read_only=True)
    try:
        rows = con.execute(
            f"select {', '.join(STATUS_COLUMNS)} from source_status order by source"
        ).fetchall()
    except duckdb.CatalogException:
        raise StatusUnavailable(f"{published} has no source_status table: run the pipeline once") from None
    finally:
        con.close()
    return format_table(STATUS_COLUMNS, rows)


def format_table(columns: tuple[str, ...], rows: list[tuple]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(column)] + [len(row[i]) for row in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
