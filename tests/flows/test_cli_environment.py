"""What `census` sets for Prefect before importing it, and that a user's own setting wins over each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

SHOW_SETTINGS = """
import os
import flows.cli
from prefect.settings import get_current_settings
settings = get_current_settings()
print(os.environ["DO_NOT_TRACK"], settings.server.analytics_enabled, ",".join(sorted(settings.logging.extra_loggers)),
      settings.server.ephemeral.startup_timeout_seconds)
"""
DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "False",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "sources,warehouse,transforms",
    # Prefect's own 20 s failed a clean clone's `census demo` while a new Prefect home's database was created.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
USERS = {
    "DO_NOT_TRACK": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "True",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "sources",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "45",
}


@pytest.mark.parametrize("given", [{}, USERS], ids=["defaults", "the user's own"])
def test_census_sets_its_prefect_defaults_unless_the_user_set_them(given: dict[str, str], tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key not in DEFAULTS}
    environment.update(given, PYTHONPATH=str(ROOT))
    # Run outside the repository: Prefect reads `[tool.prefect]` from the pyproject.toml of its working directory,
    # which turns analytics off too and would hide a `census` that no longer does (as for a user's own cron job).
    shown = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], env=environment, cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.split()
    expected = given or DEFAULTS
    loggers = ",".join(sorted(expected["PREFECT_LOGGING_EXTRA_LOGGERS"].split(",")))  # Prefect keeps no order
    assert dict(zip(DEFAULTS, shown)) == {**expected, "PREFECT_LOGGING_EXTRA_LOGGERS": loggers}
