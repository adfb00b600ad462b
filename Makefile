# The two commands of the README. Both do their own set-up on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: up install install-test provision lint test bench

up: install
	cem up --demo

install:
	$(PIP) install -q -e .

install-test:
	$(PIP) install -q -e '.[test]'

provision:
	bash .ci/provision.sh

lint: install-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: provision install-test lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: install
	cem bench
