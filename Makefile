# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check migrate seed clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Migrate, seed demo data if empty, start the API (:8000, HUIYUAN_PORT), the WeChat simulator
## (:8200, HUIYUAN_SIM_PORT) and the jobs process on embedded defaults (SQLite under var/,
## in-process Redis); a port in use is reported before anything starts.
run: $(STAMP)
	bin/run-local

## The test suite (SQLite + in-process Redis unless TEST_DATABASE_URL / TEST_REDIS_URL).
test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf var $(VENV)
