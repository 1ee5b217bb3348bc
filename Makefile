# genomebus: the two commands a newcomer runs are `make demo` and `make test`.
# Both install what they need first (idempotent; a few seconds when everything is in place).

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

UV_VERSION := 0.13.9
TOOLS_DIR ?= $(or $(GENOMEBUS_TOOLS_DIR),$(HOME)/.cache/genomebus)
UV := $(TOOLS_DIR)/uv/$(UV_VERSION)/bin/uv
VENV := .venv
GENOMEBUS := $(VENV)/bin/genomebus
PYTEST_ARGS ?=

.PHONY: install demo test test-unit lint stack stack-down stack-status contracts bench-overhead bench-registry clean

## install: the Python workspace (.venv, from uv.lock) and the system parts of the local stack
install: $(VENV)/.synced
	$(GENOMEBUS) stack install

$(UV):
	@echo "installing uv $(UV_VERSION) into $(TOOLS_DIR)/uv"
	python3 -m venv "$(TOOLS_DIR)/uv/$(UV_VERSION)"
	"$(TOOLS_DIR)/uv/$(UV_VERSION)/bin/pip" install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --python 3.11
	touch $@

## stack: bring the local Kafka, MinIO and PostgreSQL up (a no-op when they are running)
stack: install
	$(GENOMEBUS) stack up

stack-down:
	$(GENOMEBUS) stack down

stack-status:
	$(GENOMEBUS) stack status

## demo: the whole stack and one run of the main job, end to end
demo: stack
	$(VENV)/bin/python -m genomebus_devstack.demo

## test: the whole suite, integration tests against the real stack
test: stack
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## test-unit: the tests that need no Kafka, MinIO, PostgreSQL or bio tool (the cores, with in-memory adapters); under a minute
test-unit: $(VENV)/.synced
	$(VENV)/bin/python -m pytest -m "not integration and not tools" -p no:cacheprovider $(PYTEST_ARGS)

## lint: the gate CI runs before the tests: ruff (rules in pyproject.toml), ruff format, mypy --strict, import-linter contracts
lint: $(VENV)/.synced
	$(VENV)/bin/ruff check libs services tests bench deploy
	$(VENV)/bin/ruff format --check libs services tests bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## contracts: regenerate the JSON Schemas and AsyncAPI document from the event models
contracts: $(VENV)/.synced
	$(VENV)/bin/genomebus-contracts generate

## bench-overhead: genomebus end to end vs the raw tools on the same data (prints ratio: platform/raw)
bench-overhead: stack
	$(VENV)/bin/python bench/overhead.py $(BENCH_ARGS)

## bench-registry: 40 whole genomes: load, fold, allele/region latency with consent on/off and 50 pending, withdrawal during a load, MB per genome (BENCH_ARGS=--genomes N for more)
bench-registry: stack
	$(VENV)/bin/python bench/registry.py $(BENCH_ARGS)

clean: stack-down
	rm -rf $(VENV) .stack
