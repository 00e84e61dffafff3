"""docs/RELIABILITY.md names the test behind each outcome: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).parents[2]
DOC = (REPO / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")


def test_every_test_the_reliability_table_names_exists() -> None:
    named = set(re.findall(r"\b(test_[a-z0-9_]+)\b", DOC)) - {name[:-3] for name in re.findall(r"\btest_[a-z0-9_]+\.py\b", DOC)}
    defined = {match for path in (REPO / "tests").rglob("test_*.py")
               for match in re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(encoding="utf-8"), flags=re.MULTILINE)}
    assert named and named <= defined, sorted(named - defined)


def test_every_file_the_table_names_exists() -> None:
    files = set(re.findall(r"\b(test_[a-z0-9_]+\.py)\b", DOC))
    assert files and all(list((REPO / "tests").rglob(name)) for name in files), files
