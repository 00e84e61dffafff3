"""SQL shipped with the package: one object per file under `warehouse/sql/<layer>/<name>.sql`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import duckdb

SERIALIZE_SQL = "select json_serialize_sql($sql)"
DESERIALIZE_SQL = "select json_deserialize_sql($tree::json)"


@cache
def read_sql(layer: str, name: str) -> str:
    return resources.files("warehouse").joinpath(f"sql/{layer}/{name}.sql").read_text(encoding="utf-8")


def parse_sql(con: duckdb.DuckDBPyConnection, sql: str) -> dict:
    """`sql` as DuckDB's parser sees it (`json_serialize_sql`): to read or edit a query's structure, never its text."""
    tree = json.loads(con.execute(SERIALIZE_SQL, {"sql": sql}).fetchone()[0])
    if tree.get("error"):
        raise ValueError(f"not a query DuckDB parses: {tree.get('error_message')}")
    return tree


def unparse_sql(con: duckdb.DuckDBPyConnection, tree: dict) -> str:
    """The SQL of a tree `parse_sql` gave (edited or not)."""
    return con.execute(DESERIALIZE_SQL, {"tree": json.dumps(tree)}).fetchone()[0]


def tables_read(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """The tables and views `sql` reads, as DuckDB's parser finds them, its own CTEs left out; a table
    function (a file read, say) appears as `<name>()`."""
    tables, ctes = set(), set()

    def visit(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                tables.add(node["table_name"])
            elif node.get("type") == "TABLE_FUNCTION":
                tables.add(f"{node.get('function', {}).get('function_name', '')}()")
            if isinstance(node.get("cte_map"), dict):
                ctes.update(entry["key"] for entry in node["cte_map"]["map"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(parse_sql(con, sql))
    return tables - ctes
