# StockAgent API. `make run` and `make test` work from a clean clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7071

# Python 3.13+ (DESIGN.md decision 0): .python-version selects pyenv's 3.13; else any python3.13 on PATH.
PYTHON313 := $(shell for c in "$$(pyenv which python 2>/dev/null)" python3.13 python3.14 python3 python; do \
	p=$$(command -v $$c 2>/dev/null) || continue; \
	$$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: run test bench migrate clean venv check-python

check-python:
	@if [ -z "$(PYTHON313)" ]; then \
		echo "error: Python 3.13 or newer is required (pyenv install 3.13, or put python3.13 on PATH)" >&2; exit 1; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt | check-python
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	HOST=$(HOST) PORT=$(PORT) $(PY) -m devhost

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	$(PY) -m bench

migrate: venv
	$(PY) -m shared.data.migrate

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
