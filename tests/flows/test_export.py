"""`census export`: every curated table and view as a file, read back intact; nothing written outside DIR."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.cli import main
from flows.export import EXPORTED, ExportRefused, export
from transforms.rebuild import VIEWS, build_over_releases
from warehouse.publish import publish
from warehouse.sql_files import read_sql


@pytest.fixture
def published(tmp_path: Path, fresh_db: duckdb.DuckDBPyConnection) -> Path:
    fresh_db.execute(read_sql("curated", "release_tables"))
    fresh_db.execute(
        "insert into releases (release_id, name, family, org_type, modality, released_on, quality_tier, is_notable, "
        "has_evaluation, evaluation_evidence, is_open_weights, prominence, hub_likes, hf_repo_ids, arxiv_ids, "
        "epoch_names, pwc_ids, sources, label_reasons) values "
        "('a', 'Comma, \"quoted\" name', 'f', 'big_tech', 'text', '2023-02-01', 'frontier', true, true, "
        "['epoch_benchmarks'], false, 30.0, 0, [], [], ['A'], [], ['epoch'], '{}'), "
        "('b', 'Child', 'f', 'startup', 'code', '2023-03-01', 'production', false, false, [], true, 1.0, 5, "
        "['org/child'], [], [], [], ['huggingface'], '{}')"
    )
    fresh_db.execute("update releases set base_release_id = 'a', base_model = 'Comma' where release_id = 'b'")
    build_over_releases(fresh_db)
    target = tmp_path / "census.duckdb"
    publish(fresh_db, target)
    return target


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_curated_table_and_view_is_exported_and_reads_back(published: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "export"
    files = export(published, fmt, out)
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{name}.{fmt}" for name in EXPORTED)
    assert set(VIEWS) <= {path.stem for path in files} and "releases" in {path.stem for path in files}
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    with duckdb.connect(str(published), read_only=True) as con:
        for path in files:
            assert con.execute(f"select count(*) from {reader}(?)", [str(path)]).fetchall() == \
                con.execute(f'select count(*) from "{path.stem}"').fetchall(), path.name
        names = con.execute(f"select name from {reader}(?) order by name", [str(out / f"releases.{fmt}")]).fetchall()
    assert names == [("Child",), ('Comma, "quoted" name',)]


def test_a_symlink_leading_out_of_the_folder_is_refused_and_nothing_is_written_through_it(
    published: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    out.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me", encoding="utf-8")
    (out / "releases.csv").symlink_to(outside)
    with pytest.raises(ExportRefused, match="outside"):
        export(published, "csv", out)
    assert outside.read_text(encoding="utf-8") == "keep me"
    assert main(["export", str(out), "--format", "csv", "--db", str(published)]) == 2


def test_the_command_writes_parquet_by_default(published: Path, tmp_path: Path) -> None:
    assert main(["export", str(tmp_path / "out"), "--db", str(published)]) == 0
    assert (tmp_path / "out" / "derivative_releases.parquet").exists()
