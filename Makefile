# Baton: `make run` (the service on embedded defaults, with the sandbox forge and a demo) and
# `make test` (every test). Both set themselves up on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

NODE_STAMP := node_modules/.installed-stamp

.PHONY: run test test-engine setup lock upgrade lint bench bench-smoke screenshots clean

# Installs come from the lock files only (exact versions, every file's hash checked): runtime.txt
# for the image (deploy/Dockerfile), dev.txt (runtime + tools) here and in CI. After a change to
# pyproject.toml's dependencies run `make lock`; `make upgrade` moves every pin to its newest
# release. requirements/check_lock.py stops the install when the lock misses a dependency.
LOCKS := requirements/runtime.txt requirements/dev.txt
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-trusted-host --no-emit-find-links

$(STAMP): pyproject.toml $(LOCKS) requirements/check_lock.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python requirements/check_lock.py
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Regenerate both locks from pyproject.toml, keeping every pin that still fits (UPGRADE=--upgrade
# moves them all; `make upgrade`). The dev lock is constrained by the runtime one, so tests run on
# the versions the image ships.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/pip-compile || $(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile $(LOCK_FLAGS) $(UPGRADE) \
		--output-file requirements/runtime.txt pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) $(UPGRADE) --extra dev \
		--constraint requirements/runtime.txt --output-file requirements/dev.txt pyproject.toml

upgrade:
	$(MAKE) lock UPGRADE=--upgrade

# GitHub's OpenAPI description and webhook schemas, to check the sandbox against (tests only).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

setup: $(STAMP)

# `make run PORT=8001 SANDBOX_PORT=8091` when the defaults are taken.
PORT ?= 8000
SANDBOX_PORT ?= 8090

run: setup
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py demo --port $(PORT) --sandbox-port $(SANDBOX_PORT)

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

# Every benchmark at tiny sizes, two side by side (PostgreSQL and Redis as for the tests): its
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
