# Baton: `make run` (the service on embedded defaults, with the sandbox forge and a demo) and
# `make test` (every test). Both set themselves up on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

NODE_STAMP := node_modules/.installed-stamp

.PHONY: run test test-engine setup lint bench bench-smoke screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# GitHub's OpenAPI description and webhook schemas, to check the sandbox against (tests only).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

setup: $(STAMP)

run: setup
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chains bots dashboard console config demo
	DEBUG=true $(BIN)/mypy .
	$(BIN)/lint-imports
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run

test: setup $(NODE_STAMP) lint
	DEBUG=true SECRET_KEY=$${SECRET_KEY:-test-only-secret} $(BIN)/pytest

# The engine's unit tests alone (tests/engine, marker `engine`): SQLite, a FakeForge and no
# broker, so they need neither PostgreSQL nor Redis and take seconds. `make test` runs them too.
test-engine: setup
	env -u DATABASE_URL -u CELERY_BROKER_URL DEBUG=true \
		SECRET_KEY=$${SECRET_KEY:-test-only-secret} $(BIN)/pytest tests/engine -q -p no:cacheprovider

bench: setup
	DEBUG=true $(BIN)/python bench/intake.py
	DEBUG=true $(BIN)/python bench/fanout.py

# Every benchmark at tiny sizes (seconds each; PostgreSQL and Redis as for the tests): its
# scenario must still run. `make test` runs the same through tests/bench/test_smoke.py.
bench-smoke: setup
	$(BIN)/python bench/smoke.py

# PNGs of every dashboard page with demo data, in docs/screenshots/ (needs chromium: apt-get
# install chromium).
screenshots: setup
	BATON_SCREENSHOTS=docs/screenshots DEBUG=true SECRET_KEY=$${SECRET_KEY:-test-only-secret} \
		$(BIN)/pytest tests/e2e/test_dashboard_browser.py -k screenshots -p no:cacheprovider -q

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
