# model-census: the two quick-start commands are `make run` and `make test`.
# Each creates .venv from requirements.lock (hash-pinned) the first time; nothing else is needed
# but python3 (3.11), git and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Prefect's telemetry stays off; the project's modules log into Prefect's run log.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_EXTRA_LOGGERS := sources,warehouse,transforms

.PHONY: run demo test status lock clean-venv

run: $(STAMP)  ## the nightly pipeline against the live sources, into data/census.duckdb
	$(BIN)/census run

demo: $(STAMP)  ## the same pipeline on the bundled snapshot, served over loopback HTTP
	$(BIN)/census demo

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest

status: $(STAMP)
	$(BIN)/census status

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "model-census needs Python 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

lock:  ## re-pin every dependency after changing pyproject.toml (needs network to the package index)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements.lock

clean-venv:
	rm -rf $(VENV)
