"""Epoch AI's CSVs and zip, read from real snapshots and served over real HTTP."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from sources import epoch
from sources.records import RawRecord, Rejected, SourceError

EPOCH = Path(__file__).parents[1] / "fixtures" / "epoch"
SNAPSHOTS = sorted(EPOCH.glob("*.csv"))
EXPECTED_REAL_REJECTS = ("empty Model", "duplicate Model")
"""The only rows the real snapshots reject: Epoch's own blank and doubled rows, never schema drift."""


def read(path: Path, name: str | None = None) -> tuple[list[RawRecord], list[Rejected]]:
    with path.open("rb") as raw:
        items = list(epoch.read_csv(raw, name or path.name))
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, Rejected)]


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=lambda p: p.stem)
def test_every_real_snapshot_loads_without_schema_drift_rejects(snapshot: Path) -> None:
    records, rejects = read(snapshot)
    assert len(records) > 100
    assert all(any(reason in r.reason for reason in EXPECTED_REAL_REJECTS) for r in rejects), [r.reason for r in rejects]
    first = json.loads(records[0].payload)
    assert first["Model"] and "Publication date" in first


def test_payload_keeps_every_cell_as_received_including_newlines_and_lists() -> None:
    records, _ = read(EPOCH / "notable_ai_models_snapshot_2026-07-19.csv", "notable_ai_models.csv")
    inkling = json.loads(next(r.payload for r in records if r.key == "notable_ai_models.csv#Inkling"))
    assert inkling["Domain"] == "Language,Multimodal,Audio,Video,Vision"
    assert "\n\n" in inkling["Abstract"]
    assert inkling["Parameters"] == "975000000000.0"
    assert len(inkling) == 47


def test_old_and_new_schemas_name_the_country_column_differently() -> None:
    new, _ = read(EPOCH / "notable_ai_models_snapshot_2026-07-19.csv")
    old, _ = read(EPOCH / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv")
    assert "Country (of organization)" in json.loads(new[0].payload)
    assert "Country (from Organization)" in json.loads(old[0].payload)


def test_truncated_last_line_and_bad_date_reject_only_those_rows(tmp_path: Path) -> None:
    header, rows = _first_records(EPOCH / "notable_ai_models_snapshot_2026-07-19.csv", 4)
    bad_date = rows[2].replace(",2026-", ",20XX-", 1)
    sample = tmp_path / "notable_ai_models.csv"
    sample.write_text(header + rows[0] + rows[1] + bad_date + rows[3][: len(rows[3]) // 3], encoding="utf-8")
    records, rejects = read(sample)
    assert len(records) == 2
    reasons = sorted(r.reason for r in rejects)
    assert len(reasons) == 2
    assert any("unparseable Publication date '20XX-" in r for r in reasons)
    assert any("truncated download" in r for r in reasons)
    assert all(r.raw_text for r in rejects)


def test_invalid_utf8_row_is_rejected_and_the_rest_land(tmp_path: Path) -> None:
    sample = tmp_path / "all_ai_models.csv"
    sample.write_bytes(b"Model,Publication date\nGood,2023-01-01\nBad \xff\xfe,2023-01-02\nAlso good,\n")
    records, rejects = read(sample)
    assert [r.key for r in records] == ["all_ai_models.csv#Good", "all_ai_models.csv#Also good"]
    assert [r.reason for r in rejects] == ["all_ai_models.csv: invalid UTF-8"]


def _first_records(path: Path, count: int) -> tuple[str, list[str]]:
    """The header line and the first records of a real file, each record re-written as CSV text."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        rows = [next(reader) for _ in range(count + 1)]
    texts = []
    for row in rows:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(row)
        texts.append(out.getvalue())
    return texts[0], texts[1:]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return out.getvalue()


def test_zip_over_http_yields_rows_of_every_member_keyed_by_file(httpserver: HTTPServer) -> None:
    body = _zip(
        {
            "notable_ai_models.csv": (EPOCH / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv").read_bytes(),
            "frontier_ai_models.csv": (EPOCH / "frontier_ai_models_snapshot_2025-12-02.csv").read_bytes(),
        }
    )
    httpserver.expect_request("/data/ai_models.zip").respond_with_data(body, headers={"ETag": '"v1"'})
    with requests.Session() as session:
        download = epoch.fetch(httpserver.url_for("/data/ai_models.zip"), session=session)
        items = list(epoch.read_records(download.body, httpserver.url_for("/data/ai_models.zip")))
    files = {item.key.split("#")[0] for item in items if isinstance(item, RawRecord)}
    assert files == {"notable_ai_models.csv", "frontier_ai_models.csv"}
    assert sum(isinstance(item, RawRecord) for item in items) == 150 + 131
    assert download.etag == '"v1"' and download.bytes_read == len(body)


def test_unchanged_snapshot_costs_one_request_and_no_parsing(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/notable_ai_models.csv", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    with requests.Session() as session:
        download = epoch.fetch(httpserver.url_for("/notable_ai_models.csv"), session=session, etag='"v1"')
    assert download.not_modified and download.body is None


def test_server_error_burst_is_retried_then_loaded(httpserver: HTTPServer) -> None:
    csv_bytes = b"Model,Publication date\nA,2023-01-01\n"
    httpserver.expect_ordered_request("/x.csv").respond_with_data("busy", status=503, headers={"Retry-After": "0"})
    httpserver.expect_ordered_request("/x.csv").respond_with_data("bad gateway", status=502, headers={"Retry-After": "0"})
    httpserver.expect_ordered_request("/x.csv").respond_with_data(csv_bytes)
    with requests.Session() as session:
        download = epoch.fetch(httpserver.url_for("/x.csv"), session=session)
        items = list(epoch.read_records(download.body, httpserver.url_for("/x.csv")))
    assert [item.key for item in items] == ["x.csv#A"]


def test_not_found_fails_at_once_with_status_and_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone.zip").respond_with_data("nope", status=404)
    with requests.Session() as session, pytest.raises(SourceError, match="HTTP 404") as raised:
        epoch.fetch(httpserver.url_for("/gone.zip"), session=session)
    assert raised.value.url.endswith("/gone.zip")
    assert len(httpserver.log) == 1


def test_truncated_zip_is_a_source_error(httpserver: HTTPServer) -> None:
    body = _zip({"notable_ai_models.csv": b"Model,Publication date\nA,2023-01-01\n" * 2000})
    httpserver.expect_request("/ai_models.zip").respond_with_data(body[: len(body) // 2])
    with requests.Session() as session:
        download = epoch.fetch(httpserver.url_for("/ai_models.zip"), session=session)
        with pytest.raises(SourceError, match="truncated or corrupt"):
            list(epoch.read_records(download.body, httpserver.url_for("/ai_models.zip")))
