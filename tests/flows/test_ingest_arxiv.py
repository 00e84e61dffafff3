"""The arXiv ingest against a local arXiv answering from genuine entries: splitting, politeness, reruns, versions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from flows.demo_arxiv import API_PATH, RSS_PATH, ArxivReplay
from flows.ingest import IngestRun, Window
from flows.ingest_arxiv import OVERLAP, RAW_TABLE, ingest_arxiv, listing_range
from flows.replay_server import Reply, ReplayServer, Request
from flows.settings import Settings
from sources import arxiv
from sources.records import SourceError
from transforms.arxiv_facts import build_paper_facts
from warehouse.sql_files import read_sql

FIXTURES = Path(__file__).parents[1] / "fixtures" / "arxiv"
DELAY = 0.05
CATEGORIES = ["cs.CL", "cs.LG", "cs.AI"]
BACKFILL = Window(date(2023, 1, 1), date(2023, 4, 1))
PAPERS = 45_000


def genuine() -> ArxivReplay:
    return ArxivReplay.from_feeds(sorted(FIXTURES.glob("api_query_*.xml")))


def synthetic_corpus(papers: int) -> ArxivReplay:
    """Copies of the shortest genuine entries under new ids, 45,000 submissions in the first quarter of 2023.

    A fifth of them fall on one day (a conference deadline), so one window must split twice.
    """
    templates = sorted(genuine().entries, key=lambda entry: len(entry.text))[:4]
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    span = timedelta(days=89)
    deadline = datetime(2023, 2, 10, 12, tzinfo=timezone.utc)
    entries = []
    for number, template, category in zip(range(papers), itertools.cycle(templates), itertools.cycle(CATEGORIES)):
        if number % 5 == 0:
            published = deadline + timedelta(seconds=(number // 5) * 86_400 // (papers // 5))
        else:
            published = start + span * (number / papers)
        entries.append(template.copy_as(f"2301.{number:05d}", published.replace(microsecond=0), category))
    return ArxivReplay(entries)


@pytest.fixture
def con(fresh_db: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return fresh_db


@pytest.fixture(scope="module")
def big_corpus() -> ArxivReplay:
    return synthetic_corpus(PAPERS)


@contextmanager
def serve(replay: ArxivReplay) -> Iterator[Settings]:
    with ReplayServer(routes=replay.routes()) as server:
        yield Settings(
            arxiv_url=f"{server.url}/arxiv/api/query", arxiv_rss_url=f"{server.url}/arxiv/rss/",
            arxiv_delay_seconds=DELAY, arxiv_categories=CATEGORIES, http_timeout_seconds=10,
        )


def ingest(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window, run_id: str) -> IngestRun:
    run = IngestRun(con, "arxiv", run_id)
    ingest_arxiv(run, settings, window)
    return run


def test_45000_paper_backfill_splits_under_the_cap_loads_each_once_and_reruns_to_nothing(
    con: duckdb.DuckDBPyConnection, big_corpus: ArxivReplay
) -> None:
    with serve(big_corpus) as settings:
        first = ingest(con, settings, BACKFILL, "backfill-1")
        log = list(big_corpus.log)
        second = ingest(con, settings, BACKFILL, "backfill-2")

    plain = big_corpus._search(arxiv.window_query(CATEGORIES, datetime(2023, 1, 1, tzinfo=timezone.utc),
                                                  datetime(2023, 4, 1, tzinfo=timezone.utc)))
    assert len(plain) == PAPERS, "the plain query would return 45,000 results"
    assert first.counts.new == first.counts.fetched == PAPERS
    assert con.execute(f"select count(*), count(distinct source_key) from {RAW_TABLE}").fetchone() == (PAPERS, PAPERS)

    paged = [entry for entry in log if int(entry.query["start"]) > 0]
    assert all(entry.status == 200 for entry in log), "no query ran into the 10,000-result cap"
    assert max(entry.total for entry in paged) <= arxiv.RESULT_CAP
    windows = {entry.query["search_query"] for entry in log if entry.total <= arxiv.RESULT_CAP}
    assert first.detail["windows"] == len(windows) >= 5
    assert sum(next(e.total for e in log if e.query["search_query"] == q) for q in windows) == PAPERS

    gaps = [later.arrival - earlier.answered for earlier, later in zip(log, log[1:])]
    assert min(gaps) >= DELAY, "no request came sooner than the delay after the previous answer"
    assert first.requests == len(log)

    assert (second.counts.new, second.counts.changed, second.counts.unchanged) == (0, 0, PAPERS)
    assert con.execute(f"select count(*) from {RAW_TABLE}").fetchone()[0] == PAPERS
    assert first.cursor() == {}, "a backfill leaves no watermark and, once finished, no progress"


def test_new_version_announced_in_rss_updates_the_paper_and_keeps_the_old_one(con: duckdb.DuckDBPyConnection) -> None:
    replay = genuine()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    recent = [entry.copy_as(f"2611.{number:05d}", now - timedelta(days=1, minutes=number), "cs.LG")
              for number, entry in enumerate(replay.entries[:30])]
    replay = ArxivReplay(replay.entries + recent)
    with serve(replay) as settings:
        nightly = ingest(con, settings, Window(), "night-1")
        assert nightly.counts.new == 30, "the first nightly run reads its look-back window"
        old = ingest(con, settings, Window(date(2015, 1, 1), None), "backfill")
        revised_old = replay.revise("2202.12139", now)  # an old paper: no date window shows its new version
        revised_new = replay.revise("2611.00003", now)
        second = ingest(con, settings, Window(), "night-2")

    assert old.counts.new > 0
    assert revised_old.version == 2 and second.detail["rss_replaced"] == 2
    assert second.counts.changed == 2 and second.counts.new == 0
    history = con.execute(
        f"select version, payload ->> '$.id[0]' from {RAW_TABLE} where source_key = '2202.12139' order by version"
    ).fetchall()
    assert history == [(1, "http://arxiv.org/abs/2202.12139v1"), (2, "http://arxiv.org/abs/2202.12139v2")]
    assert revised_new.version == 2
    assert second.cursor()["pending_versions"] == {}

    build_paper_facts(con)
    con.execute("create table stg_arxiv__papers as " + read_sql("staging", "stg_arxiv__papers"))
    assert con.execute("select version from stg_arxiv__papers where arxiv_id = '2202.12139'").fetchone() == (2,)
    assert con.execute("select count(*) = count(distinct arxiv_id) from stg_arxiv__papers").fetchone() == (True,)


def test_a_backfill_killed_part_way_goes_on_from_its_last_finished_window(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arxiv, "RESULT_CAP", 400)
    replay = synthetic_corpus(3_000)
    answered = 0

    def failing_after_six(request: Request) -> Reply:
        nonlocal answered
        answered += 1
        return replay.query(request) if answered <= 6 else Reply(503, b"down")

    with ReplayServer(routes={API_PATH: failing_after_six}) as server:
        settings = Settings(arxiv_url=f"{server.url}{API_PATH}", arxiv_delay_seconds=0.0, arxiv_categories=CATEGORIES)
        run = IngestRun(con, "arxiv", "killed")
        with pytest.raises(SourceError, match="HTTP 503"):
            ingest_arxiv(run, settings, BACKFILL)
    progress = run.cursor()["backfill"]
    assert progress["window"] == BACKFILL.label()
    kept = con.execute(f"select count(*) from {RAW_TABLE}").fetchone()[0]
    assert 0 < kept < 3_000

    killed_requests = len(replay.log)
    with serve(replay) as settings:
        resumed = ingest(con, settings, BACKFILL, "resumed")
    first_query = replay.log[killed_requests].query["search_query"]
    assert f"submittedDate:[{datetime.fromisoformat(progress['done_until']):%Y%m%d%H%M} TO" in first_query
    assert con.execute(f"select count(*), count(distinct source_key) from {RAW_TABLE}").fetchone() == (3_000, 3_000)
    assert resumed.counts.new == 3_000 - kept and resumed.cursor() == {}


@pytest.mark.parametrize(
    ("rss_file", "announced", "id_requests"),
    [("rss_cs.LG_2026-08-20_announcement.xml", 237, 3), ("rss_cs.LG_2026-08-16_sunday_empty.xml", 0, 0)],
)
def test_nightly_asks_by_id_for_every_announced_version_it_lacks_and_keeps_the_missing_pending(
    con: duckdb.DuckDBPyConnection, rss_file: str, announced: int, id_requests: int
) -> None:
    replay = genuine()
    genuine_rss = (FIXTURES / rss_file).read_bytes()
    routes = {
        API_PATH: replay.query,
        RSS_PATH: lambda request: Reply(200, genuine_rss, {"Content-Type": "application/rss+xml"}),
    }
    with ReplayServer(routes=routes) as server:
        settings = Settings(arxiv_url=f"{server.url}{API_PATH}", arxiv_rss_url=f"{server.url}{RSS_PATH}",
                            arxiv_delay_seconds=0.0, arxiv_categories=CATEGORIES)
        run = ingest(con, settings, Window(), "night")
    by_id = [entry for entry in replay.log if entry.query.get("id_list")]
    assert len(by_id) == id_requests
    assert all(len(entry.query["id_list"].split(",")) <= arxiv.ID_BATCH for entry in by_id)
    assert run.detail["rss_items"] == announced
    # none of the day's papers is in this small local arXiv: all missing, all still wanted tomorrow
    assert run.detail["missing_count"] == len(run.cursor()["pending_versions"]) == announced
    assert run.cursor()["rss_published"].startswith(("Thu, 20 Aug 2026", "Sun, 16 Aug 2026"))


def test_nightly_reads_from_its_watermark_minus_the_overlap() -> None:
    now = datetime(2026, 8, 21, 6, 0, tzinfo=timezone.utc)
    assert listing_range(Window(), {}, now=now, lookback_days=7) == (now - timedelta(days=7), now)
    cursor = {arxiv.CURSOR_FIELD: "2026-08-20T06:00:00+00:00"}
    assert listing_range(Window(), cursor, now=now, lookback_days=7) == (
        datetime(2026, 8, 20, 6, tzinfo=timezone.utc) - OVERLAP, now)
    assert listing_range(BACKFILL, cursor, now=now, lookback_days=7) == (
        datetime(2023, 1, 1, tzinfo=timezone.utc), datetime(2023, 4, 1, tzinfo=timezone.utc))


def test_staging_gives_one_row_per_paper_with_repaired_authors_and_links(con: duckdb.DuckDBPyConnection) -> None:
    with serve(genuine()) as settings:
        ingest(con, settings, Window(date(2015, 1, 1), None), "backfill")
        run = IngestRun(con, "arxiv", "ids")
        with arxiv.ArxivClient(settings.arxiv_url, delay_seconds=DELAY) as client:
            for found in arxiv.id_pages(client, ["1707.08567", "astro-ph/0601001", "0808.05394"]):
                run.land(RAW_TABLE, found.page.items)
                assert found.missing == ["0808.05394"]
    build_paper_facts(con)
    con.execute("create table stg_arxiv__papers as " + read_sql("staging", "stg_arxiv__papers"))
    authors, = con.execute("select authors from stg_arxiv__papers where arxiv_id = '1707.08567'").fetchone()
    assert "Dirk Wübben" in authors and not any("Ã" in name for name in authors)
    old_style = con.execute(
        "select version, primary_category, affiliations, journal_ref, pdf_url from stg_arxiv__papers "
        "where arxiv_id = 'astro-ph/0601001'"
    ).fetchone()
    assert old_style == (1, "astro-ph", ["Ohio State", "CfA", "Warsaw University Observatory"],
                         "ActaAstron.56:1-50,2006", "https://arxiv.org/pdf/astro-ph/0601001v1")
    assert con.execute("select count(*) from stg_arxiv__papers where published_at is null or title is null").fetchone() == (0,)
