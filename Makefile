# llm-gateway developer commands. `make run` serves the gateway locally, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ENV ?= dev
export SAM_CLI_TELEMETRY := 0

.PHONY: help install run test lint format pytest build deploy bench events clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/gatewayctl: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/gatewayctl ## Create the virtualenv and install the gateway, gatewayctl and dev tools

run: install ## Serve the whole gateway on http://127.0.0.1:3000/v1 (PORT=..., GATEWAY_DEMO_KEY=..., ARGS=...)
	$(BIN)/gatewayctl serve $(ARGS)

test: lint pytest ## Every check: lint, template checks, sam build, unit/contract/e2e tests

lint: install ## ruff, mypy, cfn-lint, sam validate --lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	@# Every function's entry module is app.py, so each is checked on its own.
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: install ## The test suite alone
	$(BIN)/pytest

build: install ## sam build (needs a Python 3.13 on PATH or under pyenv)
	@py313=$$(scripts/find-python313) || { echo "sam build needs Python 3.13 for the python3.13 runtime: install it (e.g. 'pyenv install 3.13') or put python3.13 on PATH"; exit 1; }; \
	echo "sam build with $$py313"; \
	PATH="$$(dirname $$py313):$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml

deploy: build ## sam deploy to ENV=dev|prod|default (samconfig.toml)
	$(BIN)/sam deploy --config-env $(ENV)

bench: install ## Benchmarks (cold start, the prompt estimate's cost); prints figures
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/estimate.py --timing

events: install ## Regenerate events/ from `sam local generate-event`
	$(BIN)/python scripts/generate_events.py

clean: ## Remove build output and the virtualenv
	rm -rf .aws-sam $(VENV) .pytest_cache .mypy_cache .ruff_cache
