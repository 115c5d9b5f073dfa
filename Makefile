# gridledger: two commands do all the set-up on a fresh Debian machine with Python 3.11 and node 20.
#   make demo   - venv + Python packages, then one simulated trading day on the embedded chain
#   make test   - also npm packages and test services (mosquitto, PostgreSQL), then lint + all tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_MODULES := contracts/node_modules
FORGE := $(NODE_MODULES)/@foundry-rs/forge-linux-amd64/bin/forge
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest forge halmos contracts services bench clean test-slow docs

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(NODE_MODULES)/.installed: contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(BIN)/.installed
	$(BIN)/gridledger demo

# Test services and the browser for the dashboard test: from Debian when missing (root, else sudo).
services:
	@need=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need="$$need mosquitto"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
	  echo "installing test services:$$need"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$need; \
	fi
	@# the Debian package starts its own broker where systemd runs; the tests start their own
	-@pkill -x mosquitto 2>/dev/null || true

contracts: $(NODE_MODULES)/.installed
	cd contracts && node scripts/compile.js

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(BIN)/.installed
	$(BIN)/mypy

forge: $(NODE_MODULES)/.installed
	cd contracts && ../$(FORGE) test

halmos: $(BIN)/.installed $(NODE_MODULES)/.installed
	$(MAKE) -C contracts halmos

pytest: $(BIN)/.installed $(NODE_MODULES)/.installed services
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)
	$(BIN)/pytest --nbmake examples

test: lint typecheck forge halmos pytest

# The documentation site (mkdocs-material + mkdocstrings) into site/; tests/docs builds it --strict
# in make test.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test-slow: $(BIN)/.installed $(NODE_MODULES)/.installed services
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/gridledger bench market --orders 1000000 --json
	$(BIN)/gridledger bench chain --participants 1000 --json
	$(BIN)/gridledger bench ingest --readings 20000 --json

clean:
	rm -rf $(VENV) $(NODE_MODULES) .gridledger contracts/out contracts/cache
