"""SQL shipped with the package: one object per file under `warehouse/sql/<layer>/<name>.sql`."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def read_sql(layer: str, name: str) -> str:
    return resources.files("warehouse").joinpath(f"sql/{layer}/{name}.sql").read_text(encoding="utf-8")
