# The two commands of the README quickstart: `make up` runs the desk, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: up test lint install down clean

install:
	./scripts/bootstrap.sh

up: install
	$(VENV)/bin/eventdesk up

down: install
	$(VENV)/bin/eventdesk down

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy kalshi models

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
