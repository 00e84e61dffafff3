"""The analysts' views on hand-made releases: counts, shares, examples, lineage windows, empty groups."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import count

import duckdb
import pytest

from transforms.rebuild import VIEWS, create_view, unordered, view_rows
from warehouse.sql_files import read_sql

RELEASES_CONTRACT = """
create table releases (
    release_id varchar, name varchar, family varchar, organization varchar, org_type varchar, modality varchar,
    released_on date, quality_tier varchar, base_release_id varchar, base_model varchar, lineage_relation varchar,
    parameters bigint, is_notable boolean, notability_reason varchar, has_evaluation boolean,
    evaluation_evidence varchar[], is_open_weights boolean, prominence double, hf_repo_ids varchar[],
    arxiv_ids varchar[], epoch_names varchar[], pwc_ids varchar[], sources varchar[], label_reasons json,
    first_seen_at timestamptz, updated_at timestamptz
)
"""
"""The columns of `releases` the views may rely on (issue 6's contract), nothing more."""

_ids = count(1)


def release(name: str, released_on: date | None, **fields: object) -> dict[str, object]:
    """A notable, closed-weights, unevaluated big_tech text release unless told otherwise."""
    row: dict[str, object] = {
        "release_id": fields.pop("release_id", f"r{next(_ids)}"), "name": name, "family": name,
        "organization": "Org", "org_type": "big_tech", "modality": "text", "released_on": released_on,
        "quality_tier": "production", "base_release_id": None, "base_model": None, "lineage_relation": None,
        "parameters": None, "is_notable": True, "notability_reason": "test", "has_evaluation": False,
        "evaluation_evidence": [], "is_open_weights": False, "prominence": 1.0, "hf_repo_ids": [], "arxiv_ids": [],
        "epoch_names": [], "pwc_ids": [], "sources": ["epoch"], "label_reasons": "{}", "first_seen_at": None,
        "updated_at": None,
    }
    unknown = set(fields) - set(row)
    assert not unknown, f"not a releases column: {unknown}"
    row.update(fields)
    return row


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(RELEASES_CONTRACT)
    return con


def load(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    columns = list(rows[0])
    con.executemany(
        f"insert into releases ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
        [[row[column] for column in columns] for row in rows],
    )
    for name in VIEWS:
        create_view(con, name)


def select(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_share_views_count_notable_releases_per_quarter_with_top_three_examples(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("Alpha", date(2023, 1, 10), org_type="ai_lab", prominence=5.0),
        release("Beta", date(2023, 2, 10), org_type="ai_lab", prominence=9.0),
        release("Gamma", date(2023, 3, 10), org_type="ai_lab", prominence=7.0),
        release("Delta", date(2023, 3, 11), org_type="ai_lab", prominence=1.0),
        release("Epsilon", date(2023, 3, 12), org_type="academic"),
        release("Hidden", date(2023, 3, 12), org_type="startup", is_notable=False),
        release("Undated", None, org_type="startup"),
    ])
    assert select(con, "select * from releases_by_org_type") == [
        ("2023-Q1", "ai_lab", 4, 80.0, "Beta, Gamma, Alpha"),
        ("2023-Q1", "academic", 1, 20.0, "Epsilon"),
    ]


def test_a_group_without_notable_releases_in_a_quarter_has_no_row(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("Q1 text", date(2023, 1, 10), modality="text"),
        release("Q2 image", date(2023, 4, 10), modality="image"),
        release("Q2 quiet audio", date(2023, 5, 10), modality="audio", is_notable=False),
    ])
    assert select(con, "select quarter, modality, releases from releases_by_modality") == [
        ("2023-Q1", "text", 1), ("2023-Q2", "image", 1),
    ]


def test_shares_of_one_quarter_add_up_to_100_within_rounding(con: duckdb.DuckDBPyConnection) -> None:
    tiers = ["frontier", "near_frontier", "production", "experimental", "production", "experimental", "experimental"]
    load(con, [release(f"m{i}", date(2024, 7, 1 + i), quality_tier=tier) for i, tier in enumerate(tiers)])
    for view, label in [("releases_by_quality_tier", "quality_tier"), ("releases_by_org_type", "org_type"),
                        ("releases_by_modality", "modality")]:
        ((total,),) = select(con, f"select sum(share_pct) from {view} group by quarter")
        assert total == pytest.approx(100, abs=0.2), view
    shares = dict(select(con, "select quality_tier, share_pct from releases_by_quality_tier"))
    assert shares == {"experimental": 42.9, "production": 28.6, "frontier": 14.3, "near_frontier": 14.3}


def test_releases_dated_in_the_future_are_not_counted_yet(con: duckdb.DuckDBPyConnection) -> None:
    today = con.execute("select current_date").fetchall()[0][0]
    load(con, [release("Now", today), release("Announced", today + timedelta(days=400))])
    for view in ("releases_by_org_type", "open_source_share", "evaluation_coverage", "release_cadence_quarterly"):
        assert select(con, f"select sum(releases) from {view}") == [(1,)], view


def test_every_quarter_view_counts_the_same_releases(con: duckdb.DuckDBPyConnection) -> None:
    rows = []
    for i in range(40):
        rows.append(release(
            f"m{i}", date(2022, 1, 1) + timedelta(days=23 * i),
            org_type=["big_tech", "academic", "startup"][i % 3], modality=["text", "image"][i % 2],
            quality_tier=["frontier", "experimental", "production", "near_frontier"][i % 4],
            is_notable=i % 5 != 0, has_evaluation=i % 3 == 0, is_open_weights=i % 2 == 0,
        ))
    load(con, rows)
    cadence = select(con, "select quarter, releases from release_cadence_quarterly order by quarter")
    assert len(cadence) >= 8
    for view in ("releases_by_org_type", "releases_by_modality", "releases_by_quality_tier", "evaluation_coverage",
                 "open_source_share"):
        assert select(con, f"select quarter, sum(releases)::integer from {view} group by quarter order by quarter") == cadence, view


def test_evaluation_coverage_splits_each_tier_into_evaluated_and_not(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("F1", date(2023, 4, 2), quality_tier="frontier", has_evaluation=True),
        release("F2", date(2023, 4, 3), quality_tier="frontier", has_evaluation=False),
        release("F3", date(2023, 4, 4), quality_tier="frontier", has_evaluation=True),
        release("E1", date(2023, 5, 4), quality_tier="experimental", has_evaluation=False),
        release("E2 not notable", date(2023, 5, 4), quality_tier="experimental", has_evaluation=True, is_notable=False),
    ])
    assert select(con, "select * from evaluation_coverage") == [
        ("2023-Q2", "frontier", 3, 2, 1, 66.7),
        ("2023-Q2", "experimental", 1, 0, 1, 0.0),
    ]


def test_open_source_share_counts_open_weights_and_community_releases(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("Open lab", date(2023, 10, 2), is_open_weights=True, org_type="ai_lab"),
        release("Open community", date(2023, 11, 2), is_open_weights=True, org_type="open_source_community"),
        release("Closed", date(2023, 12, 2)),
        release("Closed", date(2023, 12, 3)),
    ])
    assert select(con, "select * from open_source_share") == [("2023-Q4", 4, 2, 50.0, 1, 25.0)]


def test_derivative_releases_list_every_release_built_on_another_with_its_delay(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("LLaMA", date(2023, 2, 24), release_id="llama", organization="Meta AI"),
        release("Alpaca", date(2023, 3, 13), base_release_id="llama", base_model="LLaMA", organization="Stanford",
                is_notable=False),
        release("Early bird", date(2023, 2, 20), base_release_id="llama", base_model="LLaMA", organization="X"),
        release("Orphan", date(2023, 3, 1), base_release_id=None, base_model="not-in-warehouse/base"),
    ])
    assert select(con, "select * from derivative_releases") == [
        ("LLaMA", date(2023, 2, 24), "Early bird", "X", date(2023, 2, 20), -4),
        ("LLaMA", date(2023, 2, 24), "Alpaca", "Stanford", date(2023, 3, 13), 17),
    ]


def test_derivative_bursts_count_derivatives_within_4_8_and_12_weeks(con: duckdb.DuckDBPyConnection) -> None:
    base_day = date(2023, 2, 24)
    # Two derivatives on day 28: the view counts derivatives per day before joining their base.
    lags = {"Alpaca": 17, "Day 28": 28, "Also day 28": 28, "Day 29": 29, "Day 56": 56, "Day 84": 84, "Day 85": 85,
            "Before": -3}
    load(con, [release("LLaMA", base_day, release_id="llama")] + [
        release(name, base_day + timedelta(days=lag), base_release_id="llama", base_model="LLaMA", is_notable=False)
        for name, lag in lags.items()
    ] + [
        release("Slow base", date(2020, 1, 1), release_id="slow"),
        release("Late child", date(2021, 1, 1), base_release_id="slow", base_model="Slow base"),
    ])
    assert select(con, "select * from derivative_bursts") == [("LLaMA", base_day, 3, 5, 6)]


def test_views_return_no_rows_on_an_empty_releases_table(con: duckdb.DuckDBPyConnection) -> None:
    for name in VIEWS:
        create_view(con, name)
        assert select(con, f"select count(*) from {name}") == [(0,)], name


def test_view_rows_count_each_view_without_sorting_it(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [
        release("LLaMA", date(2023, 2, 24), release_id="llama"),
        release("Alpaca", date(2023, 3, 13), base_release_id="llama", base_model="LLaMA", is_notable=False),
        release("Vicuna", date(2023, 3, 30), base_release_id="llama", base_model="LLaMA"),
        release("GPT-4", date(2023, 3, 14), modality="multimodal"),
    ])

    def sorts(query: str) -> int:  # Order By operators in DuckDB's plan, not ordered windows or aggregates
        return con.execute(f"explain select count(*) from ({query})").fetchall()[0][1].count("─ Order By ─")

    for name in VIEWS:
        assert view_rows(con, name) == select(con, f"select count(*) from {name}")[0][0] > 0, name
        query = read_sql("views", name)
        assert sorts(unordered(con, query)) == sorts(query) - 1, name


def test_unordered_takes_off_only_an_order_that_chooses_no_rows(con: duckdb.DuckDBPyConnection) -> None:
    numbers = "select x, string_agg(x::varchar, ',' order by x desc) over () as listed from range(4) as t(x)"
    plain = unordered(con, f"-- a comment\n{numbers}\norder by x desc")
    assert plain.upper().count("ORDER BY") == 1  # the aggregate's own, kept
    assert sorted(select(con, plain)) == [(x, "3,2,1,0") for x in range(4)]
    assert select(con, unordered(con, f"{numbers} order by x desc limit 1")) == [(3, "3,2,1,0")]
    assert select(con, unordered(con, f"{numbers} order by x desc offset 3")) == [(0, "3,2,1,0")]
    with pytest.raises(ValueError, match="not a query DuckDB parses"):
        unordered(con, "select from where")
