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


@cache
def tables_read(sql: str) -> frozenset[str]:
    """The tables and views `sql` reads, as DuckDB's parser finds them; a table function (a file read, say)
    appears as `<name>()`.

    A name counts as a CTE only where that CTE is in scope: in the query after its `with` and in the CTEs
    defined after it, not in its own body. So `with t as (select * from t where ...)` reads the table `t`.
    Parsing needs no database: each query is parsed once per process, on a connection of the parser's own.
    """
    return frozenset(_reads(parse_sql(_parser(), sql), frozenset()))


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    """An in-memory connection, opened once per process: opening one costs 10 to 40 ms, a parse 6 ms."""
    return duckdb.connect()


def _reads(node: object, ctes: frozenset[str]) -> set[str]:
    """The tables `node` reads, `ctes` being the CTE names in scope around it."""
    found: set[str] = set()
    if isinstance(node, list):
        for value in node:
            found |= _reads(value, ctes)
        return found
    if not isinstance(node, dict):
        return found
    if node.get("type") == "BASE_TABLE" and node["table_name"] not in ctes:
        found.add(node["table_name"])
    elif node.get("type") == "TABLE_FUNCTION":
        found.add(f"{node.get('function', {}).get('function_name', '')}()")
    in_scope = set(ctes)
    if isinstance(node.get("cte_map"), dict):
        for entry in node["cte_map"]["map"]:
            found |= _reads(entry["value"], frozenset(in_scope))
            in_scope.add(entry["key"])
    for key, value in node.items():
        if key != "cte_map":
            found |= _reads(value, frozenset(in_scope))
    return found
