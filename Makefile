# Switchyard: the front door. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/venv/bin/uv)
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION := 1.75.0
GENERATED := protos/switchyard/auth/v1/auth_pb2.py
PYTEST_ARGS ?=

.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(TOOLS)/venv/bin/uv:
	$(PYTHON) -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet uv==0.13.8

$(VENV)/.synced: pyproject.toml uv.lock */pyproject.toml libs/dev/pyproject.toml libs/client/pyproject.toml services/*/pyproject.toml | $(UV)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

.PHONY: install
install: $(VENV)/.synced protos client ## Create the virtualenv from uv.lock and generate code

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after changing a pyproject.toml
	$(UV) lock

.PHONY: protos
protos: $(VENV)/.synced ## Generate Python code and type stubs from protos/
	$(PY) protos/generate.py > /dev/null

.PHONY: openapi
openapi: install ## Write the OpenAPI document the gateway serves to gateway/openapi.json (committed)
	$(PY) -m gateway.contract write

CLIENT := libs/client/src/switchyard_client

$(CLIENT)/py.typed: gateway/openapi.json libs/client/openapi-python-client.yaml | $(VENV)/.synced
	$(VENV)/bin/openapi-python-client generate --path gateway/openapi.json \
		--config libs/client/openapi-python-client.yaml --meta none \
		--output-path $(CLIENT) --overwrite --fail-on-warning > /dev/null
	@touch $@

.PHONY: client
client: $(CLIENT)/py.typed ## Generate the typed Python client (libs/client) from gateway/openapi.json

$(BUF):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) @bufbuild/buf@$(BUF_VERSION)

.PHONY: registry
registry: install ## Rewrite the lists of services in skaffold.yaml and k8s/ from protos/switchyard/services.toml
	$(PY) -m switchyard_dev.registry sync

.PHONY: new-service
new-service: install ## Scaffold a working service from the skeleton: make new-service NAME=inventory
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=<name>" >&2; exit 2; }
	$(PY) -m switchyard_dev.scaffold new $(NAME)
	$(UV) lock --quiet
	$(MAKE) --no-print-directory registry protos

.PHONY: remove-service
remove-service: install ## Take out a service make new-service added: make remove-service NAME=inventory
	@test -n "$(NAME)" || { echo "usage: make remove-service NAME=<name>" >&2; exit 2; }
	$(PY) -m switchyard_dev.scaffold remove $(NAME)
	$(UV) lock --quiet
	$(MAKE) --no-print-directory registry protos

.PHONY: lint
lint: install $(BUF) ## ruff, ruff format --check, mypy --strict, import contracts, duplicate code in services/, buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -m switchyard.services -p switchyard_kit -p switchyard_dev -p gateway $$($(PY) -m switchyard.services packages | sed 's/^/-p /')
	# Tests are not type-checked, save the journeys through the generated client:
	# a change of the contract that breaks its users fails here.
	MYPYPATH=tests $(VENV)/bin/mypy tests/e2e/test_client_journey.py
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/pylint --disable=all --enable=duplicate-code --min-similarity-lines=10 --ignore-imports=yes --ignore-signatures=yes --score=no $$(find services -name '*.py')
	BUF=$(BUF) PYTHON=$(PY) protos/buf.sh lint

.PHONY: proto-breaking
proto-breaking: install $(BUF) ## buf breaking against AGAINST (default origin/main)
	BUF=$(BUF) PYTHON=$(PY) protos/buf.sh breaking $${AGAINST:-origin/main}

OPTIC := gateway/openapi-diff/node_modules/.bin/optic

$(OPTIC): gateway/openapi-diff/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix gateway/openapi-diff
	@touch $@

.PHONY: openapi-breaking
openapi-breaking: $(OPTIC) ## Breaking changes of gateway/openapi.json against AGAINST (default origin/main), by Optic's rules
	OPTIC=$(OPTIC) gateway/openapi-diff/breaking.sh $${AGAINST:-origin/main}

.PHONY: run
run: install ## Run the whole platform locally (gateway on :8080); Ctrl-C stops it
	$(PY) -m switchyard_dev

.PHONY: observe
observe: install ## make run plus a Prometheus on :9090 scraping every process, with the cluster's alert rules
	$(PY) -m switchyard_dev --observe

.PHONY: test
test: install k8s-check $(OPTIC) ## The whole test suite, integration tests against real PostgreSQL and Redis
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

# Deployment checks: their tools live in their own pinned venv, never in an image.
K8S_VENV := $(TOOLS)/k8s-venv

$(K8S_VENV)/.installed: k8s/tools/requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(K8S_VENV)
	$(UV) pip install --python $(K8S_VENV)/bin/python --require-hashes -r k8s/tools/requirements.txt
	@touch $@

.PHONY: k8s-check
k8s-check: install $(K8S_VENV)/.installed ## Offline checks of k8s/, skaffold.yaml, Dockerfiles (kustomize, schemas, checkov, hadolint, promtool)
	$(K8S_VENV)/bin/python k8s/tools/k8s_check.py
	$(VENV)/bin/pytest -q tests/deploy

.PHONY: image-check
image-check: install ## Build every image with podman and run each read-only, non-root, caps dropped
	$(PY) k8s/images/image_check.py

.PHONY: bench
bench: install ## Benchmark the platform beside its peers (~12 min; BENCH_ARGS=--quick: ~3 min)
	$(PY) bench/bench.py $(BENCH_ARGS)

.PHONY: clean
clean: ## Remove the virtualenv, tools, generated code and local data
	rm -rf $(VENV) $(TOOLS) data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache $(CLIENT)
	find protos/switchyard -name '*_pb2*.py*' -delete -o -name descriptors.binpb -delete
