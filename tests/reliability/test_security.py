"""Secrets, arguments, paths, servers and hostile text.

`HF_TOKEN` is set to a canary and every output of real runs is searched for it: what the CLI printed,
every log record, every file the runs wrote (warehouse, WAL, report, export), and the Prefect
server's database (logs, artifacts, parameters, states).
"""

from __future__ import annotations

import ast
import json
import logging
import re
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from faulty_server import Fault, FaultyServer, Seen, ok

CANARY = f"hf_Canary{uuid.uuid4().hex}"
"""One canary per session; each test that runs the pipeline adds its own suffix, since the Prefect
server's database is shared by the session and must be searched for this test's token alone."""
REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:Logger .* attempted to send logs to the API:UserWarning")


def files_holding(text: str, *folders: Path) -> list[Path]:
    needle = text.encode()
    return [
        path for folder in folders if folder.exists()
        for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()
    ]


def prefect_database_folder() -> Path:
    """Where the session's test Prefect server keeps its SQLite database (logs, artifacts, parameters)."""
    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    return Path(url.split("///", 1)[1]).parent


def flush_prefect_logs() -> None:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # blocks until every queued log has reached the server


@pytest.fixture
def canary(census_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> str:
    """This test's token, set as HF_TOKEN; logs captured at INFO, the level runs log at."""
    token = f"{CANARY}{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HF_TOKEN", token)
    caplog.set_level(logging.INFO)
    return token


# --- the token --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_api")
def test_hf_token_appears_in_no_output_of_a_whole_demo_run_report_and_export(
    canary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from flows.cli import main

    demo_db = tmp_path / "demo" / "demo.duckdb"
    assert main(["demo", "--db", str(demo_db)]) == 0
    assert main(["report", "--db", str(demo_db), "--format", "html", "--out", str(tmp_path / "reports")]) == 0
    assert main(["report", "--db", str(demo_db), "--out", str(tmp_path / "reports")]) == 0
    assert main(["export", str(tmp_path / "export"), "--db", str(demo_db)]) == 0
    assert main(["status", "--db", str(demo_db)]) == 0
    flush_prefect_logs()

    printed = capsys.readouterr()
    assert canary not in printed.out + printed.err
    assert canary not in caplog.text
    assert list((tmp_path / "reports").glob("*.html")) and list((tmp_path / "export").glob("*.parquet"))
    assert files_holding(canary, tmp_path, prefect_database_folder()) == []


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(
    "fault",
    [
        Fault(401, json.dumps({"error": f"Invalid credentials in Authorization header: Bearer {CANARY}"}).encode(),
              {"Content-Type": "application/json", "X-Error-Message": f"bad token {CANARY}"}),
        Fault(302, b"", {"Location": f"https://elsewhere.invalid/login?token={CANARY}"}),
        Fault(500, f"<html>upstream said Bearer {CANARY}</html>".encode(), {"Content-Type": "text/html", "Retry-After": "0"}),
    ],
    ids=["401-echoing-the-token", "redirect-with-token-in-query", "500-echoing-the-token"],
)
def test_hub_that_echoes_the_token_back_does_not_make_us_leak_it(
    canary: str, tmp_path: Path, faulty_server: FaultyServer, fault: Fault, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    from flows.cli import main

    def echo(request: Seen) -> Fault:
        """Whatever the fault says, with the token the request carried in place of CANARY."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        headers = {key: value.replace(CANARY, token) for key, value in fault.headers.items()}
        return replace(fault, body=fault.body.replace(CANARY.encode(), token.encode()), headers=headers)

    faulty_server.route("/api/", echo)
    monkeypatch.setenv("MODEL_CENSUS_HF_URL", faulty_server.url)
    assert main(["run", "--source", "huggingface"]) == 1
    flush_prefect_logs()

    sent = [seen.headers.get("authorization", "") for seen in faulty_server.seen if seen.path.startswith("/api/")]
    assert sent and all(canary in header for header in sent), "the token was in play: the Hub got it"
    printed = capsys.readouterr()
    assert re.search(r"census: huggingface: (failed|unavailable)", printed.err), printed.err
    assert canary not in printed.out + printed.err
    assert canary not in caplog.text
    assert files_holding(canary, tmp_path, prefect_database_folder()) == []


def test_settings_never_show_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.settings import Settings

    monkeypatch.setenv("HF_TOKEN", CANARY)
    settings = Settings()
    assert settings.token_value() == CANARY
    assert CANARY not in repr(settings) + str(settings) + settings.model_dump_json()


# --- arguments and paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--since", "2024-13-01"], "is not a date"),
        (["run", "--since", "yesterday"], "is not a date"),
        (["run", "--source", "epoch;rm -rf /"], "unknown source(s)"),
        (["report", "--quarter", "2023-Q5"], "is not a quarter"),
        (["report", "--format", "pdf"], "invalid choice"),
        (["export", "out", "--format", "xlsx"], "invalid choice"),
        (["export", "{file}"], "is not a folder"),
        (["report", "--out", "{file}"], "is not a folder"),
    ],
)
def test_bad_arguments_are_refused_with_a_usage_error(
    argv: list[str], message: str, census_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    with pytest.raises(SystemExit) as exited:
        code = main([arg.format(file=a_file) for arg in argv])
        raise SystemExit(code)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not census_env.exists()


@pytest.mark.parametrize(
    ("sources", "since", "until", "message"),
    [
        (["epoch", "nope"], date(2024, 1, 1), None, "unknown source(s) nope"),
        ([], date(2024, 1, 1), None, "no source named"),
        (["epoch"], date(2024, 2, 1), date(2024, 1, 1), "must be before until"),
        (["epoch"], date(2024, 1, 1), date(2099, 1, 1), "is in the future"),
        (["epoch"], None, date(2024, 1, 1), "--until needs --since"),
    ],
)
def test_backfill_parameters_are_validated_before_anything_runs(
    sources: list[str], since: date | None, until: date | None, message: str
) -> None:
    from flows.pipeline import validate_request

    with pytest.raises(ValueError, match=re.escape(message)):
        validate_request(sources, since, until, today=date(2026, 11, 26))


@pytest.mark.parametrize("value", ["", ".", "{folder}"], ids=["empty", "dot", "a-folder"])
def test_warehouse_path_must_name_a_file(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_CENSUS_DB", value.format(folder=tmp_path))
    assert main(["run", "--source", "epoch"]) == 2
    assert "MODEL_CENSUS_DB" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("planted", ["census.work.duckdb", "census.work.duckdb.wal", "census.work.duckdb.lock"])
def test_warehouse_refuses_to_write_through_a_link_planted_beside_it(
    planted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    precious = elsewhere / "precious"
    precious.write_text("keep me", encoding="utf-8")
    (data / planted).symlink_to(precious)
    monkeypatch.setenv("MODEL_CENSUS_DB", str(data / "census.duckdb"))
    assert main(["run", "--source", "epoch"]) == 2
    assert "refusing to write" in capsys.readouterr().err
    assert precious.read_text(encoding="utf-8") == "keep me"
    (data / planted).unlink()
    (data / planted).symlink_to(data / "moved-here")  # a link inside the folder is the user's own choice
    from flows.settings import Settings

    assert Settings(db=data / "census.duckdb").work_db == data / "census.work.duckdb"


def test_export_into_a_folder_that_cannot_be_made_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    (tmp_path / "a-file").write_text("not a folder")
    assert main(["export", str(tmp_path / "a-file" / "sub"), "--db", str(tmp_path / "missing.duckdb")]) == 1
    assert main(["report", "--out", str(tmp_path / "a-file" / "sub"), "--db", str(tmp_path / "missing.duckdb")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(line.startswith("census: ") for line in errors), errors


def test_export_refuses_to_write_through_a_planted_symlink(tmp_path: Path) -> None:
    from flows.export import ExportRefused, target_path

    out, elsewhere = tmp_path / "export", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "releases.parquet").symlink_to(elsewhere / "releases.parquet")
    with pytest.raises(ExportRefused, match="outside"):
        target_path(out, "releases", "parquet")
    with pytest.raises(ExportRefused):
        target_path(out, "../releases", "parquet")
    assert list(elsewhere.iterdir()) == []


# --- servers and hostile text ---------------------------------------------------------------------------


def test_demo_and_test_servers_bind_loopback_only() -> None:
    from flows.demo import demo_settings
    from flows.replay_server import ReplayServer

    with ReplayServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
    with FaultyServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
    with demo_settings(Path("unused.duckdb")) as url:
        assert url.startswith("http://127.0.0.1:")
    # Every server the code starts: stdlib servers, `prefect server start`, pytest-httpserver's host.
    wildcard = re.compile(
        r"""0\.0\.0\.0|HTTPServer\(\(\s*(?!\s|LOOPBACK|["']127\.0\.0\.1)|"--host",\s*"(?!127\.0\.0\.1")|HTTPServer\(host="""
    )
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0)}" for folder in ("flows", "sources", "warehouse", "transforms", "tests")
        for path in (REPO / folder).rglob("*.py") if path != Path(__file__)
        for match in [wildcard.search(path.read_text(encoding="utf-8"))] if match
    ]
    assert offenders == []


def test_source_text_is_escaped_in_the_html_report() -> None:
    from flows.report import Section, Story, bar_chart, render_html, render_markdown

    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    chart = bar_chart(f"Bursts of {hostile}", [hostile], [("4 weeks", [3])])
    section = Section("derivative_bursts", "Derivative bursts", "text", ("base_model", "derivatives_4w"),
                      [(hostile, 3)], chart)
    story = Story("2024-Q1", f"headline {hostile}", [section])
    page = render_html(story)
    assert "<script>" not in chart and "<img" not in chart
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    markdown = render_markdown(story, lambda section: "chart.svg")
    assert "<script>" not in markdown and "<img" not in markdown


def test_a_warehouse_file_name_with_quotes_is_an_identifier_not_sql(tmp_path: Path) -> None:
    from transforms.rebuild import rebuild
    from warehouse.connection import connect, open_work_db
    from warehouse.publish import publish

    target = tmp_path / """we"ird's; drop table x --.duckdb"""
    with open_work_db(target.with_name(target.stem + ".work.duckdb")) as con:
        rebuild(con)
        assert "releases" in publish(con, target).tables
    with connect(target, read_only=True) as published:
        assert published.execute("select count(*) from release_cadence_quarterly").fetchone() == (0,)


def test_report_refuses_to_write_through_a_planted_symlink(tmp_path: Path, faulty_server: FaultyServer) -> None:
    from flows.ingest import IngestRun, Window
    from flows.ingest_epoch import ingest_epoch
    from flows.report import ReportUnavailable, write_report
    from flows.settings import Settings
    from transforms.rebuild import rebuild
    from warehouse.connection import open_work_db
    from warehouse.publish import publish

    sample = (Path(__file__).parents[1] / "fixtures" / "epoch"
              / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv").read_bytes()
    settings = Settings(db=tmp_path / "census.duckdb",
                        epoch_url=faulty_server.script("/notable_ai_models.csv", ok(sample, "text/csv")))
    with open_work_db(settings.work_db) as con:
        ingest_epoch(IngestRun(con, "epoch", "run-1"), settings, Window())
        rebuild(con)
        publish(con, settings.db)
    name = write_report(settings.db, None, "html", tmp_path / "scratch").name
    out, elsewhere = tmp_path / "reports", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / name).symlink_to(elsewhere / name)
    with pytest.raises(ReportUnavailable, match="outside"):
        write_report(settings.db, None, "html", out)
    assert list(elsewhere.iterdir()) == []


FORMULAS = ("=HYPERLINK(\"http://evil.invalid\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1", "\r=1+1")


def test_csv_export_neutralizes_formulas_in_source_text_and_parquet_keeps_it_exact(
    tmp_path: Path, fresh_db: duckdb.DuckDBPyConnection
) -> None:
    from flows.export import export
    from transforms.rebuild import build_over_releases
    from warehouse.publish import publish
    from warehouse.sql_files import read_sql

    fresh_db.execute(read_sql("curated", "release_tables"))
    names = [*FORMULAS, "GPT-4 = strong", "-"]
    for index, name in enumerate(names):
        fresh_db.execute(
            "insert into releases (release_id, name, family, org_type, modality, released_on, quality_tier, is_notable, "
            "has_evaluation, evaluation_evidence, is_open_weights, prominence, hub_likes, hf_repo_ids, arxiv_ids, "
            "epoch_names, pwc_ids, sources, label_reasons) values (?, ?, 'f', 'startup', 'text', '2023-02-01', "
            "'production', true, false, [], false, -1.5, 0, [], [], [?], [], ['epoch'], '{}')",
            [f"r{index}", name, name],
        )
    build_over_releases(fresh_db)
    db = tmp_path / "census.duckdb"
    publish(fresh_db, db)

    export(db, "csv", tmp_path / "csv")
    export(db, "parquet", tmp_path / "parquet")
    with duckdb.connect() as con:
        rows = con.execute("select name, prominence, epoch_names from read_csv(?, all_varchar = true) order by release_id",
                           [str(tmp_path / "csv" / "releases.csv")]).fetchall()
        exact = con.execute("select name from read_parquet(?) order by release_id",
                            [str(tmp_path / "parquet" / "releases.parquet")]).fetchall()
    assert [row[0] for row in rows] == [f"'{name}" for name in FORMULAS] + ["GPT-4 = strong", "'-"]
    assert all(row[1] == "-1.5" for row in rows), "numbers are not text: left as they are"
    assert all(row[2].startswith("[") for row in rows), "a list cell starts with '[', never a formula"
    assert [row[0] for row in exact] == names


def test_source_text_with_pipes_and_markup_stays_inside_its_markdown_cell() -> None:
    from flows.report import Section, Story, render_markdown

    hostile = "| pipe | <b>bold</b> [link](http://evil.invalid) ![img](http://evil.invalid/x.png) `code`\n| new row"
    section = Section("derivative_bursts", "Derivative bursts", "text", ("base_model", "derivatives_4w"),
                      [(hostile, 3)], "<svg/>")
    markdown = render_markdown(Story("2024-Q1", "headline", [section]), lambda section: "chart.svg")
    row = next(line for line in markdown.splitlines() if "pipe" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 3, f"one row of two cells: {row}"
    assert "<b>" not in markdown and "\n| new row" not in markdown
    assert not re.search(r"(?<!\\)\]\(", row), "no link or image of the source's making"


SQL_WORDS = re.compile(r"\b(select|insert|update|delete|where|values|attach|copy|create|set)\b", re.IGNORECASE)


def sql_built_from_values(source: str) -> list[str]:
    """F-strings and %-formats of SQL that put a value between quotes: a literal made by joining strings.

    Identifiers from our own files (`{table}`, `"{name}"`) are allowed: SQL cannot bind those. A value
    in SQL is written `'{value}'` or `'%s'` when joined in; bound, it is `?` or `$name`.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            text = "".join(part.value for part in parts if isinstance(part, ast.Constant) and isinstance(part.value, str))
            quoted = any(
                isinstance(part, ast.FormattedValue) and index > 0 and isinstance(parts[index - 1], ast.Constant)
                and str(parts[index - 1].value).endswith("'")
                for index, part in enumerate(parts)
            )
            if quoted and SQL_WORDS.search(text):
                found.append(f"line {node.lineno}: f-string with '{{...}}'")
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
              and isinstance(node.left.value, str) and SQL_WORDS.search(node.left.value)
              and re.search(r"'%[sdr]'", node.left.value)):
            found.append(f"line {node.lineno}: '%s' formatting")
    return found


def test_no_sql_is_built_by_joining_values_into_strings() -> None:
    offenders = [
        f"{path.relative_to(REPO)} {finding}" for folder in ("flows", "sources", "warehouse", "transforms")
        for path in sorted((REPO / folder).rglob("*.py")) for finding in sql_built_from_values(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    # and the check can fail: a value joined into SQL is found
    assert sql_built_from_values("con.execute(f\"select * from releases where name = '{name}'\")")
    assert sql_built_from_values("con.execute(\"delete from rejects where source = '%s'\" % source)")
    assert not sql_built_from_values("con.execute(f'select count(*) from \"{table}\" where name = ?', [name])")
