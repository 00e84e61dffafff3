"""`census report`: the quarter's story from the views, escaped for every format, on hand-made and demo data."""

from __future__ import annotations

import html
import re
import xml.dom.minidom
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.report import ARTIFACT_KEY, Section, Story, evidence_breakdown, read_story, render_markdown, write_report
from transforms.rebuild import VIEWS, create_view
from warehouse.publish import publish
from warehouse.sql_files import read_sql

HOSTILE = '<script>alert("x")</script> | [click](javascript:alert(1)) *bold* & co'


def published_warehouse(tmp_path: Path, con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> Path:
    """Curated releases from `rows` (notable, dated, labelled by default), views built, published to a file."""
    con.execute(read_sql("curated", "release_tables"))
    for index, fields in enumerate(rows):
        row = {
            "release_id": f"r{index}", "name": f"model {index}", "family": "f", "organization": "Org",
            "org_type": "big_tech", "modality": "text", "released_on": date(2023, 2, 1), "quality_tier": "production",
            "is_notable": True, "has_evaluation": False, "evaluation_evidence": [], "is_open_weights": False,
            "prominence": 1.0, "hub_likes": 0, "hf_repo_ids": [], "arxiv_ids": [], "epoch_names": [], "pwc_ids": [],
            "sources": ["epoch"], "label_reasons": "{}",
        } | fields
        con.execute(
            f"insert into releases ({', '.join(row)}) values ({', '.join('?' for _ in row)})", list(row.values())
        )
    for name in VIEWS:
        create_view(con, name)
    target = tmp_path / "census.duckdb"
    publish(con, target)
    return target


@pytest.fixture
def story_db(tmp_path: Path, fresh_db: duckdb.DuckDBPyConnection) -> Path:
    return published_warehouse(tmp_path, fresh_db, [
        {"release_id": "base", "name": HOSTILE, "org_type": "open_source_community", "prominence": 9.0,
         "released_on": date(2023, 2, 24), "is_open_weights": True, "has_evaluation": True,
         "evaluation_evidence": ["hf_model_index"]},
        {"name": "Alpaca", "base_release_id": "base", "base_model": HOSTILE, "released_on": date(2023, 3, 13),
         "is_notable": False},
        {"name": "Frontier one", "quality_tier": "frontier", "org_type": "ai_lab", "released_on": date(2023, 1, 5)},
        {"name": "Last year", "released_on": date(2022, 11, 5)},
    ])


def test_markdown_report_has_every_section_with_a_chart_file(story_db: Path, tmp_path: Path) -> None:
    document = write_report(story_db, "2023-Q1", "md", tmp_path / "out")
    text = document.read_text(encoding="utf-8")
    assert document.name == "report-2023-Q1.md"
    for title in ("Release cadence", "Organization types", "Derivative bursts", "Modalities", "Quality tiers",
                  "The evaluation gap"):
        assert f"## {title}" in text
    charts = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(charts) == 6
    for chart in charts:
        xml.dom.minidom.parse(str(tmp_path / "out" / chart))  # well-formed SVG, or this raises
    assert "2023-Q1: 2 notable releases, 0.67 a month; +100.0% on the previous quarter" in text


def test_source_strings_are_escaped_in_markdown_svg_and_html(story_db: Path, tmp_path: Path) -> None:
    markdown = write_report(story_db, "2023-Q1", "md", tmp_path / "md").read_text(encoding="utf-8")
    page = write_report(story_db, "2023-Q1", "html", tmp_path / "html").read_text(encoding="utf-8")
    svgs = [path.read_text(encoding="utf-8") for path in (tmp_path / "md").glob("*.svg")]
    for text in [markdown, page, *svgs]:
        assert "<script" not in text
    assert "[click](" not in markdown and r"\[click\](javascript:" in markdown, "no live link from a name"
    assert html.escape(HOSTILE) in page
    row = next(line for line in markdown.splitlines() if line.startswith("| open\\_source\\_community"))
    assert row.count(" | ") == 3, "a pipe in a name must not split the table cell"
    assert any("&lt;script&gt;" in svg for svg in svgs), "the bursts chart labels the hostile base, escaped"


def test_report_numbers_are_the_views_numbers(story_db: Path) -> None:
    with duckdb.connect(str(story_db), read_only=True) as con:
        story = read_story(con, "2023-Q1")
        assert_story_matches_views(con, story)


def assert_story_matches_views(con: duckdb.DuckDBPyConnection, story: Story) -> None:
    sections = {section.key: section for section in story.sections}
    quarter = story.quarter
    queries = {
        "org_type": "select org_type, releases, share_pct, examples from releases_by_org_type where quarter = ?",
        "modality": "select modality, releases, share_pct, examples from releases_by_modality where quarter = ?",
        "quality_tier": "select quality_tier, releases, share_pct, examples from releases_by_quality_tier "
                        "where quarter = ?",
        "evaluation_coverage": "select quality_tier, releases, with_evaluation, without_evaluation, "
                               "share_evaluated_pct from evaluation_coverage where quarter = ?",
    }
    for key, sql in queries.items():
        assert sorted(sections[key].rows) == sorted(con.execute(sql, [quarter]).fetchall()), key
    cadence = con.execute(
        "select quarter, releases, avg_per_month, is_partial, projected_releases, qoq_growth_pct "
        "from release_cadence_quarterly where quarter = ?", [quarter]
    ).fetchall()
    assert sections["cadence"].rows[-1] == cadence[0]
    bursts = set(con.execute(
        "select base_model, base_released_on, derivatives_4w, derivatives_8w, derivatives_12w from derivative_bursts"
    ).fetchall())
    assert set(sections["derivative_bursts"].rows) <= bursts
    markdown = render_markdown(story, lambda section: f"{section.key}.svg")
    assert f"{quarter}: {cadence[0][1]} notable releases" in markdown
    assert_evidence_matches_releases(con, quarter, sections["evaluation_coverage"])


def assert_evidence_matches_releases(con: duckdb.DuckDBPyConnection, quarter: str, section: Section) -> None:
    """The breakdown is a count over `releases` (done here in Python), and each tier's total is the view's."""
    counted: Counter[tuple[str, str]] = Counter()
    for tier, released_on, evidence in con.execute(
        "select quality_tier, released_on, evaluation_evidence from releases "
        "where is_notable and has_evaluation and released_on <= current_date"
    ).fetchall():
        if f"{released_on.year}-Q{(released_on.month - 1) // 3 + 1}" == quarter:
            counted.update((tier, kind) for kind in evidence)
    breakdown = evidence_breakdown(con, quarter)
    assert {(tier, kind): n for tier, kinds in breakdown.items() for kind, n in kinds.items()} == dict(counted)
    for tier, _, with_evaluation, _, _ in section.rows:
        if with_evaluation:
            assert f"{tier}: {with_evaluation:,} evaluated, via " in section.text, tier
        for kind, n in breakdown.get(tier, {}).items():
            if not kind.endswith("_merged_or_flagged"):
                assert f"{kind} {n:,}" in section.text, (tier, kind)


def test_the_evaluation_gap_says_which_evidence_each_count_rests_on_and_marks_merges(
    tmp_path: Path, fresh_db: duckdb.DuckDBPyConnection
) -> None:
    db = published_warehouse(tmp_path, fresh_db, [
        {"quality_tier": "near_frontier", "has_evaluation": True,
         "evaluation_evidence": ["epoch_benchmarks", "open_llm_leaderboard_v1"]},
        {"quality_tier": "near_frontier", "has_evaluation": True,
         "evaluation_evidence": ["open_llm_leaderboard_v2", "open_llm_leaderboard_v2_merged_or_flagged"]},
        {"quality_tier": "near_frontier"},
        {"quality_tier": "production", "has_evaluation": True,
         "evaluation_evidence": ["hf_eval_results", "hf_model_index"]},
        {"quality_tier": "production", "has_evaluation": True, "evaluation_evidence": ["paperswithcode"],
         "is_notable": False},
        {"quality_tier": "production", "has_evaluation": True, "evaluation_evidence": ["paperswithcode"],
         "released_on": date(2022, 12, 1)},
    ])
    with duckdb.connect(str(db), read_only=True) as con:
        story = read_story(con, "2023-Q1")
        assert_story_matches_views(con, story)
    text = next(section.text for section in story.sections if section.key == "evaluation_coverage")

    assert ("near_frontier: 2 evaluated, via epoch_benchmarks 1, open_llm_leaderboard_v1 1 (of which merged or "
            "flagged only 0), open_llm_leaderboard_v2 1 (of which merged or flagged only 1)") in text
    assert "production: 1 evaluated, via hf_model_index 1, hf_eval_results 1." in text
    assert "paperswithcode" not in text, "a release not notable, or of another quarter, is not in the counts"


def test_a_quarter_without_releases_or_a_malformed_one_is_refused(
    story_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--db", str(story_db), "--quarter", "2019-Q3", "--out", str(tmp_path)]) == 1
    assert "no notable release in 2019-Q3; the warehouse covers 2022-Q4 to 2023-Q1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--db", str(story_db), "--quarter", "2023Q1"])
    assert exit_info.value.code == 2
    assert main(["report", "--db", str(tmp_path / "missing.duckdb")]) == 1
    assert "no published warehouse" in capsys.readouterr().err


def test_a_warehouse_published_before_the_views_existed_asks_for_a_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute("create table releases (release_id varchar)")
    assert main(["report", "--db", str(old), "--out", str(tmp_path)]) == 1
    assert "published by an older version" in capsys.readouterr().err


def test_without_a_quarter_the_latest_one_is_told(story_db: Path, tmp_path: Path) -> None:
    assert main(["report", "--db", str(story_db), "--format", "html", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report-2023-Q1.html").exists()


# --- on the demo data: the real pipeline, once -----------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    main(["demo", "--db", str(db)])  # a source failing is the demo's own test's business; the file is ours
    assert db.exists(), "the demo published no warehouse"
    return db


def test_on_the_demo_data_every_view_returns_rows(demo_db: Path) -> None:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        empty = [name for name in VIEWS if con.execute(f"select count(*) from {name}").fetchall() == [(0,)]]
    assert not empty


def test_the_demo_report_renders_with_charts_and_the_views_numbers(demo_db: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        story = read_story(con, "2023-Q1")
        assert_story_matches_views(con, story)
    assert all(section.rows for section in story.sections), "every section of 2023-Q1 has rows on the demo data"
    gap = next(section for section in story.sections if section.key == "evaluation_coverage")
    assert "near_frontier: 3 evaluated, via epoch_benchmarks 2, open_llm_leaderboard_v1 1 (of which merged or " \
           "flagged only 0)" in gap.text, "Falcon-40B is evaluated through its repos' v1 leaderboard entries"
    page = write_report(demo_db, "2023-Q1", "html", tmp_path).read_text(encoding="utf-8")
    assert page.count("<svg") == 6 and page.count("<table>") == 6
    markdown = write_report(demo_db, "2023-Q1", "md", tmp_path)
    assert len(list(tmp_path.glob("report-2023-Q1-*.svg"))) == 6 and markdown.exists()


def test_on_the_demo_data_every_quarters_evidence_is_a_count_over_releases(demo_db: Path) -> None:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        quarters = [row[0] for row in con.execute("select distinct quarter from evaluation_coverage "
                                                  "where with_evaluation > 0 order by 1").fetchall()]
        kinds = set()
        for quarter in quarters:
            section = next(s for s in read_story(con, quarter).sections if s.key == "evaluation_coverage")
            assert_evidence_matches_releases(con, quarter, section)
            kinds |= {kind for tier in evidence_breakdown(con, quarter).values() for kind in tier}
    assert {"epoch_benchmarks", "open_llm_leaderboard_v1", "open_llm_leaderboard_v2"} <= kinds


def test_the_run_publishes_the_latest_quarter_as_a_markdown_artifact(demo_db: Path) -> None:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None and artifact.type == "markdown"
    with duckdb.connect(str(demo_db), read_only=True) as con:
        (latest,) = con.execute("select max(quarter) from release_cadence_quarterly").fetchall()[0]
    assert f"# model-census: the story of {latest}" in artifact.data
    assert artifact.data.count("](data:image/svg+xml;base64,") == 6


def test_a_partial_quarter_shows_its_projection_stacked_on_its_column() -> None:
    from flows.report import PROJECTION_COLOR, column_chart

    svg = column_chart("Notable releases per quarter", ["2026-Q3", "2026-Q4"], [30, 12], [0, 18])
    xml.dom.minidom.parseString(svg)
    assert svg.count(f'fill="{PROJECTION_COLOR}"') == 1 and "12 (→30)" in svg
