# Beamwarden: one set of commands for people and CI alike.
#   make demo    the server on SQLite and a real pi-log agent per demo node, API on http://127.0.0.1:8000
#   make test    the whole test suite (installs what it needs first)
#   make check   ruff lint + format check, mypy --strict, import-linter contracts
#   make bench   the benchmarks of bench/ (one JSON line each)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the dashboard's front-end libraries (uPlot), from npm at build time, never committed
VENDOR := src/beamwarden/server/web/static/vendor
ASSETS := $(VENDOR)/.built
PYTEST_ARGS ?=

.PHONY: demo test check bench install system-deps lock clean fmt web-assets browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(ASSETS)

$(ASSETS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory system-deps
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	touch $@

web-assets: $(ASSETS)

# Debian packages the tests use (PostgreSQL binaries for throwaway instances, chattr, snmpd for
# the agent's SNMP driver, Chromium for the dashboard's browser tests, npm for its assets); root only.
system-deps:
	@missing=""; \
	for p in postgresql e2fsprogs snmpd chromium; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing"; exit 1; fi; \
	fi

demo: $(STAMP) $(ASSETS)
	$(BIN)/beamwarden demo

test: $(STAMP) system-deps $(ASSETS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench tools
	$(BIN)/ruff format src tests bench tools

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "# $$b" >&2; $(BIN)/python $$b || exit 1; done

# Re-pin every dependency (run after changing pyproject.toml, commit constraints.txt).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis web/node_modules $(VENDOR)
