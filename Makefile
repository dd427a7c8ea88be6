# llm-gateway developer commands. `make run` serves the gateway locally, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# checkov, bandit and import-linter live in a virtualenv of their own: they pin many of the project's packages
# differently (checkov its dependencies, import-linter a click that the SAM CLI refuses).
SCAN_VENV ?= .venv-scan
SCAN_BIN := $(SCAN_VENV)/bin
ENV ?= dev
export SAM_CLI_TELEMETRY := 0
# Claude Code, from npm, for the end-to-end tests that drive it against the local gateway.
CLAUDE_CODE_VERSION ?= 2.1.332
CLAUDE_CODE := .cache/claude-code/node_modules/.bin/claude
# Codex CLI, from npm, for the end-to-end test that drives it against the local gateway's Responses API.
CODEX_VERSION ?= 0.171.0
CODEX := .cache/codex/node_modules/.bin/codex
# The Node SDKs and agent frameworks the end-to-end tests drive (the OpenAI Agents SDK, the Vercel AI SDK, the openai
# and anthropic SDKs), pinned with their dependencies by tests/e2e/js/package.json and its lock file.
NODE_CLIENTS := .cache/node-clients/node_modules/.package-lock.json

.PHONY: help install run test lint scan format pytest unit contract e2e build deploy bench cost events clean console

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/gatewayctl: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,local]'
	@touch $@

install: $(BIN)/gatewayctl ## Create the virtualenv and install the gateway, gatewayctl and dev tools

$(CLAUDE_CODE): Makefile
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix .cache/claude-code @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) && touch $@; \
	else echo "npm not found: the Claude Code end-to-end tests will be skipped"; fi

$(CODEX): Makefile
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix .cache/codex @openai/codex@$(CODEX_VERSION) && touch $@; \
	else echo "npm not found: the Codex CLI end-to-end test will be skipped"; fi

$(NODE_CLIENTS): tests/e2e/js/package.json tests/e2e/js/package-lock.json
	@if command -v npm >/dev/null; then \
		mkdir -p .cache/node-clients && cp tests/e2e/js/package.json tests/e2e/js/package-lock.json .cache/node-clients/ && \
		npm ci --silent --no-audit --no-fund --prefix .cache/node-clients && touch $@; \
	else echo "npm not found: the Node clients' end-to-end tests will be skipped"; fi

# The web console (console/): npm dependencies exactly as package-lock.json pins them, built by Vite into console/dist,
# which `make run` serves at /console/ and `make deploy` publishes to the console's bucket.
CONSOLE_SOURCES := $(wildcard console/src/*.js console/src/*/*.js console/src/*.css) console/index.html console/vite.config.js

console/node_modules/.package-lock.json: console/package-lock.json
	npm ci --prefix console --silent --no-audit --no-fund

console/dist/index.html: console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	npm run --prefix console --silent build -- --logLevel warn

console: ## Build the web console (console/ -> console/dist; `make run` serves it on /console/)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory console/dist/index.html; \
	else echo "npm not found: the web console is not built (make run serves the API without it)"; fi

$(SCAN_BIN)/checkov: scan-constraints.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_BIN)/python -m pip install --quiet --upgrade pip
	$(SCAN_BIN)/python -m pip install --quiet -c scan-constraints.txt checkov bandit import-linter
	@touch $@

run: install console ## Serve the whole gateway on http://127.0.0.1:3000/v1 (PORT=..., GATEWAY_DEMO_KEY=..., ARGS=...)
	$(BIN)/gatewayctl serve $(ARGS)

test: lint pytest ## Every check: lint, template checks, sam build, unit/contract/e2e tests

lint: install $(SCAN_BIN)/checkov ## ruff, the layers (import-linter), mypy, cfn-lint, sam validate --lint, security scans
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	@# The layer contracts in pyproject.toml: imports point down, the emulator and the gateway stay apart.
	PYTHONPATH=layers/gateway:. $(SCAN_BIN)/lint-imports --no-cache
	$(BIN)/mypy
	@# Every function's entry module is app.py, so each is checked on its own.
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1
	$(BIN)/python scripts/security_scan.py --tools $(SCAN_BIN)

scan: install $(SCAN_BIN)/checkov ## Security scans alone: checkov on template.yaml, bandit on the code; prints counts
	$(BIN)/python scripts/security_scan.py --tools $(SCAN_BIN)

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Claude Code comes with the tiers that drive it (e2e, the whole suite), not with `make install`: `make run` never waits
# for npm.
pytest: install console $(CLAUDE_CODE) $(CODEX) $(NODE_CLIENTS) ## The test suite alone: unit, contract and end-to-end tests
	$(BIN)/pytest

unit: install ## The unit tier: domain, wire formats, providers on stubs and fakes; no stack, no sockets beyond 127.0.0.1
	$(BIN)/pytest tests/unit -q

contract: install ## The contract tier: the stores on both backends, the handlers on the stack (moto), events/; no sam build
	$(BIN)/pytest tests/contract -m "not build" -q

e2e: install console $(CLAUDE_CODE) $(CODEX) $(NODE_CLIENTS) ## The end-to-end tier: the local gateway over HTTP, driven by the official clients, agent SDKs, Claude Code, Codex and a browser
	$(BIN)/pytest tests/e2e -q

build: install ## sam build (needs a Python 3.13 on PATH or under pyenv)
	@py313=$$(scripts/find-python313) || { echo "sam build needs Python 3.13 for the python3.13 runtime: install it (e.g. 'pyenv install 3.13') or put python3.13 on PATH"; exit 1; }; \
	echo "sam build with $$py313"; \
	PATH="$$(dirname $$py313):$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml

deploy: build console ## sam deploy to ENV=dev|prod|default (samconfig.toml), then publish the web console
	$(BIN)/sam deploy --config-env $(ENV)
	$(BIN)/python console/publish.py --config-env $(ENV)

bench: install ## Benchmarks (cold start, memory per request kind, the prompt estimate's cost); prints figures
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/estimate.py --timing

cost: install ## Monthly AWS cost for a workload vs LiteLLM on Fargate (ARGS="--requests 10M --latency 5", --table)
	$(BIN)/gatewayctl cost $(ARGS)

events: install ## Regenerate events/ from `sam local generate-event`
	$(BIN)/python scripts/generate_events.py

clean: ## Remove build output and the virtualenv
	rm -rf .aws-sam $(VENV) $(SCAN_VENV) .pytest_cache .mypy_cache .ruff_cache console/dist console/node_modules
