# Two commands matter: `make demo` and `make test`. Both create .venv on
# first use and install what they need into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.dev-installed
BENCH_STAMP := $(VENV)/.bench-installed
MUTATION_STAMP := $(VENV)/.mutation-installed

.PHONY: demo test test-pythons mutation lint typecheck unit bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEV_STAMP): $(BIN)/python pyproject.toml requirements-dev.txt
	$(BIN)/python -m pip install -q -e '.[redis,prometheus,otel]' -r requirements-dev.txt
	touch $@

$(BENCH_STAMP): $(DEV_STAMP) requirements-bench.txt
	$(BIN)/python -m pip install -q -r requirements-bench.txt
	touch $@

demo: $(DEV_STAMP)
	$(BIN)/python examples/aiohttp_demo.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check async_reduce

typecheck: $(DEV_STAMP)
	$(BIN)/mypy async_reduce tests/typing_check.py

unit: $(DEV_STAMP)
	$(BIN)/python -m pytest

# The suite once normally, then the reducer's, pool's, services' and fleet's
# tests again under asyncio debug mode (slow-callback and never-retrieved
# checks on).
test: lint typecheck unit
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/reducer tests/pool
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/services
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/fleet
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/workers

# The reducer, hooks and pool suites on the oldest and newest supported
# CPythons, each in its own venv (.venv-X.Y); a version missing from this
# machine is reported, not passed silently.  .ci/run runs it after `test`.
OTHER_PYTHONS ?= 3.10 3.13
test-pythons:
	tools/other_pythons.sh $(OTHER_PYTHONS)

$(MUTATION_STAMP): $(DEV_STAMP) requirements-mutation.txt
	$(BIN)/python -m pip install -q -r requirements-mutation.txt
	touch $@

# Mutation testing with mutmut, group by group (slow: not part of `test`).
# MUTATION="core --jobs 1" picks groups and options; see DEVELOPMENT.md.
MUTATION ?=
mutation: $(MUTATION_STAMP)
	$(BIN)/python tools/mutation.py $(MUTATION)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .mutation build dist
