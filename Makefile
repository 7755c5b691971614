# The README's two commands: `make run` and `make test`. Both create the venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test install lint typecheck unit integration bench-smoke bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/tandem run $(ARGS)

test: install lint typecheck unit integration bench-smoke

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

# A smoke run of every benchmark on tiny inputs (figures are not checked here).
bench-smoke:
	@for b in bench/*.py; do echo "== $$b --smoke"; $(BIN)/python $$b --smoke || exit 1; done

bench:
	@for b in bench/*.py; do echo "== $$b"; nice -n 5 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
