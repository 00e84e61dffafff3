"""The Open LLM Leaderboard archives on the Hub: one row per evaluated model and precision, v1 and v2.

Hugging Face retired the leaderboard (v1 ran 2023 to June 2024, v2 June 2024 to March 2025) and
keeps its tables as two dataset repos, `open-llm-leaderboard-old/contents` (v1) and
`open-llm-leaderboard/contents` (v2). They no longer change, so a run first asks each repo's
current commit (`HfApi.dataset_info`, one GET) and downloads its parquet files only when that
commit differs from the one already landed.

Schemas, as verified (November 2026) from public code that reads these datasets:
- v2, 36 columns, taken from a datasets-server `/rows` answer for `open-llm-leaderboard/contents`
  quoted in a public GitHub file (features with their dtypes, and 14 real rows, which
  `tests/fixtures/open_llm_leaderboard/` keeps): `eval_name, Precision, Type, T, Weight type,
  Architecture, Model, fullname, Model sha, Average ⬆️ (float64), Hub License, Hub ❤️ (int64),
  #Params (B) (float64), Available on the hub, MoE, Flagged, Chat Template (bool), CO₂ cost (kg),
  IFEval Raw, IFEval, BBH Raw, BBH, MATH Lvl 5 Raw, MATH Lvl 5, GPQA Raw, GPQA, MUSR Raw, MUSR,
  MMLU-PRO Raw, MMLU-PRO (float64), Merged, Official Providers (bool), Upload To Hub Date,
  Submission Date (string, `YYYY-MM-DD`), Generation (int64), Base Model (string)`; 4,576 rows.
  File `data/train-00000-of-00001.parquet` (several public scripts read that path).
- v1, 26 columns, from a public download script that checks the file's columns exactly:
  `eval_name, Precision, Type, T, Weight type, Architecture, Model, fullname, Model sha, Average ⬆️,
  Hub License, Hub ❤️, #Params (B), Available on the hub, Merged, MoE, Flagged, date, Chat Template,
  ARC, HellaSwag, MMLU, TruthfulQA, Winogrande, GSM8K, Maintainers Choice`; 7,260 rows. File
  `data/train-00000-of-00001-96886cb34a7bc800.parquet` (another public script pins that name).
- Unverified: v1's column types (assumed as v2's: scores and average float64, `Hub ❤️` int64, the
  flags bool, `date` a string, presumably the request's ISO `submitted_time`); both commits' ids.
  Nothing here depends on file names or types: the parquet files are whatever the repo lists under
  `data/`, and rows go to raw as the JSON of the row, typed or not.

Each row is landed as received (the JSON object of the parquet row; NaN, which JSON cannot carry,
becomes null), keyed `<version>:<fullname>:<Precision>:<Model sha>`. No DuckDB warehouse, no
environment: the caller passes the endpoint and the token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import duckdb

from sources.hub_datasets import DatasetRevision, dataset_revision, download_files
from sources.polite_http import TIMEOUT_SECONDS
from sources.records import RawRecord, Rejected, SourceUnavailable

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://huggingface.co"
ARCHIVES: dict[str, str] = {
    "v1": "open-llm-leaderboard-old/contents",
    "v2": "open-llm-leaderboard/contents",
}
"""Leaderboard version → the Hub dataset that archives it."""
PRIMARY_KEY = ("version", "fullname", "Precision", "Model sha")
KEY_SEPARATOR = ":"
"""Hub repo ids, precisions and commit shas never contain a colon."""
CURSOR_FIELD = "commit"
"""The cursor is `{version: commit}`: the dataset commit whose rows have all landed."""
REQUIRED_COLUMNS = ("fullname", "Precision", "Average ⬆️")
"""Without these a row names no repo or no result; a file lacking one means the archive changed shape."""
BATCH_ROWS = 5_000


def archive_revision(
    endpoint: str, token: str | None, version: str, *, timeout: float = TIMEOUT_SECONDS
) -> DatasetRevision:
    """The archive's current commit and its parquet files under `data/`, from one `dataset_info` GET."""
    return dataset_revision(endpoint, token, ARCHIVES[version], under="data/", timeout=timeout)


def download_archive(
    endpoint: str, token: str | None, revision: DatasetRevision, folder: Path, *, timeout: float = TIMEOUT_SECONDS
) -> list[Path]:
    """Download the archive's parquet files at its commit into `folder` (HEAD + GET each)."""
    return download_files(endpoint, token, revision, folder / revision.repo, timeout=timeout)


def read_rows(version: str, paths: list[Path], *, url: str = "") -> Iterator[RawRecord | Rejected]:
    """Every row of the archive's parquet files, as the JSON of the row, keyed by version, repo, precision, sha.

    The schema is checked first: a required column missing raises `SourceUnavailable` rather than
    landing rows nobody can use. A row without a repo id or precision is rejected with its text.
    """
    con = duckdb.connect()
    try:
        con.execute("set memory_limit = '256MB'")
        files = [str(path) for path in paths]
        schema = con.execute("select column_name, column_type from (describe select * from read_parquet(?, union_by_name = true))",
                             [files]).fetchall()
        names = [name for name, _ in schema]
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            raise SourceUnavailable(f"archive {ARCHIVES[version]}: no column {', '.join(missing)} any more; "
                                    f"it has {', '.join(names)}", url=url or ARCHIVES[version])
        select_list = ", ".join(_as_json_value(name, kind) for name, kind in schema)
        sha = '"Model sha"' if "Model sha" in names else "null"
        cursor = con.execute(
            f"select fullname, Precision, {sha}, to_json(row_data)::varchar "
            f"from (select {select_list} from read_parquet($files, union_by_name = true)) as row_data",
            {"files": files},
        )
        while rows := cursor.fetchmany(BATCH_ROWS):
            for fullname, precision, model_sha, payload in rows:
                if not _text(fullname) or not _text(precision):
                    yield Rejected(None, payload, f"open llm leaderboard {version}: a row without fullname or Precision")
                    continue
                yield RawRecord(KEY_SEPARATOR.join((version, fullname.strip(), precision.strip(), _text(model_sha))), payload)
    finally:
        con.close()


def _as_json_value(name: str, kind: str) -> str:
    """The column under its own name; a float NaN (not valid JSON) as null."""
    quoted = '"' + name.replace('"', '""') + '"'
    if kind.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return f"case when isnan({quoted}) then null else {quoted} end as {quoted}"
    return quoted


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
