"""The README is the newcomer's contract: its quick start and its settings table must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from flows.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def environment_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias.choices[0] if alias is not None else "MODEL_CENSUS_" + name.upper())
    return names


def test_every_setting_has_a_row_in_the_readme_settings_table() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    missing = sorted(set(environment_names()) - documented)
    assert not missing, f"settings missing from the README table: {missing}"


def test_quick_start_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "make demo" in ci
