# One entry point for everything; every target creates/updates the venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVER_STAMP := $(VENV)/.installed-server
PORT ?= 4700
DATA_DIR ?= ./.sync-data

.PHONY: all venv js generate check-generated lint format typecheck pytest test fuzz demo serve bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# `make demo` and `make serve` need only the server (about 30 packages, not the toolchain).
$(SERVER_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(SERVER_STAMP)

# Twilio's JavaScript SDK, pinned in tests/js/package-lock.json, for the tests that run it.
JS := tests/js
JS_STAMP := $(JS)/node_modules/.installed
$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

js: $(JS_STAMP)

generate: $(STAMP)
	$(BIN)/python -m codegen.generate

check-generated: $(STAMP)
	$(BIN)/python -m codegen.generate --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# pyright (strict, settings in pyproject.toml) fetches its node package from npm on first use.
typecheck: $(STAMP)
	$(BIN)/mypy sync_sdk generated/sync_generated sync_server codegen examples tests/typing_consumer.py tests/typing_rest_consumer.py
	$(BIN)/pyright

pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: check-generated lint typecheck pytest

# A longer hunt than `make test`'s fixed-seed fuzz: a new seed each run (printed), shrinking on.
fuzz: $(STAMP)
	SYNC_FUZZ_SEED=$${SYNC_FUZZ_SEED:-random} SYNC_FUZZ_EXAMPLES=$${SYNC_FUZZ_EXAMPLES:-3000} \
	SYNC_FUZZ_SHRINK=1 $(BIN)/python -m pytest -q -s --timeout=3600 tests/test_fuzz_wire.py -k fuzz_

demo: $(SERVER_STAMP)
	$(BIN)/python examples/demo.py

serve: $(SERVER_STAMP)
	$(BIN)/sync-server serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
