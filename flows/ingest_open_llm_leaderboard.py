"""Open LLM Leaderboard archives: land each archive's rows once per commit of its dataset.

The archives are frozen, so a run costs one request per archive when nothing changed: the
dataset's commit is compared with the one saved in the cursor, and only a new commit is
downloaded (HEAD + GET per parquet file) and landed, in pages. The cursor (`{version: commit}`)
moves only after the last page of that archive has landed: a run killed half-way reads it again,
and landing the same rows twice adds nothing. A backfill reads both archives again, as a repair.
"""

from __future__ import annotations

import tempfile
from itertools import islice
from pathlib import Path

from flows.ingest import IngestRun, Window
from flows.settings import Settings
from sources import open_llm_leaderboard

RAW_TABLE = "raw_open_llm_leaderboard__results"
PAGE_ROWS = 5_000


def ingest_open_llm_leaderboard(run: IngestRun, settings: Settings, window: Window) -> None:
    """Both archives, each only when its dataset's commit is new (or on a backfill)."""
    cursor = dict(run.cursor() or {})
    token = settings.token_value()
    run.detail["archives"] = {}
    for version in open_llm_leaderboard.ARCHIVES:
        run.requests += 1
        revision = open_llm_leaderboard.archive_revision(settings.hf_url, token, version)
        if cursor.get(version) == revision.commit and not window.is_backfill:
            run.detail["archives"][version] = f"unchanged at {revision.commit}"
            continue
        with tempfile.TemporaryDirectory(prefix="census-open-llm-") as folder:
            run.requests += 2 * len(revision.files)  # hf_hub_download: HEAD for the commit, GET for the file
            paths = open_llm_leaderboard.download_archive(settings.hf_url, token, revision, Path(folder))
            items = open_llm_leaderboard.read_rows(version, paths, url=f"{settings.hf_url}/datasets/{revision.repo}")
            while page := list(islice(items, PAGE_ROWS)):
                run.land(RAW_TABLE, page)
        cursor[version] = revision.commit
        run.land(RAW_TABLE, [], cursor=cursor, watermark=_label(cursor))
        run.detail["archives"][version] = f"loaded {revision.commit}"


def _label(cursor: dict[str, str]) -> str:
    return ", ".join(f"{version}@{commit[:12]}" for version, commit in sorted(cursor.items()))
