# StockAgent API. `make run` and `make test` work from a clean clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7071
# Azurite, the Azure Storage emulator, for queue-triggered functions (DESIGN.md decision 8), from npm into .tools/.
AZURITE_VERSION ?= >=3.35.0 <4
AZURITE := .tools/node_modules/.bin/azurite

# Python 3.13+ (DESIGN.md decision 0): .python-version selects pyenv's 3.13; else any python3.13 on PATH.
PYTHON313 := $(shell for c in "$$(pyenv which python 2>/dev/null)" python3.13 python3.14 python3 python; do \
	p=$$(command -v $$c 2>/dev/null) || continue; \
	$$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: run test bench migrate clean venv check-python tools azurite

check-python:
	@if [ -z "$(PYTHON313)" ]; then \
		echo "error: Python 3.13 or newer is required (pyenv install 3.13, or put python3.13 on PATH)" >&2; exit 1; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt | check-python
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error 'azurite@$(AZURITE_VERSION)'

# Azurite when node is present; without node (or when npm fails) the local host uses in-process queues.
tools:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(AZURITE) || echo "azurite could not be installed: in-process queues" >&2; \
	else echo "node not found: the local host uses in-process queues (install Node.js for Azurite)" >&2; fi

run: venv tools
	HOST=$(HOST) PORT=$(PORT) $(PY) -m devhost

# The whole emulator (blob, queue, table) on its default ports, for `func start` with
# AzureWebJobsStorage=UseDevelopmentStorage=true (make run starts its own queue service instead).
azurite: tools
	$(AZURITE) --silent --skipApiVersionCheck --disableTelemetry --location .data/azurite-func \
		--blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1

test: venv tools
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	$(PY) -m bench

migrate: venv
	$(PY) -m shared.data.migrate

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .tools
