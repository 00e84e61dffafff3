"""`census report`: a quarter's story told from the published views, as Markdown or HTML with SVG charts.

Every number in the document is a value of a view row, formatted and nothing else, so the story and
an analyst's query of the same file always agree; the one exception, which evidence the evaluation
gap's counts rest on, is a count over the very `releases` rows `evaluation_coverage` counts. Charts
are SVG written here (no plotting dependency); model and organization names come from the sources,
so every string is escaped for the format it lands in: XML in the SVG, HTML in the page, Markdown
in the tables.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from transforms.rebuild import VIEWS
from warehouse.connection import connect

Format = Literal["md", "html"]
QUARTER_PATTERN = re.compile(r"(\d{4})-Q([1-4])")
CADENCE_QUARTERS = 8
"""The cadence table shows the chosen quarter and the seven before it: two years of trend."""
BURST_QUARTERS = 4
"""Bursts of base models released in the year up to the quarter: a base's 12 weeks can straddle quarters."""
BURST_ROWS = 10
ARTIFACT_KEY = "census-quarter-report"

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5")
PROJECTION_COLOR = "#a3bffa"


class ReportUnavailable(RuntimeError):
    """No published warehouse, or no notable release in the quarter asked for."""


class NoPublishedWarehouse(ReportUnavailable):
    """The published file is missing, or older than the views this code reads (publish again)."""


@dataclass(frozen=True)
class Section:
    """One part of the story: a sentence, a chart and the table the chart draws."""

    key: str
    title: str
    text: str
    columns: tuple[str, ...]
    rows: list[tuple]
    chart: str


@dataclass(frozen=True)
class Story:
    quarter: str
    headline: str
    sections: list[Section]


def quarter_start(quarter: str) -> date:
    """`2023-Q1` → 2023-01-01; a ValueError says what was expected."""
    match = QUARTER_PATTERN.fullmatch(quarter)
    if not match:
        raise ValueError(f"{quarter!r} is not a quarter of the form 2023-Q1")
    return date(int(match[1]), 3 * int(match[2]) - 2, 1)


def quarter_label(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _add_months(day: date, months: int) -> date:
    """The first of the month `months` after `day`'s month (before it when negative)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def read_story(con: duckdb.DuckDBPyConnection, quarter: str | None = None) -> Story:
    """The story of `quarter` (default: the latest quarter with a notable release), read from the views."""
    if quarter is None:
        latest = _rows(con, "select max(quarter_start) from release_cadence_quarterly")[0][0]
        if latest is None:
            raise ReportUnavailable("the warehouse has no notable release yet")
        quarter = quarter_label(latest)
    start = quarter_start(quarter)
    cadence = _rows(
        con,
        "select quarter, releases, avg_per_month, is_partial, projected_releases, qoq_growth_pct "
        "from release_cadence_quarterly where quarter_start <= ? order by quarter_start desc limit ?",
        [start, CADENCE_QUARTERS],
    )[::-1]
    if not cadence or cadence[-1][0] != quarter:
        span = _rows(con, "select min(quarter), max(quarter) from release_cadence_quarterly")[0]
        raise ReportUnavailable(f"no notable release in {quarter}; the warehouse covers {span[0]} to {span[1]}")
    sections = [
        _cadence_section(cadence),
        _share_section(con, quarter, "org_type", "Organization types", "Who released the quarter's notable models"),
        _bursts_section(con, start),
        _share_section(con, quarter, "modality", "Modalities", "What the quarter's notable models take in and put out"),
        _share_section(con, quarter, "quality_tier", "Quality tiers", "How capable the quarter's notable models are"),
        _evaluation_section(con, quarter),
    ]
    return Story(quarter, _headline(con, quarter, cadence[-1]), sections)


def _headline(con: duckdb.DuckDBPyConnection, quarter: str, cadence: tuple) -> str:
    _, releases, avg_per_month, is_partial, projected, growth = cadence
    text = f"{quarter}: {releases} notable releases, {_number(avg_per_month)} a month"
    if is_partial:
        text += f"; the quarter is still running and its pace projects {projected} by its end"
    if growth is not None:
        text += f"; {growth:+.1f}% on the previous quarter"
    open_share = _rows(
        con,
        "select open_weights, open_weights_share_pct, community_releases, community_share_pct "
        "from open_source_share where quarter = ?",
        [quarter],
    )
    if open_share:
        open_weights, open_pct, community, community_pct = open_share[0]
        text += (
            f". {open_weights} ({_number(open_pct)}%) came with open weights, "
            f"{community} ({_number(community_pct)}%) from the open-source community"
        )
    return text + "."


def _cadence_section(cadence: list[tuple]) -> Section:
    labels = [row[0] for row in cadence]
    chart = column_chart(
        "Notable releases per quarter",
        labels,
        [row[1] for row in cadence],
        [row[4] - row[1] if row[3] else 0 for row in cadence],
    )
    return Section(
        "cadence",
        "Release cadence",
        f"Notable releases per quarter, {labels[0]} to {labels[-1]}. A quarter still running is projected to its "
        "end from its pace so far (the lighter part of its column); growth compares that projection with the "
        "quarter before.",
        ("quarter", "releases", "avg_per_month", "is_partial", "projected_releases", "qoq_growth_pct"),
        cadence,
        chart,
    )


def _share_section(con: duckdb.DuckDBPyConnection, quarter: str, label: str, title: str, text: str) -> Section:
    # `label` is one of our own column names, never input
    view = {"org_type": "releases_by_org_type", "modality": "releases_by_modality",
            "quality_tier": "releases_by_quality_tier"}[label]
    rows = _rows(
        con,
        f"select {label}, releases, share_pct, examples from {view} where quarter = ? order by releases desc, {label}",
        [quarter],
    )
    chart = bar_chart(f"{title}, {quarter} (share of notable releases, %)", [row[0] for row in rows],
                      [("share %", [row[2] for row in rows])])
    return Section(label, title, f"{text}, {quarter}. Examples: the most notable first.",
                   (label, "releases", "share_pct", "examples"), rows, chart)


def _bursts_section(con: duckdb.DuckDBPyConnection, start: date) -> Section:
    first = _add_months(start, -3 * (BURST_QUARTERS - 1))
    end = _add_months(start, 3)
    rows = _rows(
        con,
        "select base_model, base_released_on, derivatives_4w, derivatives_8w, derivatives_12w from derivative_bursts "
        "where base_released_on >= ? and base_released_on < ? "
        "order by derivatives_12w desc, derivatives_4w desc, base_released_on, base_model limit ?",
        [first, end, BURST_ROWS],
    )
    span = f"{quarter_label(first)} to {quarter_label(start)}"
    chart = bar_chart(
        f"Derivatives within 4, 8 and 12 weeks of their base, bases released {span}",
        [row[0] for row in rows],
        [("4 weeks", [row[2] for row in rows]), ("8 weeks", [row[3] for row in rows]),
         ("12 weeks", [row[4] for row in rows])],
    )
    return Section(
        "derivative_bursts",
        "Derivative bursts",
        f"How fast others built on the base models released {span}: releases naming each as their base within "
        f"4, 8 and 12 weeks of its release (every derivative counts, notable or not; the {BURST_ROWS} busiest bases).",
        ("base_model", "base_released_on", "derivatives_4w", "derivatives_8w", "derivatives_12w"),
        rows,
        chart,
    )


EVIDENCE_KINDS = ("hf_model_index", "hf_eval_results", "paperswithcode", "epoch_benchmarks",
                  "open_llm_leaderboard_v1", "open_llm_leaderboard_v2")
"""The kinds of evaluation evidence a release can carry, in the order the report names them."""
MARKED_SUFFIX = "_merged_or_flagged"
"""A leaderboard kind with this suffix: the release's entries of that version were all merges or flagged."""
EVIDENCE_BREAKDOWN = """
with evaluated as (
    select quality_tier, unnest(evaluation_evidence) as evidence
    from releases
    where is_notable and has_evaluation and released_on is not null and released_on <= current_date
        and strftime(released_on, '%Y') || '-Q' || quarter(released_on) = ?
)
select quality_tier, evidence, count(*)::integer as releases
from evaluated
group by quality_tier, evidence
"""
"""Per tier, how many of the quarter's evaluated notable releases (those `evaluation_coverage` counts) carry each kind."""


def _evaluation_section(con: duckdb.DuckDBPyConnection, quarter: str) -> Section:
    rows = _rows(
        con,
        "select quality_tier, releases, with_evaluation, without_evaluation, share_evaluated_pct "
        "from evaluation_coverage where quarter = ?",
        [quarter],
    )
    chart = bar_chart(
        f"Notable releases with and without a published evaluation, {quarter}",
        [row[0] for row in rows],
        [("with evaluation", [row[2] for row in rows]), ("without evaluation", [row[3] for row in rows])],
    )
    return Section(
        "evaluation_coverage",
        "The evaluation gap",
        f"Notable releases of {quarter} with a published evaluation (model card results, Hub evaluation results, "
        "Papers With Code, Epoch benchmarks, Open LLM Leaderboard) and without one, per quality tier."
        + evidence_note([(row[0], row[2]) for row in rows], evidence_breakdown(con, quarter)),
        ("quality_tier", "releases", "with_evaluation", "without_evaluation", "share_evaluated_pct"),
        rows,
        chart,
    )


def evidence_breakdown(con: duckdb.DuckDBPyConnection, quarter: str) -> dict[str, dict[str, int]]:
    """Tier → evidence kind → evaluated notable releases of the quarter carrying it (one release, several kinds)."""
    breakdown: dict[str, dict[str, int]] = {}
    for tier, kind, count in _rows(con, EVIDENCE_BREAKDOWN, [quarter]):
        breakdown.setdefault(tier, {})[kind] = count
    return breakdown


def evidence_note(evaluated: Sequence[tuple[str, int]], breakdown: dict[str, dict[str, int]]) -> str:
    """Which evidence each tier's `with_evaluation` rests on; leaderboard evidence from merges or flags is told apart.

    `evaluated` is (tier, with_evaluation) as the view counts it, so the totals in the sentence are the table's.
    """
    parts = []
    for tier, total in evaluated:
        if not total:
            continue
        kinds = breakdown.get(tier, {})
        named = [kind for kind in EVIDENCE_KINDS if kinds.get(kind)]
        named += sorted(kind for kind in kinds if kind not in EVIDENCE_KINDS and not kind.endswith(MARKED_SUFFIX))
        described = []
        for kind in named:
            text = f"{kind} {kinds[kind]:,}"
            if kind.startswith("open_llm_leaderboard_"):
                text += f" (of which merged or flagged only {kinds.get(kind + MARKED_SUFFIX, 0):,})"
            described.append(text)
        parts.append(f"{tier}: {total:,} evaluated, via {', '.join(described)}" if described
                     else f"{tier}: {total:,} evaluated, no evidence kind recorded")
    if not parts:
        return ""
    return (" What the evaluated counts rest on (a release with several kinds of evidence counts under each; "
            "leaderboard evidence resting only on merged or flagged entries still counts, and is marked): "
            + "; ".join(parts) + ".")


# --- formatting -----------------------------------------------------------------------------------


def format_cell(value: object) -> str:
    """How a view value reads in the document: the value itself, no recomputation."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    return _number(value) if isinstance(value, (int, float)) else str(value)


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.2f}".rstrip("0").rstrip(".")


def markdown_text(value: object) -> str:
    """A string safe inside a Markdown table cell: no HTML, no links or images, no emphasis, no pipes."""
    text = html.escape(" ".join(format_cell(value).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|~#!])", r"\\\1", text)


def render_markdown(story: Story, image_target: Callable[[Section], str]) -> str:
    """The story as Markdown; `image_target` says where each section's chart is (a file or a data URI)."""
    lines = [f"# model-census: the story of {story.quarter}", "", markdown_text(story.headline), ""]
    for section in story.sections:
        lines += [f"## {section.title}", "", markdown_text(section.text), ""]
        lines += [f"![{section.title} chart]({image_target(section)})", ""]
        lines.append("| " + " | ".join(section.columns) + " |")
        lines.append("|" + "|".join("---" for _ in section.columns) + "|")
        lines += ["| " + " | ".join(markdown_text(value) for value in row) + " |" for row in section.rows]
        if not section.rows:
            lines.append("| " + " | ".join("–" for _ in section.columns) + " |")
        lines.append("")
    lines.append("Source: model-census views; counts are notable releases unless a section says otherwise.")
    return "\n".join(lines) + "\n"


def render_html(story: Story) -> str:
    """The story as one self-contained HTML page, charts inline; every value is escaped."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>model-census: {html.escape(story.quarter)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1a202c}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border-bottom:1px solid #e2e8f0;padding:.3rem .6rem;"
        "text-align:left}figure{margin:1rem 0}</style></head><body>",
        f"<h1>model-census: the story of {html.escape(story.quarter)}</h1>",
        f"<p>{html.escape(story.headline)}</p>",
    ]
    for section in story.sections:
        parts += [
            f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>',
            f"<p>{html.escape(section.text)}</p>",
            f"<figure>{section.chart}</figure>",
            "<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in section.columns) + "</tr></thead><tbody>",
        ]
        parts += [
            "<tr>" + "".join(f"<td>{html.escape(format_cell(value))}</td>" for value in row) + "</tr>"
            for row in section.rows
        ]
        parts.append("</tbody></table></section>")
    parts.append("<p>Source: model-census views; counts are notable releases unless a section says otherwise.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- charts ---------------------------------------------------------------------------------------


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    escaped = html.escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escaped}" font-family="sans-serif" font-size="12">'
        f"<title>{escaped}</title>"
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
        f'<text x="8" y="18" font-size="14" font-weight="bold">{escaped}</text>'
        + "".join(body)
        + "</svg>"
    )


def _short(label: object, limit: int = 28) -> str:
    text = " ".join(format_cell(label).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def column_chart(title: str, labels: Sequence[str], values: Sequence[int], projected_extra: Sequence[int]) -> str:
    """Vertical columns over time; a partial quarter's projected remainder is stacked on top, lighter."""
    width, height, top, bottom, left = 640, 280, 40, 40, 16
    plot_height = height - top - bottom
    slot = (width - 2 * left) / max(len(labels), 1)
    peak = max((v + e for v, e in zip(values, projected_extra)), default=0) or 1
    body = []
    for index, (label, value, extra) in enumerate(zip(labels, values, projected_extra)):
        x = left + index * slot + slot * 0.15
        bar_width = slot * 0.7
        value_height = plot_height * value / peak
        extra_height = plot_height * extra / peak
        base = top + plot_height
        body.append(f'<rect x="{x:.1f}" y="{base - value_height:.1f}" width="{bar_width:.1f}" '
                    f'height="{value_height:.1f}" fill="{PALETTE[0]}"/>')
        if extra:
            body.append(f'<rect x="{x:.1f}" y="{base - value_height - extra_height:.1f}" width="{bar_width:.1f}" '
                        f'height="{extra_height:.1f}" fill="{PROJECTION_COLOR}"/>')
        middle = x + bar_width / 2
        shown = f"{value}" + (f" (→{value + extra})" if extra else "")
        body.append(f'<text x="{middle:.1f}" y="{base - value_height - extra_height - 4:.1f}" '
                    f'text-anchor="middle">{html.escape(shown)}</text>')
        body.append(f'<text x="{middle:.1f}" y="{base + 16:.1f}" text-anchor="middle">{html.escape(_short(label))}</text>')
    return _svg(width, height, title, body)


def bar_chart(title: str, labels: Sequence[object], series: Sequence[tuple[str, Sequence[float]]]) -> str:
    """Horizontal bars, one group per label and one bar per series, values written at the bar's end."""
    width, top, label_width, bar, gap = 640, 30, 190, 14, 10
    legend = 22 if len(series) > 1 else 0
    group = bar * len(series) + gap
    height = top + legend + group * max(len(labels), 1) + 10
    peak = max((value for _, values in series for value in values if value is not None), default=0) or 1
    plot_width = width - label_width - 60
    body = []
    for index, (name, _) in enumerate(series if legend else []):
        x = label_width + index * 130
        body.append(f'<rect x="{x}" y="{top}" width="12" height="12" fill="{PALETTE[index % len(PALETTE)]}"/>')
        body.append(f'<text x="{x + 16}" y="{top + 11}">{html.escape(name)}</text>')
    if not labels:
        body.append(f'<text x="8" y="{top + legend + 14}">no rows</text>')
    for row, label in enumerate(labels):
        y = top + legend + row * group
        body.append(f'<text x="{label_width - 6}" y="{y + bar * len(series) / 2 + 4:.1f}" '
                    f'text-anchor="end">{html.escape(_short(label))}</text>')
        for index, (_, values) in enumerate(series):
            value = values[row] or 0
            length = plot_width * value / peak
            bar_y = y + index * bar
            body.append(f'<rect x="{label_width}" y="{bar_y}" width="{length:.1f}" height="{bar - 2}" '
                        f'fill="{PALETTE[index % len(PALETTE)]}"/>')
            body.append(f'<text x="{label_width + length + 4:.1f}" y="{bar_y + bar - 4}" font-size="11">'
                        f"{html.escape(format_cell(values[row]))}</text>")
    return _svg(width, height, title, body)


# --- entry points ---------------------------------------------------------------------------------


def open_published(db: Path) -> duckdb.DuckDBPyConnection:
    """A read-only session on the published file: never in the nightly writer's way."""
    if not db.exists():
        raise NoPublishedWarehouse(f"no published warehouse at {db}; run `census run` or `census demo` first")
    con = connect(db, read_only=True)
    missing = sorted(set(VIEWS) - {row[0] for row in con.execute("select view_name from duckdb_views()").fetchall()})
    if missing:
        con.close()
        raise NoPublishedWarehouse(f"{db} has no view {', '.join(missing)}: it was published by an older version; "
                                   "run the pipeline once to publish it again")
    return con


def _inside(out: Path, name: str) -> Path:
    """`out/name`, refused when it resolves elsewhere (a symlink planted there): a report writes only where asked."""
    target = out / name
    if target.resolve().parent != out.resolve():
        raise ReportUnavailable(f"refusing to write {target}: it resolves to {target.resolve()}, outside {out.resolve()}")
    return target


def write_report(db: Path, quarter: str | None, fmt: Format, out: Path) -> Path:
    """Write `report-<quarter>.<md|html>` (and, for Markdown, one SVG per chart) into `out`; returns the document."""
    con = open_published(db)
    try:
        story = read_story(con, quarter)
    finally:
        con.close()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-{story.quarter}"
    if fmt == "html":
        document = _inside(out, f"{stem}.html")
        document.write_text(render_html(story), encoding="utf-8")
        return document

    def chart_file(section: Section) -> str:
        name = f"{stem}-{section.key}.svg"
        _inside(out, name).write_text(section.chart, encoding="utf-8")
        return name

    document = _inside(out, f"{stem}.md")
    document.write_text(render_markdown(story, chart_file), encoding="utf-8")
    return document


def _data_uri(section: Section) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(section.chart.encode("utf-8")).decode("ascii")


def publish_report_artifact(db: Path) -> None:
    """Publish the latest quarter's story as a Prefect markdown artifact, charts inline as data URIs.

    The story is a by-product of the run: a failure here is logged and never fails the run.
    """
    from prefect import get_run_logger
    from prefect.artifacts import create_markdown_artifact

    logger = get_run_logger()
    try:
        con = open_published(db)
        try:
            story = read_story(con)
        finally:
            con.close()
        create_markdown_artifact(
            key=ARTIFACT_KEY, markdown=render_markdown(story, _data_uri), description=f"The story of {story.quarter}"
        )
        logger.info("report: published the story of %s as artifact %s", story.quarter, ARTIFACT_KEY)
    except Exception as exc:  # noqa: BLE001 - the report never fails the run that published the data
        logger.warning("report: not published (%s: %s)", type(exc).__name__, exc)
