"""`census demo`: the real pipeline on the bundled snapshot, served over loopback HTTP.

The demo is a backfill over the snapshot's whole period into its own warehouse file
(`data/demo.duckdb` unless told otherwise), so it never mixes with a live warehouse.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from flows import demo_arxiv, demo_paperswithcode
from flows.demo_open_llm_leaderboard import DatasetReplay
from flows.demo_huggingface import HubReplay
from flows.replay_server import DEMO_SNAPSHOT, ReplayServer, Route

DEMO_DB = Path("data/demo.duckdb")
DEMO_SINCE = date(2015, 1, 1)
"""The demo loads from here on: the snapshot's sources reach back further, the story starts here."""


def demo_routes() -> dict[str, Route]:
    """API routes of the sources whose answers depend on the query; static files need none."""
    return {**HubReplay.from_file().routes(), **demo_arxiv.demo_replay().routes(), demo_paperswithcode.PREFIX: demo_paperswithcode.CatalogReplay.from_snapshot(), **DatasetReplay().routes()}


def demo_environment(base_url: str, db: Path) -> dict[str, str]:
    """Settings that point every source at the replay server."""
    return {
        "MODEL_CENSUS_DB": str(db),
        "MODEL_CENSUS_EPOCH_URL": f"{base_url}/epoch/ai_models.zip",
        "MODEL_CENSUS_HF_URL": f"{base_url}/huggingface",
        "MODEL_CENSUS_ARXIV_URL": f"{base_url}/arxiv/api/query",
        "MODEL_CENSUS_ARXIV_RSS_URL": f"{base_url}/arxiv/rss/",
        "MODEL_CENSUS_ARXIV_DELAY_SECONDS": "0",
        "MODEL_CENSUS_PWC_URL": f"{base_url}/paperswithcode/api/v1",
        "MODEL_CENSUS_PWC_MAX_PER_MINUTE": "60000",
        "MODEL_CENSUS_PWC_IMPORT_ARCHIVE": "false",
    }


@contextmanager
def demo_settings(db: Path, snapshot: Path = DEMO_SNAPSHOT) -> Iterator[str]:
    """Run the replay server and point the settings at it for the duration of the block."""
    with ReplayServer(snapshot, demo_routes()) as server:
        overrides = demo_environment(server.url, db)
        saved = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)
        try:
            yield server.url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
