# policyd — the README names these targets.
#   make run     set up .venv and run the daemon on its offline default (127.0.0.1:50051)
#   make test    set up .venv and run every check and test (what CI runs)

# The interpreter that creates the venv: python3 on the caller's PATH (resolved before the
# venv's bin is put first below). CI also runs under Debian's /usr/bin/python3, the oldest
# Python that pyproject.toml's requires-python admits here (3.11.2).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell command -v python3 2>/dev/null),python3)
endif
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Every recipe finds the tools `make setup` installs (hadolint, ruff, mypy, pytest, the console
# scripts) in the venv, whatever PATH the caller has: the venv's bin comes first. Go's official
# tarball installs outside the default PATH, so /usr/local/go/bin follows when it exists.
GO_BIN := $(firstword $(wildcard /usr/local/go/bin))
export PATH := $(abspath $(VENV))/bin$(if $(GO_BIN),:$(GO_BIN)):$(PATH)

.PHONY: setup run test check-generated generate lint typecheck pytest plugin-template bench clean helm-tools helm-test \
	proto-lint clients clients-go clients-java clients-python image image-lock image-test test-fast test-slow \
	pytest-process dist

# helm for the chart's tests: built once from the Go module proxy, cached per version outside
# the work tree (kept across CI runs on the same machine). The ldflags set what `helm version`
# reports and the Kubernetes version helm assumes offline (that of its client-go, v0.37 → 1.37).
HELM_VERSION ?= v3.22.0
HELM_K8S_MINOR ?= 37
TOOLS_DIR ?= $(HOME)/.cache/policyd-tools
HELM := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
GO ?= $(or $(shell PATH='$(PATH)' command -v go 2>/dev/null),go)
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach p,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(p).k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$(p).k8sVersionMinor=$(HELM_K8S_MINOR))

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
	$(VENV)/bin/ruff check policyd plugins tests scripts examples clients/python bench
	$(VENV)/bin/ruff format --check policyd plugins scripts tests examples clients/python bench

typecheck: setup
	$(VENV)/bin/mypy policyd plugins

$(HELM):
	GOBIN=$(dir $(HELM)) GOFLAGS=-buildvcs=false $(GO) install -trimpath -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm-tools: $(HELM)

# The chart's tests alone (they also run in `make pytest`); POLICYD_REQUIRE_HELM turns a skip into a failure.
helm-test: setup helm-tools
	POLICYD_HELM=$(HELM) POLICYD_REQUIRE_HELM=1 $(PY) -m pytest -q tests/helm

pytest: setup helm-tools
	POLICYD_HELM=$(HELM) POLICYD_REQUIRE_HELM=1 $(PY) -m pytest -q

# The container image, built with podman on a base made from Debian's packages (no registry
# needed; tools and layers cached in ~/.cache/policyd-image): localhost/policyd:VERSION, the
# chart's default image. `make pytest` builds it too and smoke-tests it (tests/docker/test_image.py).
image: setup
	$(PY) scripts/image.py build

# Regenerate image-requirements.txt (the image's exact dependencies, with hashes) from PyPI.
image-lock: setup
	$(PY) scripts/image.py lock

# The image's tests alone; POLICYD_REQUIRE_IMAGE turns "cannot run containers here" into a failure.
image-test: setup helm-tools
	POLICYD_HELM=$(HELM) POLICYD_REQUIRE_IMAGE=1 $(PY) -m pytest -q tests/docker

# The two test tiers (README, tests/tiers.py): unit and in-process tests; then everything that
# starts a process (the daemon, the CLI, helm, the image's health check, the clients, the template).
test-fast: setup
	$(PY) -m pytest -q -m "not process" -n auto

pytest-process: setup helm-tools
	POLICYD_HELM=$(HELM) POLICYD_REQUIRE_HELM=1 $(PY) -m pytest -q -m process

test-slow: pytest-process plugin-template clients

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

# Proto lint and the breaking-change check (buf, go install-ed on first use by the script).
proto-lint: setup
	$(PY) scripts/proto_check.py

# The clients' integration tests start `policyd serve` with the venv's interpreter. Tools and
# dependencies come from (and stay in) the usual caches: ~/go/pkg/mod, ~/.cache/go-build, ~/.m2.
CLIENT_ENV := POLICYD_PYTHON=$(abspath $(PY)) POLICYD_REPO=$(CURDIR)

clients-go: setup
	cd clients/go && test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	cd clients/go && go vet ./... && $(CLIENT_ENV) go test -count=1 ./...

clients-java: setup
	cd clients/java && $(CLIENT_ENV) mvn -B -q verify

# The client's stubs are produced from policyd/v1 at build time (clients/python/stubs.py); the
# first line writes them into its src too (git-ignored), for mypy.
clients-python: setup
	$(PY) clients/python/stubs.py
	$(PY) -m pip install --quiet ./clients/python
	cd clients/python && $(abspath $(VENV))/bin/mypy src && $(CLIENT_ENV) $(abspath $(PY)) -m pytest -q

clients: clients-go clients-java clients-python

test: check-generated lint typecheck proto-lint pytest plugin-template clients

# Benchmarks print figures, never pass/fail; CI does not run them (see docs/benchmarks.md).
bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/run.py $(BENCH_ARGS)

# A wheel and an sdist of policyd (with its built-in plugins) in dist/, for installing policyd
# elsewhere, e.g. where a plugin is developed: pip install --find-links dist ./my-plugin
# (docs/plugins.md). Neither ships tests, the template plugin or the clients.
dist: setup
	rm -rf dist build
	$(PY) -m build --outdir dist .
	rm -rf build

clean:
	rm -rf $(VENV) build dist *.egg-info clients/java/target
