"""Epoch AI against a server that misbehaves: every fault is retried, rejected with a reason, or ends
the source cleanly; the run finishes and its counts reconcile.

The source is driven at two levels: `sources.epoch` alone (fetch + read), and the ingest the pipeline
runs (`flows.ingest_epoch`) on a real work database, recorded in `ingestion_runs` exactly as the
pipeline's task records it, without starting Prefect.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import duckdb
import pytest
import requests

from faulty_server import Fault, FaultyServer, ok, redirect
from flows.ingest import IngestRun, SourceOutcome, Window
from flows.ingest_epoch import RAW_TABLE, ingest_epoch
from flows.pipeline import failed_outcome
from flows.settings import Settings
from sources import epoch
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable
from transforms.rebuild import rebuild
from warehouse import runs

SAMPLE_ROWS = 150
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


def fetch_items(url: str, **options: object) -> tuple[list[RawRecord], list[Rejected]]:
    with requests.Session() as session:
        download = epoch.fetch(url, session=session, backoff_seconds=0.01, **options)
        items = list(epoch.read_records(download.body, url))
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, Rejected)]


def sample_with_rows(epoch_csv: bytes, changes: list[dict[str, str]]) -> bytes:
    """The genuine sample plus one copy of its first row per change (the copy renamed and edited)."""
    reader = csv.reader(io.StringIO(epoch_csv.decode("utf-8"), newline=""))
    header, first = next(reader), next(reader)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for change in changes:
        row = dict(zip(header, first))
        row.update(change)
        writer.writerow([row[name] for name in header])
    return epoch_csv + out.getvalue().encode("utf-8", "surrogateescape")


# --- the source alone -------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out_then_loaded(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(429, b"slow down", {"Retry-After": "1"}), ok(epoch_zip))
    started = time.monotonic()
    records, rejects = fetch_items(url)
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert len(records) == SAMPLE_ROWS and not rejects
    assert faulty_server.requests_to("/ai_models.zip") == 2


def test_burst_of_500_502_503_is_retried_then_loaded(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(500), Fault(502), Fault(503), ok(epoch_zip))
    records, _ = fetch_items(url)
    assert len(records) == SAMPLE_ROWS
    assert faulty_server.requests_to("/ai_models.zip") == 4


def test_endless_503_fails_the_source_saying_it_retried(faulty_server: FaultyServer) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(503, b"down"))
    with pytest.raises(SourceError, match=r"HTTP 503 .* after 4 attempts$") as raised:
        fetch_items(url)
    assert raised.value.url == url


def test_connection_reset_mid_body_restarts_the_download(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script(
        "/ai_models.zip", Fault(200, epoch_zip, reset_after_bytes=len(epoch_zip) // 3), ok(epoch_zip)
    )
    records, rejects = fetch_items(url)
    assert len(records) == SAMPLE_ROWS and not rejects
    assert faulty_server.requests_to("/ai_models.zip") == 2


def test_download_that_always_breaks_off_is_a_transient_source_error(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(200, epoch_zip, reset_after_bytes=1000))
    with pytest.raises(SourceError, match=r"download broke off after .* after 3 attempts$"):
        fetch_items(url)
    assert faulty_server.requests_to("/ai_models.zip") == 3


def test_answer_slower_than_the_timeout_is_retried(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(200, epoch_zip, delay_seconds=1.5), ok(epoch_zip))
    records, _ = fetch_items(url, timeout=0.3)
    assert len(records) == SAMPLE_ROWS
    assert faulty_server.requests_to("/ai_models.zip") == 2


def test_truncated_zip_without_length_is_refused_whole(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(200, epoch_zip[: len(epoch_zip) // 2], content_length=False))
    with pytest.raises(SourceError, match="truncated or corrupt"):
        fetch_items(url)


def test_truncated_csv_rejects_only_the_cut_record(faulty_server: FaultyServer, epoch_csv: bytes) -> None:
    cut = epoch_csv[: len(epoch_csv) - 200]
    url = faulty_server.script("/notable_ai_models.csv", Fault(200, cut, {"Content-Type": "text/csv"}, content_length=False))
    records, rejects = fetch_items(url)
    assert len(records) == SAMPLE_ROWS - 1
    assert len(rejects) == 1 and "truncated download" in rejects[0].reason and rejects[0].raw_text


def test_html_instead_of_the_zip_means_the_download_moved(faulty_server: FaultyServer) -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Epoch AI</title></head><body>Page moved</body></html>"
    url = faulty_server.script("/ai_models.zip", ok(page, "text/html"))
    with pytest.raises(SourceUnavailable, match="HTML page"):
        fetch_items(url)


def test_empty_body_is_a_source_error_not_an_empty_snapshot(faulty_server: FaultyServer) -> None:
    url = faulty_server.script("/ai_models.zip", ok(b""))
    with pytest.raises(SourceError, match="empty"):
        fetch_items(url)


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "text/plain; charset=latin-1"])
def test_wrong_content_type_does_not_matter_the_bytes_do(
    faulty_server: FaultyServer, epoch_zip: bytes, epoch_csv: bytes, content_type: str
) -> None:
    zip_url = faulty_server.script("/ai_models.zip", ok(epoch_zip, content_type))
    csv_url = faulty_server.script("/notable_ai_models.csv", ok(epoch_csv, content_type))
    assert len(fetch_items(zip_url)[0]) == len(fetch_items(csv_url)[0]) == SAMPLE_ROWS


def test_redirect_to_another_host_is_refused_without_following(faulty_server: FaultyServer) -> None:
    url = faulty_server.script("/ai_models.zip", redirect("http://elsewhere.invalid/ai_models.zip"))
    with pytest.raises(SourceUnavailable, match=r"redirected to another site \(http://elsewhere.invalid/ai_models.zip\)"):
        fetch_items(url)


def test_redirect_on_the_same_host_is_followed(faulty_server: FaultyServer, epoch_zip: bytes) -> None:
    url = faulty_server.script("/ai_models.zip", redirect("/data/v2/ai_models.zip", 301))
    faulty_server.script("/data/v2/ai_models.zip", ok(epoch_zip))
    assert len(fetch_items(url)[0]) == SAMPLE_ROWS


def test_absurd_and_repeated_rows_are_rejected_with_reasons(faulty_server: FaultyServer, epoch_csv: bytes) -> None:
    body = sample_with_rows(
        epoch_csv,
        [
            {"Model": "Dated 1900", "Publication date": "1900-01-01"},
            {"Model": "Dated 2100", "Publication date": "2100-01-01"},
            {"Model": "Huge title", "Abstract": "x" * 1_000_000},
            {"Model": "Bad bytes \udcff\udcfe"},
            {"Model": "Grok-3"},  # the sample's first model, a second time
            {"Model": "Absurdly large", "Parameters": "1e30"},
        ],
    )
    url = faulty_server.script("/notable_ai_models.csv", ok(body, "text/csv"))
    records, rejects = fetch_items(url)
    reasons = " | ".join(r.reason for r in rejects)
    assert len(rejects) == 5, reasons
    for expected in (
        "implausible Publication date 1900-01-01",
        "implausible Publication date 2100-01-01",
        "unreadable CSV record (field larger than field limit",
        "invalid UTF-8",
        "duplicate Model 'Grok-3'",
    ):
        assert expected in reasons
    # 10^30 parameters is text at the source (cells land as received); staging refuses it (below).
    assert len(records) == SAMPLE_ROWS + 1 and records[-1].key.endswith("#Absurdly large")


# --- the ingest the pipeline runs, on a real work database ---------------------------------------------


def ingest_like_the_pipeline(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> SourceOutcome:
    """What `flows.pipeline.ingest_source` does around an ingest, minus Prefect's task machinery."""
    run = IngestRun(con, "epoch", run_id, detail={"window": "incremental"})
    runs.start_run(con, run_id, "epoch", run.detail)
    try:
        ingest_epoch(run, settings, Window())
    except SourceError as exc:
        outcome = failed_outcome("epoch", run, exc, timeout_seconds=settings.task_timeout_seconds)
        status = f"unavailable: {outcome.error}" if outcome.status == "unavailable" else outcome.status
        runs.finish_run(con, run_id, "epoch", status=status, counts=run.counts, requests=run.requests,
                        url=outcome.url, error=outcome.error, detail=run.detail)
        return outcome
    runs.finish_run(con, run_id, "epoch", status="success", counts=run.counts, requests=run.requests, detail=run.detail)
    return SourceOutcome("epoch", "success", run.counts, run.requests)


def recorded_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, object]:
    names = ("status", "fetched", "new", "changed", "unchanged", "rejected", "error", "url")
    row = con.execute(f"select {', '.join(names)} from ingestion_runs where run_id = ?", [run_id]).fetchone()
    recorded = dict(zip(names, row))
    assert recorded["fetched"] == recorded["new"] + recorded["changed"] + recorded["unchanged"] + recorded["rejected"]
    return recorded


def settings_for(url: str, **overrides: object) -> Settings:
    return Settings(epoch_url=url, **overrides)


def test_one_run_survives_429_503_and_a_reset_and_reconciles(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_zip: bytes
) -> None:
    url = faulty_server.script(
        "/ai_models.zip",
        Fault(429, headers={"Retry-After": "0"}),
        Fault(503, headers={"Retry-After": "0"}),
        Fault(200, epoch_zip, reset_after_bytes=2048),
        ok(epoch_zip, ETag='"v1"'),
    )
    assert ingest_like_the_pipeline(fresh_db, settings_for(url), "run-1").ok
    assert recorded_run(fresh_db, "run-1") | {"error": None, "url": None} == {
        "status": "success", "fetched": SAMPLE_ROWS, "new": SAMPLE_ROWS, "changed": 0, "unchanged": 0,
        "rejected": 0, "error": None, "url": None,
    }
    assert runs.get_cursor(fresh_db, "epoch")["etag"] == '"v1"'


def test_rejects_and_repeats_reconcile_across_two_runs(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_csv: bytes
) -> None:
    body = sample_with_rows(
        epoch_csv, [{"Model": "Dated 2100", "Publication date": "2100-01-01"}, {"Model": "Grok-3"},
                    {"Model": "Absurdly large", "Parameters": "1e30"}]
    )
    url = faulty_server.script("/notable_ai_models.csv", ok(body, "text/csv"))
    for run_id in ("run-1", "run-2"):
        assert ingest_like_the_pipeline(fresh_db, settings_for(url), run_id).ok
    first, second = recorded_run(fresh_db, "run-1"), recorded_run(fresh_db, "run-2")
    assert (first["fetched"], first["new"], first["rejected"]) == (SAMPLE_ROWS + 3, SAMPLE_ROWS + 1, 2)
    assert (second["fetched"], second["unchanged"], second["rejected"]) == (SAMPLE_ROWS + 3, SAMPLE_ROWS + 1, 2)
    assert fresh_db.execute("select count(*) from rejects where source = 'epoch'").fetchone()[0] == 2
    assert fresh_db.execute(f"select count(*), count(distinct source_key) from {RAW_TABLE}").fetchone() == (
        SAMPLE_ROWS + 1, SAMPLE_ROWS + 1)

    rebuild(fresh_db)
    parameters = fresh_db.execute(
        "select parameters from stg_epoch__models where epoch_name = 'Absurdly large'"
    ).fetchone()[0]
    assert parameters is None, "10^30 parameters is an error in the source, not a model size"
    assert fresh_db.execute("select max(publication_date) from stg_epoch__models").fetchone()[0].year < 2100


def test_a_csv_cut_short_keeps_its_rows_but_not_the_cursor(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_csv: bytes
) -> None:
    """A plain CSV sent without a length and broken off inside a record: the rows before the cut land, the
    source fails saying why, and the ETag is not saved, so the next run reads the whole file instead of a 304."""
    cut = epoch_csv[: len(epoch_csv) - 200]
    url = faulty_server.script("/notable_ai_models.csv",
                               Fault(200, cut, {"Content-Type": "text/csv", "ETag": '"v2"'}, content_length=False),
                               ok(epoch_csv, "text/csv", ETag='"v2"'))

    first = ingest_like_the_pipeline(fresh_db, settings_for(url), "run-1")
    recorded = recorded_run(fresh_db, "run-1")
    assert not first.ok and recorded["status"] == "failed" and "truncated download" in recorded["error"]
    assert (recorded["new"], recorded["rejected"]) == (SAMPLE_ROWS - 1, 1)
    assert runs.get_cursor(fresh_db, "epoch") is None

    assert ingest_like_the_pipeline(fresh_db, settings_for(url), "run-2").ok
    assert (recorded_run(fresh_db, "run-2")["new"], recorded_run(fresh_db, "run-2")["unchanged"]) == (1, SAMPLE_ROWS - 1)
    assert runs.get_cursor(fresh_db, "epoch")["etag"] == '"v2"'
    second_request = [seen for seen in faulty_server.seen if seen.path == "/notable_ai_models.csv"][-1]
    assert "if-none-match" not in {name.lower() for name in second_request.headers}


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        (Fault(503, b"down", {"Retry-After": "0"}), "failed", "HTTP 503 Service Unavailable after 4 attempts"),
        (redirect("https://elsewhere.invalid/data"), "unavailable: ", "redirected to another site"),
        (ok(b"<html><body>We moved</body></html>", "text/html"), "unavailable: ", "HTML page"),
        (Fault(404, b"gone"), "failed", "HTTP 404 Not Found"),
    ],
    ids=["endless-503", "redirect-away", "html", "404"],
)
def test_a_source_that_fails_ends_cleanly_and_keeps_what_was_there(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_zip: bytes,
    fault: Fault, status: str, error: str,
) -> None:
    good = faulty_server.script("/ai_models.zip", ok(epoch_zip, ETag='"v1"'))
    assert ingest_like_the_pipeline(fresh_db, settings_for(good), "run-1").ok
    faulty_server.script("/ai_models.zip", fault)

    outcome = ingest_like_the_pipeline(fresh_db, settings_for(good), "run-2")
    recorded = recorded_run(fresh_db, "run-2")
    assert recorded["status"].startswith(status) and error in recorded["error"]
    assert recorded["fetched"] == 0 and recorded["url"] == good
    assert not outcome.ok
    assert runs.get_cursor(fresh_db, "epoch")["etag"] == '"v1"', "the cursor stays where the last good run left it"
    assert fresh_db.execute(f"select count(*) from {RAW_TABLE}").fetchone()[0] == SAMPLE_ROWS


def test_timeout_setting_bounds_a_stalled_answer(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_zip: bytes
) -> None:
    url = faulty_server.script("/ai_models.zip", Fault(200, epoch_zip, delay_seconds=2.0), ok(epoch_zip))
    started = time.monotonic()
    assert ingest_like_the_pipeline(fresh_db, settings_for(url, http_timeout_seconds=0.3), "run-1").ok
    assert time.monotonic() - started < 2.0, "the client gave up on the stalled answer instead of waiting for it"
    assert recorded_run(fresh_db, "run-1")["new"] == SAMPLE_ROWS


def test_stored_payload_is_text_never_interpreted(
    fresh_db: duckdb.DuckDBPyConnection, faulty_server: FaultyServer, epoch_csv: bytes
) -> None:
    hostile = "Robert'); drop table raw_epoch__models; --<script>alert(1)</script>"
    url = faulty_server.script("/notable_ai_models.csv", ok(sample_with_rows(epoch_csv, [{"Model": hostile}]), "text/csv"))
    assert ingest_like_the_pipeline(fresh_db, settings_for(url), "run-1").ok
    payload = fresh_db.execute(
        f"select payload from {RAW_TABLE} where source_key = ?", [f"notable_ai_models.csv#{hostile}"]
    ).fetchone()[0]
    assert json.loads(payload)["Model"] == hostile
    assert fresh_db.execute(f"select count(*) from {RAW_TABLE}").fetchone()[0] == SAMPLE_ROWS + 1



# --- the same through `census run --source epoch`, under the session's Prefect server -----------------


@pytest.mark.usefixtures("prefect_api")
def test_census_run_rides_out_faults_and_reports_a_moved_source_in_one_line(
    census_env: Path, faulty_server: FaultyServer, epoch_zip: bytes, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.cli import main

    url = faulty_server.script(
        "/ai_models.zip",
        Fault(429, headers={"Retry-After": "0"}),
        Fault(502, headers={"Retry-After": "0"}),
        Fault(200, epoch_zip, reset_after_bytes=4096),
        ok(epoch_zip, ETag='"v1"'),
    )
    monkeypatch.setenv("MODEL_CENSUS_EPOCH_URL", url)
    assert main(["run", "--source", "epoch"]) == 0

    faulty_server.script("/ai_models.zip", redirect("https://elsewhere.invalid/ai_models.zip"))
    capsys.readouterr()
    assert main(["run", "--source", "epoch"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"census: epoch: unavailable at {url}: redirected to another site "
        "(https://elsewhere.invalid/ai_models.zip): the source has moved or retired"
    )
    with duckdb.connect(str(census_env.with_name("census.work.duckdb")), read_only=True) as con:
        recorded = con.execute(
            "select status, fetched, new, changed, unchanged, rejected from ingestion_runs order by started_at"
        ).fetchall()
    assert recorded[0] == ("success", SAMPLE_ROWS, SAMPLE_ROWS, 0, 0, 0)
    assert recorded[1][0].startswith("unavailable: redirected to another site") and recorded[1][1:] == (0, 0, 0, 0, 0)
    with duckdb.connect(str(census_env), read_only=True) as published:
        assert published.execute("select count(*) from stg_epoch__models").fetchone()[0] == SAMPLE_ROWS
