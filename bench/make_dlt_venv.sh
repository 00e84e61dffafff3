#!/usr/bin/env bash
# The dlt peer baseline's own environment, bench/.venv-dlt: dlt is a benchmark peer, never a product dependency.
# Hash-pinned (bench/requirements-dlt.txt); run once, then `bench/ingest_throughput.py` finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
test -x bench/.venv-dlt/bin/python || "$PYTHON" -m venv bench/.venv-dlt
bench/.venv-dlt/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r bench/requirements-dlt.txt
bench/.venv-dlt/bin/python -c 'import dlt, duckdb; print(f"bench/.venv-dlt: dlt {dlt.__version__}, duckdb {duckdb.__version__}")'
