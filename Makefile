# webapp-operator: every task a developer or CI runs.
# `make test` and `make run` install what they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Caches live outside the repository so a fresh clone reuses them.
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/webapp-operator
export PIP_CACHE_DIR ?= $(CACHE_DIR)/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
STAMP := $(VENV)/.installed

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create the virtualenv with the operator and the dev tools

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: fmt
fmt: $(STAMP) ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: crd
crd: $(STAMP) ## regenerate crds/ from the models
	$(VENV)/bin/webapp-operator crd > crds/webapps.twelvefactor.dev.yaml

.PHONY: test-unit
test-unit: $(STAMP) ## pure tests: models, env rules, rendering, CLI (no cluster)
	$(PY) -m pytest tests/unit

.PHONY: test
test: lint test-unit test-cluster ## every test tier (builds or reuses the local control plane)

# The local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok,
# kubectl, helm), built from Go modules: cluster-build, cluster-up, cluster-down, test-cluster.
include devcluster/devcluster.mk
