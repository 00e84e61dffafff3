"""stg_huggingface__models: the columns the curated releases read, from listing records and hub-stats rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from sources.records import RawRecord
from warehouse.raw import land_page
from warehouse.sql_files import read_sql

FIXTURES = Path(__file__).parents[1] / "fixtures" / "huggingface"


def fixture(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def staged(con: duckdb.DuckDBPyConnection, records: list[dict]) -> dict[str, dict]:
    land_page(con, "raw_huggingface__models",
              [RawRecord(r.get("id") or r["modelId"], json.dumps(r)) for r in records], run_id="r1")
    cursor = con.execute(read_sql("staging", "stg_huggingface__models"))
    names = [column[0] for column in cursor.description]
    return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def test_every_lineage_tag_kind_gives_base_repos_and_relation(fresh_db: duckdb.DuckDBPyConnection) -> None:
    rows = staged(fresh_db, fixture("api_models_page_2026-09-28_from_slice.json")
                  + fixture("api_models_expanded_constructed.json"))

    assert len(rows) == 43
    adapter = rows["nigelleong0703/Taiji-2B"]
    assert (adapter["base_models"], adapter["base_relation"]) == (["Qwen/Qwen3.5-2B"], "adapter")
    quantized = rows["DrMoriarty0/maple-preview"]
    assert (quantized["base_models"], quantized["base_relation"], quantized["gguf"]) == (
        ["deepgrove/maple-preview"], "quantized", True)
    finetune = rows["beabucayan/lingkodai-audio-lid-head"]
    assert (finetune["base_models"], finetune["base_relation"]) == (["openai/whisper-medium"], "finetune")
    merge = rows["someone/qwen-merge-7b"]
    assert merge["base_models"] == ["Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-Math-7B"]
    assert merge["base_relation"] == "merge" and merge["datasets"] == ["openai/gsm8k"]
    plain = rows["pollen-robotics/microduck-sprint-2m-reference"]
    assert (plain["base_models"], plain["base_relation"], plain["license"]) == ([], None, None)


def test_papers_licence_datasets_and_evaluation_evidence(fresh_db: duckdb.DuckDBPyConnection) -> None:
    rows = staged(fresh_db, fixture("api_models_page_2026-09-28_from_slice.json")
                  + fixture("api_models_expanded_constructed.json"))

    act = rows["k-chan-l/test2_act"]
    assert (act["arxiv_ids"], act["license"], act["datasets"]) == (
        ["2304.13705"], "apache-2.0", ["k-chan-l/dice_color_sort_merged"])
    qwen = rows["Qwen/Qwen3.6-35B-A3B"]
    assert qwen["arxiv_ids"] == ["2505.09388"]  # the version suffix dropped
    assert (qwen["parameters"], qwen["likes"], qwen["downloads"]) == (35_100_000_000, 812, 120_345)
    assert (qwen["has_model_index"], qwen["has_eval_results"]) == (True, True)
    assert str(qwen["last_modified"]) == "2026-09-25 12:30:00+00:00"
    dqn = rows["heisenberg-goddamnright/dqn-SpaceInvadersNoFrameskip-v4"]
    assert (dqn["has_model_index"], dqn["has_eval_results"], dqn["parameters"]) == (True, False, None)
    assert rows["someone/tiny-gguf"]["author"] == "someone"  # no author field: taken from the id


def test_legacy_records_without_id_or_dates_still_stage(fresh_db: duckdb.DuckDBPyConnection) -> None:
    rows = staged(fresh_db, fixture("legacy_2022_api_models_full_config_records.json"))

    bart = rows["facebook/bart-large-cnn"]
    assert (bart["author"], bart["created_at"], bart["pipeline_tag"], bart["library_name"]) == (
        "facebook", None, "summarization", "transformers")
    assert bart["arxiv_ids"] == ["1910.13461"] and bart["license"] == "mit"
    assert all(row["tags"] is not None for row in rows.values())


def test_hub_stats_rows_give_lineage_from_base_models(fresh_db: duckdb.DuckDBPyConnection) -> None:
    row = {"id": "someone/lora", "createdAt": "2024-05-01 10:00:00+00", "likes": 5, "downloads": 9, "tags": ["peft"],
           "baseModels": {"models": [{"_id": "x", "id": "meta-llama/Llama-3-8B"}], "relation": "adapter"},
           "safetensors": {"parameters": {"F32": 1000}, "total": 1000}}

    staged_row = staged(fresh_db, [row])["someone/lora"]

    assert (staged_row["base_models"], staged_row["base_relation"], staged_row["parameters"]) == (
        ["meta-llama/Llama-3-8B"], "adapter", 1000)
    assert str(staged_row["created_at"]) == "2024-05-01 10:00:00+00:00"
