"""The Open LLM Leaderboard archives: rows as received from parquet in the real schemas, commits from the Hub."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sources import open_llm_leaderboard
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable

FIXTURES = Path(__file__).parents[1] / "fixtures" / "open_llm_leaderboard"
sys.path.insert(0, str(FIXTURES))
from build_parquet import COLUMNS, fixture_rows, write_archive  # noqa: E402


def split(items: list[RawRecord | Rejected]) -> tuple[list[RawRecord], list[Rejected]]:
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, Rejected)]


def test_the_fixture_files_have_the_archives_real_columns_in_order() -> None:
    with duckdb.connect() as con:
        for version, columns in COLUMNS.items():
            described = con.execute("select column_name, column_type from (describe select * from read_parquet(?))",
                                    [str(FIXTURES / f"contents_{version}.parquet")]).fetchall()
            assert described == list(columns)


def test_v2_rows_land_as_the_json_of_the_row_keyed_by_version_repo_precision_and_sha() -> None:
    records, rejected = split(list(open_llm_leaderboard.read_rows("v2", [FIXTURES / "contents_v2.parquet"])))

    assert not rejected and len(records) == len(fixture_rows("v2")) == 8
    chat = next(r for r in records if r.key.startswith("v2:01-ai/Yi-1.5-9B-Chat:"))
    assert chat.key == "v2:01-ai/Yi-1.5-9B-Chat:bfloat16:bc87d8557c98dc1e5fdef6ec23ed31088c4d3f35"
    payload = json.loads(chat.payload)
    assert payload == next(row for row in fixture_rows("v2") if row["fullname"] == "01-ai/Yi-1.5-9B-Chat"), \
        "every column, under the archive's own name, with the value as published"


def test_a_v1_row_without_a_repo_is_rejected_and_a_nan_score_becomes_null() -> None:
    records, rejected = split(list(open_llm_leaderboard.read_rows("v1", [FIXTURES / "contents_v1.parquet"])))

    assert len(records) == 6 and len(rejected) == 1
    assert "without fullname" in rejected[0].reason and '"eval_name":"no-repo_float16"' in rejected[0].raw_text
    unfinished = json.loads(next(r.payload for r in records if "unfinished-3b" in r.key))
    assert unfinished["Average ⬆️"] is None and unfinished["GSM8K"] is None and unfinished["ARC"] == 40.0
    assert {r.key.split(":")[2] for r in records if "Yi-34B-Chat" in r.key} == {"bfloat16", "float16"}


def test_an_archive_that_lost_its_average_column_is_unavailable(tmp_path: Path) -> None:
    path = write_archive("v2", fixture_rows("v2"), tmp_path / "v2.parquet")
    with duckdb.connect() as con:
        con.execute(f"""copy (select * exclude ("Average ⬆️") from read_parquet('{path}')) to '{tmp_path / "cut.parquet"}' (format parquet)""")

    with pytest.raises(SourceUnavailable, match="Average"):
        list(open_llm_leaderboard.read_rows("v2", [tmp_path / "cut.parquet"]))


def test_the_commit_and_parquet_files_come_from_one_dataset_info_request(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/datasets/open-llm-leaderboard/contents").respond_with_json({
        "id": "open-llm-leaderboard/contents", "sha": "c" * 40,
        "siblings": [{"rfilename": ".gitattributes"}, {"rfilename": "README.md"},
                     {"rfilename": "data/train-00000-of-00001.parquet"}],
    })

    revision = open_llm_leaderboard.archive_revision(httpserver.url_for("").rstrip("/"), None, "v2")

    assert revision.commit == "c" * 40 and revision.files == ("data/train-00000-of-00001.parquet",)


def test_the_timeout_setting_bounds_the_dataset_api_request(httpserver: HTTPServer) -> None:
    """`MODEL_CENSUS_HTTP_TIMEOUT_SECONDS` reaches the client: a stalled answer fails in about that long."""
    def stall(request: Request) -> Response:
        time.sleep(2.0)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/api/datasets/open-llm-leaderboard/contents").respond_with_handler(stall)
    started = time.monotonic()
    with pytest.raises(SourceError, match="open-llm-leaderboard/contents"):
        open_llm_leaderboard.archive_revision(httpserver.url_for("").rstrip("/"), None, "v2", timeout=0.3)
    assert time.monotonic() - started < 1.5, "the client's own 10 s default would wait out the whole stall"


def test_an_archive_gone_from_the_hub_is_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/datasets/open-llm-leaderboard-old/contents").respond_with_data(
        '{"error":"Repository not found"}', status=404, headers={"X-Error-Code": "RepoNotFound"},
        content_type="application/json")

    with pytest.raises(SourceUnavailable, match="open-llm-leaderboard-old/contents"):
        open_llm_leaderboard.archive_revision(httpserver.url_for("").rstrip("/"), None, "v1")


def test_a_refused_token_fails_the_source_without_showing_the_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/datasets/open-llm-leaderboard/contents").respond_with_data(
        '{"error":"Invalid credentials in Authorization header"}', status=401, content_type="application/json")

    with pytest.raises(SourceError) as caught:
        open_llm_leaderboard.archive_revision(httpserver.url_for("").rstrip("/"), "hf_secret_token_value", "v2")

    assert not isinstance(caught.value, SourceUnavailable)
    assert "hf_secret_token_value" not in str(caught.value) and "hf_secret_token_value" not in caught.value.url
