# policyd — the README names these targets.
#   make run     set up .venv and run the daemon on its offline default (127.0.0.1:50051)
#   make test    set up .venv and run every check and test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test check-generated generate lint typecheck pytest plugin-template clean

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
	$(VENV)/bin/ruff check policyd plugins tests scripts examples
	$(VENV)/bin/ruff format --check policyd plugins scripts tests examples

typecheck: setup
	$(VENV)/bin/mypy policyd plugins

pytest: setup
	$(PY) -m pytest -q

# The template third-party plugin: pip-installed from its folder (reinstalled when it
# changes), then its own tests, which start daemons that discover it by entry point.
HEDGE := plugins/policyd-hedge
HEDGE_STAMP := $(VENV)/.hedge-installed
$(HEDGE_STAMP): $(STAMP) $(HEDGE)/pyproject.toml $(wildcard $(HEDGE)/policyd_hedge/*)
	$(PY) -m pip install --quiet --force-reinstall --no-deps ./$(HEDGE)
	rm -rf $(HEDGE)/build $(HEDGE)/*.egg-info
	touch $@

plugin-template: $(HEDGE_STAMP)
	$(VENV)/bin/pytest -q $(HEDGE)/tests

test: check-generated lint typecheck pytest plugin-template

clean:
	rm -rf $(VENV) build *.egg-info
