"""Shared by the reliability suite: the misbehaving server, and the Epoch sample it serves."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import `faulty_server` (pytest runs in importlib mode)

from faulty_server import FaultyServer  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures"
EPOCH_SAMPLE = FIXTURES / "epoch" / "notable_ai_models_snapshot_2025-02-24_old42colschema_first150rows.csv"
"""150 genuine rows: small enough to load in a blink, real enough to exercise every column."""


@pytest.fixture
def faulty_server() -> Iterator[FaultyServer]:
    with FaultyServer() as server:
        yield server


@pytest.fixture(scope="session")
def epoch_csv() -> bytes:
    return EPOCH_SAMPLE.read_bytes()


@pytest.fixture(scope="session")
def epoch_zip(epoch_csv: bytes) -> bytes:
    """The sample as Epoch ships it: a zip holding `notable_ai_models.csv`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notable_ai_models.csv", epoch_csv)
    return buffer.getvalue()
