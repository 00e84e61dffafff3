"""Absurd values and bytes that are not text, per record: the bad record is rejected with a reason, the
others land, the counts reconcile, and what does land absurd (10^30 parameters, a 1 MB title from a source
that keeps titles as received) never breaks the rebuild, the views, the report or an export.

Pages are genuine fixtures with single records edited, served over loopback HTTP to the real clients;
the ingest runs as the pipeline's task runs it, on a real work database, without Prefect.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from faulty_server import Fault, FaultyServer, ok
from flows.export import export
from flows.ingest import IngestRun, Window
from flows.ingest_huggingface import ingest_with
from flows.report import write_report
from flows.settings import Settings
from sources import arxiv, epoch, huggingface
from sources.records import RawRecord, SourceError
from transforms.rebuild import VIEWS, rebuild
from warehouse import runs
from warehouse.connection import connect
from warehouse.publish import publish

FIXTURES = Path(__file__).parents[1] / "fixtures"
HUB_PAGE = FIXTURES / "huggingface" / "api_models_page_2026-09-28_from_slice.json"
ARXIV_PAGE = FIXTURES / "arxiv" / "api_query_search-testing_start0_max10.xml"
EPOCH_SAMPLE = FIXTURES / "epoch" / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv"
MEGABYTE = 1 << 20
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


def reconciled(run: IngestRun) -> dict[str, int]:
    counts = run.counts
    assert counts.fetched == counts.new + counts.changed + counts.unchanged + counts.rejected
    return {"fetched": counts.fetched, "new": counts.new, "rejected": counts.rejected}


def reject_reasons(con: duckdb.DuckDBPyConnection, source: str) -> dict[str | None, str]:
    return dict(con.execute("select source_key, reason from rejects where source = ?", [source]).fetchall())


# --- Hugging Face ----------------------------------------------------------------------------------


def test_hub_rejects_only_the_absurd_records_and_they_never_steer_the_walk(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer
) -> None:
    models = json.loads(HUB_PAGE.read_bytes())
    now = max(huggingface.parse_created_at(model["createdAt"]) for model in models) + timedelta(minutes=1)
    first, second = models[:20], models[20:]
    first[1].update(createdAt="1900-01-01T00:00:00.000Z")  # would end the walk at page one if believed
    first[2].update(createdAt="2100-01-01T00:00:00.000Z")  # would become the watermark if believed
    first[3].update(id="m/" + "x" * MEGABYTE)
    first[4].update(safetensors={"total": 10**30})  # kept as received: staging refuses it (below)
    body = json.dumps(first).encode()
    body = body.replace(f'"id": "{first[5]["id"]}"'.encode(), f'"id": "{first[5]["id"]}\\ud800"'.encode(), 1)
    body = body.replace(first[6]["id"].encode(), first[6]["id"].encode() + b"\xff\xfe", 1)
    headers = {"Content-Type": "application/json", "Link": f'<{faulty_server.url}/api/models/p2>; rel="next"'}
    faulty_server.route("/api/models", lambda request: Fault(200, body, headers) if request.path == "/api/models"
                        else ok(json.dumps(second).encode(), "application/json"))
    run = IngestRun(fresh_db, "huggingface", "run-1")

    ingest_with(run, Settings(hf_url=faulty_server.url, hf_refresh_days=0), Window(),
                huggingface.HubListing(faulty_server.url, sleep=lambda seconds: None), now=now)

    assert reconciled(run) == {"fetched": len(models), "new": len(models) - 5, "rejected": 5}
    assert faulty_server.requests_to("/api/models/p2") == 1, "the 1900 record did not end the walk"
    reasons = " | ".join(reject_reasons(fresh_db, "huggingface").values())
    for expected in ("implausible createdAt 1900-01-01", "implausible createdAt 2100-01-01",
                     "an id of 1,048,578 characters", "invalid UTF-8: 1 code point(s)", "invalid UTF-8: 2 code point(s)"):
        assert expected in reasons, reasons
    kept = fresh_db.execute("select raw_text from rejects where reason like 'invalid UTF-8: 2%'").fetchone()[0]
    assert first[6]["id"] + "\ufffd\ufffd" in kept, "the raw text is kept, the bad bytes shown as U+FFFD"
    watermark = runs.get_cursor(fresh_db, "huggingface")["watermark"]
    assert watermark.startswith("2026-09-28"), watermark

    rebuild(fresh_db)
    parameters = fresh_db.execute("select parameters from stg_huggingface__models where repo_id = ?",
                                  [first[4]["id"]]).fetchone()
    assert parameters == (None,), "10^30 parameters is an error in the source, not a model size"


# --- arXiv -------------------------------------------------------------------------------------------


def edit_entry(body: str, index: int, edit: re.Pattern[str], replacement: str) -> str:
    """The feed with one change inside its `index`-th entry."""
    entries = [match.span() for match in re.finditer(r"<entry>.*?</entry>", body, flags=re.DOTALL)]
    start, end = entries[index]
    return body[:start] + edit.sub(replacement, body[start:end], count=1) + body[end:]


def test_arxiv_rejects_only_the_entries_with_bad_bytes_or_absurd_values(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer
) -> None:
    text = ARXIV_PAGE.read_text(encoding="utf-8")
    title, published = re.compile(r"<title>"), re.compile(r"<published>[^<]*</published>")
    text = edit_entry(text, 1, published, "<published>1900-01-01T00:00:00Z</published>")
    text = edit_entry(text, 2, published, "<published>2100-01-01T00:00:00Z</published>")
    text = edit_entry(text, 3, title, "<title>" + "x" * MEGABYTE)
    body = edit_entry(text, 4, title, "<title>\udcff\udcfe").encode("utf-8", "surrogateescape")
    faulty_server.script("/api/query", ok(body, "application/atom+xml; charset=utf-8"))
    with arxiv.ArxivClient(f"{faulty_server.url}/api/query", delay_seconds=0, backoff_seconds=0.01) as client:
        page = client.query(search_query="testing", start=0, max_results=10)
    assert faulty_server.requests_to("/api/query") == 1, "a page with bad bytes in one entry is read, not asked again"
    run = IngestRun(fresh_db, "arxiv", "run-1")
    run.land("raw_arxiv__papers", page.items)

    assert reconciled(run) == {"fetched": 10, "new": 6, "rejected": 4}
    reasons = reject_reasons(fresh_db, "arxiv")
    assert all(key for key in reasons), "each reject keeps its arXiv id"
    joined = " | ".join(reasons.values())
    for expected in ("implausible <published> 1900-01-01", "implausible <published> 2100-01-01",
                     "a <title> of 1,048,6", "invalid UTF-8: bytes that are not text in <title>"):
        assert expected in joined, joined
    kept = fresh_db.execute("select raw_text from rejects where reason like 'invalid UTF-8%'").fetchone()[0]
    assert "<ns0:title>\ufffd\ufffd" in kept

    rebuild(fresh_db)
    assert fresh_db.execute("select count(*) from stg_arxiv__papers").fetchone() == (6,)


def test_arxiv_feed_whose_markup_is_broken_by_bad_bytes_is_asked_again_then_fails_the_source(
    faulty_server: FaultyServer,
) -> None:
    body = ARXIV_PAGE.read_bytes().replace(b"<entry>", b"<en\xfftry>", 1)
    faulty_server.script("/api/query", ok(body, "application/atom+xml"))
    with arxiv.ArxivClient(f"{faulty_server.url}/api/query", delay_seconds=0, backoff_seconds=0.01) as client:
        with pytest.raises(SourceError, match=r"unreadable Atom .* after 4 attempts"):
            client.query(search_query="testing", start=0, max_results=10)
    assert faulty_server.requests_to("/api/query") == 4


# --- what lands absurd, downstream ----------------------------------------------------------------


ABSURD_RAW: dict[str, list[RawRecord]] = {
    # Rows a source keeps as received (or an older version of the code landed): staging must cope.
    "raw_epoch__models": [
        RawRecord("notable_ai_models.csv#" + "Huge " * (MEGABYTE // 5),
                  json.dumps({"Model": "Huge " * (MEGABYTE // 5), "Publication date": "2024-02-01",
                              "Organization": "Org", "Parameters": "1e30", "Training compute (FLOP)": "1e300"})),
        RawRecord("notable_ai_models.csv#Far future", json.dumps({"Model": "Far future", "Publication date": "2100-01-01",
                                                                  "Parameters": "-5"})),
        RawRecord("notable_ai_models.csv#Long ago", json.dumps({"Model": "Long ago", "Publication date": "1900-01-01"})),
    ],
    "raw_huggingface__models": [
        RawRecord("absurd/likes", json.dumps({"id": "absurd/likes", "createdAt": "2100-01-01T00:00:00.000Z",
                                              "likes": 10**30, "downloads": 1e300, "safetensors": {"total": 10**30},
                                              "tags": ["base_model:" + "x" * MEGABYTE]})),
    ],
    "raw_arxiv__papers": [
        RawRecord("2401.00001", json.dumps({"id": ["http://arxiv.org/abs/2401.00001v99999999999999999999"],
                                            "published": ["2100-01-01T00:00:00Z"], "title": ["t" * MEGABYTE]})),
    ],
    "raw_paperswithcode__papers": [
        RawRecord("api:absurd", json.dumps({"id": "absurd", "arxiv_id": "2401.00001", "title": "T" * MEGABYTE,
                                            "published": "2100-01-01", "hf_models": ["absurd/likes"]})),
    ],
    "raw_paperswithcode__results": [
        RawRecord("api:absurd#1", json.dumps({"paper_id": "absurd", "model_name": "M" * MEGABYTE, "task_name": "t",
                                              "dataset_name": "d", "metrics": {"Accuracy": "1e30"},
                                              "best_rank": 10**30, "num_parameters": 10**30})),
    ],
    "raw_open_llm_leaderboard__results": [
        RawRecord("v2:absurd/likes:bfloat16:sha", json.dumps({
            "fullname": "absurd/likes", "Precision": "bfloat16", "Model sha": "sha", "#Params (B)": 1e30,
            "Average ⬆️": 1e30, "Hub ❤️": 10**30, "Submission Date": "2100-01-01", "Type": "x" * MEGABYTE})),
    ],
}


def test_absurd_values_that_land_never_break_the_rebuild_views_report_or_export(
    fresh_db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    run = IngestRun(fresh_db, "epoch", "run-1")
    with EPOCH_SAMPLE.open("rb") as sample:
        run.land("raw_epoch__models", list(epoch.read_records(sample, str(EPOCH_SAMPLE))))
    for table, records in ABSURD_RAW.items():
        IngestRun(fresh_db, table.split("__")[0].removeprefix("raw_"), "run-1").land(table, records)

    rebuild(fresh_db)
    assert fresh_db.execute(
        "select parameters from stg_epoch__models where epoch_name in ('Far future', ?)", ["Huge " * (MEGABYTE // 5)]
    ).fetchall() == [(None,), (None,)]
    assert fresh_db.execute(
        "select likes, downloads, parameters from stg_huggingface__models where repo_id = 'absurd/likes'"
    ).fetchone() == (None, None, None)
    assert fresh_db.execute("select best_rank from stg_paperswithcode__results").fetchall() == [(None,)]
    assert fresh_db.execute("select params_billions, average from stg_open_llm_leaderboard__results").fetchall() == [
        (None, None)], "a score of 10^30 on a 0-100 scale is an error in the source"
    assert fresh_db.execute("select version from stg_arxiv__papers").fetchall() == [(None,)]
    for view in VIEWS:
        fresh_db.execute(f"select * from {view}").fetchall()
    latest = fresh_db.execute("select max(quarter_start) from release_cadence_quarterly").fetchone()[0]
    assert latest.year < 2100, "a release dated 2100 is not counted as a quarter yet to come"

    db = tmp_path / "census.duckdb"
    publish(fresh_db, db)
    for fmt in ("md", "html"):
        document = write_report(db, "2024-Q1", fmt, tmp_path / "reports")
        assert "Huge Huge" in document.read_text(encoding="utf-8")
    files = export(db, "csv", tmp_path / "export")
    with connect(db, read_only=True) as con:
        for path in files:
            assert con.execute("select count(*) from read_csv(?, max_line_size = 4194304)", [str(path)]).fetchone() \
                == con.execute(f'select count(*) from "{path.stem}"').fetchone(), path.name

