# The two commands of the README. Both do their own set-up on a fresh machine: a project virtual
# environment in .venv (scripts/venv.sh), so no system-wide pip is needed. Python >= 3.11.
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Two workers: most non-unit tests wait on an engine, a server or a browser, so a second worker
# runs beside them (tests/conftest.py: every test needing a real engine stays on one worker).
# A worker that crashes ends the run, as a crash of the one process did (no restart).
PYTEST_ARGS ?= -n 2 --max-worker-restart=0
export VENV

.PHONY: up install install-test provision lint test bench

up: install
	$(BIN)/cem up --demo --port $(PORT)

install:
	@bash scripts/venv.sh runtime

install-test:
	@bash scripts/venv.sh test

provision:
	bash .ci/provision.sh

lint: install-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m mypy

test: provision install-test lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/cem bench
