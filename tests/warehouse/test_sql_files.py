"""`warehouse.sql_files.tables_read`: what a query reads decides what a rebuild may skip, so a CTE must hide a
table only where the CTE is in scope."""

from __future__ import annotations

import pytest

from transforms.build_releases import MEMBER_MODELS
from warehouse.sql_files import read_sql, tables_read


@pytest.mark.parametrize(("sql", "read"), [
    ("select * from a join b using (k)", {"a", "b"}),
    ("with b as (select * from c) select * from a join b using (k)", {"a", "c"}),
    # a CTE's own body reads the table of its name; later CTEs and the query read the CTE
    ("with b as (select * from b where x) select * from a join b using (k)", {"a", "b"}),
    ("with b as (select * from c), d as (select * from b) select * from d", {"c"}),
    # a CTE of a subquery is out of scope outside it
    ("select * from (with d as (select 1) select * from d) as x, d", {"d"}),
    ("select * from read_csv('models.csv')", {"read_csv()"}),
], ids=["tables", "a CTE", "a CTE named like the table it reads", "CTEs in a row", "a subquery's CTE", "a table function"])
def test_tables_read_knows_where_a_cte_is_in_scope(sql: str, read: set[str]) -> None:
    assert tables_read(sql) == read


def test_the_member_models_read_what_the_release_build_expects() -> None:
    """`transforms.build_releases._compare_members` skips or narrows a member model's comparison by the tables it
    reads: the Hub's members by its own staging table and the leaderboard's, the others as listed."""
    assert {model: tables_read(read_sql("intermediate", model)) for model in MEMBER_MODELS} == {
        "int_members_epoch": {"raw_epoch__models", "stg_epoch__models"},
        "int_members_huggingface": {"stg_huggingface__models", "stg_open_llm_leaderboard__results"},
        "int_members_arxiv": {"stg_arxiv__papers", "stg_epoch__models", "stg_huggingface__models",
                              "stg_paperswithcode__papers"},
        "int_members_paperswithcode": {"stg_paperswithcode__papers", "stg_paperswithcode__results"},
    }
