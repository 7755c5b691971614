# The README's two commands: `make run` and `make test`. Both create the venv if missing.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test install lint typecheck unit integration e2e bench-smoke bench backtest clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/tandem run $(ARGS)

test: install lint typecheck unit integration e2e bench-smoke

# The README's backtest example: both variants of a registry strategy, then its report.
backtest: install
	TANDEM_META_THRESHOLD=30 $(BIN)/tandem backtest --strategy ema-cross --mode equity \
		--variant both --run-id example
	$(BIN)/tandem report example

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check engine actors api storage tests bench

typecheck:
	$(BIN)/mypy engine actors api storage

# Unit and contract tests run in their own process: they must never start Ray.
unit:
	$(BIN)/pytest -q tests/unit tests/contract

# Integration tests share one session-scoped local Ray.
integration:
	$(BIN)/pytest -q tests/integration

# Whole processes as a user runs them (`tandem run`, a writer killed mid-append): each
# starts what it needs itself, so they run after the shared Ray session has stopped.
e2e:
	$(BIN)/pytest -q tests/e2e

BENCHES := $(filter-out bench/__init__.py bench/loadgen.py bench/servers.py,$(wildcard bench/*.py))

# A smoke run of every benchmark on tiny inputs (figures are not checked here).
bench-smoke:
	@for b in $(BENCHES); do echo "== $$b --smoke"; $(BIN)/python $$b --smoke | tail -n 1 || exit 1; done

# The full benchmarks; each prints its figures as one JSON line at the end.
bench:
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
