"""`census export`: the curated tables and every view, one Parquet or CSV file each, for tools without DuckDB.

It reads the published file read-only, so it can run at any time, also during a nightly run. Each
file is written under a temporary name in the target folder and renamed when complete: an
interrupted export never leaves a file that looks finished. A target that resolves outside the
folder (a symlink planted there, say) is refused rather than written through.

A CSV is opened in spreadsheets, which run a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
return as a formula; names and titles come from the sources, so in a CSV a text cell starting so is
written with a single quote before it (OWASP's advice against CSV injection). Parquet keeps values exactly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import duckdb

from flows.report import open_published
from transforms.rebuild import CURATED, VIEWS

ExportFormat = Literal["parquet", "csv"]
CURATED_TABLES: tuple[str, ...] = ("releases", "release_members", "release_exclusions", "overrides", *CURATED)
"""The curated layer: the release tables `transforms.build_releases` writes, then the SQL models."""
EXPORTED: tuple[str, ...] = CURATED_TABLES + VIEWS
SAFE_NAME = re.compile(r"[a-z][a-z0-9_]*")
FORMULA_START = "^[=+@\t\r-]"
"""A text cell a spreadsheet would evaluate: it starts with = + @ -, a tab or a carriage return."""


class ExportRefused(ValueError):
    """A target path would land outside the export folder."""


def target_path(out: Path, name: str, fmt: ExportFormat) -> Path:
    """`out/<name>.<fmt>`, provided it stays inside `out` once symlinks are resolved."""
    if not SAFE_NAME.fullmatch(name) or fmt not in ("parquet", "csv"):
        raise ExportRefused(f"refusing to export {name!r} as {fmt!r}: not a plain table name and format")
    root = out.resolve()
    target = out / f"{name}.{fmt}"
    if target.resolve().parent != root:
        raise ExportRefused(f"refusing to write {target}: it resolves to {target.resolve()}, outside {root}")
    return root / target.name


def export(db: Path, fmt: ExportFormat, out: Path) -> list[Path]:
    """Write every curated table and view of the published warehouse `db` into `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    targets = {name: target_path(out, name, fmt) for name in EXPORTED}
    con = open_published(db)
    written = []
    try:
        for name, target in targets.items():
            partial = target.with_name(f".{target.name}.partial")
            partial.unlink(missing_ok=True)
            try:
                if fmt == "parquet":
                    con.sql(f'select * from "{name}"').write_parquet(str(partial))
                else:
                    csv_relation(con, name).write_csv(str(partial), header=True)
                os.replace(partial, target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            written.append(target)
    finally:
        con.close()
    return written


def csv_relation(con: duckdb.DuckDBPyConnection, name: str) -> duckdb.DuckDBPyRelation:
    """Table `name` for a CSV: each text cell a spreadsheet would evaluate (`FORMULA_START`) quoted with `'`.

    Only VARCHAR columns: lists and structs are written starting with `[` or `{`, numbers and dates are no text.
    """
    columns = con.execute(
        "select column_name, data_type from duckdb_columns() where table_name = ? order by column_index", [name]
    ).fetchall()
    select_list = ", ".join(
        f"case when regexp_matches({_quoted(column)}, $formula_start) then '''' || {_quoted(column)} "
        f"else {_quoted(column)} end as {_quoted(column)}" if kind == "VARCHAR" else _quoted(column)
        for column, kind in columns
    )
    return con.sql(f'select {select_list} from "{name}"', params={"formula_start": FORMULA_START})


def _quoted(identifier: str) -> str:
    """A column name from the warehouse's own schema, as a SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'
