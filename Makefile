# policyd — the README names these targets.
#   make run     set up .venv and run the daemon on its offline default (127.0.0.1:50051)
#   make test    set up .venv and run every check and test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test check-generated generate lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/policyd serve

generate: setup
	$(PY) scripts/gen.py

check-generated: setup
	$(PY) scripts/gen.py --check

lint: setup
	$(VENV)/bin/ruff check policyd plugins tests scripts examples bench
	$(VENV)/bin/ruff format --check policyd plugins scripts tests examples bench

typecheck: setup
	$(VENV)/bin/mypy policyd plugins

pytest: setup
	$(PY) -m pytest -q

test: check-generated lint typecheck pytest

# Benchmarks print figures, never pass/fail; CI does not run them (see docs/benchmarks.md).
bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
