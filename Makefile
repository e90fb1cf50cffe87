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

# The local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok,
# kubectl, helm), built from Go modules: cluster-build, cluster-up, cluster-down, test-cluster.
include devcluster/devcluster.mk
# The Helm chart, kustomize, image and skaffold: manifests, lint-chart, test-chart.
include manifests/manifests.mk
# The benchmark on a private control plane: bench, bench-quick, bench-ci.
include bench/bench.mk

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
test: lint test-unit test-cluster test-chart bench-ci ## every test tier (builds or reuses the local control plane)

# `make run`: the operator against $KUBECONFIG, or the local control plane when none is set;
# installs the CRD and the sample app of examples/flask first, so a new user sees it work.
OPERATOR_NAMESPACE ?= webapp-operator
KUBECTL = $(if $(wildcard $(DEVCLUSTER_BIN)/kubectl),$(DEVCLUSTER_BIN)/kubectl,kubectl)
.PHONY: run
run: $(STAMP) $(CLUSTER_DEPS) ## run the operator (local control plane if no KUBECONFIG), with the CRD and a sample app
	@export KUBECONFIG='$(CLUSTER_KUBECONFIG)'; set -e; \
	$(KUBECTL) apply --server-side --field-manager=make-run -f crds/; \
	$(KUBECTL) wait --for=condition=Established --timeout=60s crd/webapps.twelvefactor.dev; \
	for ns in $(OPERATOR_NAMESPACE) demo; do \
	  $(KUBECTL) get namespace $$ns >/dev/null 2>&1 || $(KUBECTL) create namespace $$ns; done; \
	$(KUBECTL) apply -f examples/flask/secrets.yaml -f examples/flask/webapp.yaml; \
	echo "Watch it: KUBECONFIG=$$KUBECONFIG $(KUBECTL) get webapps,deploy,secrets -n demo"; \
	exec $(VENV)/bin/webapp-operator run --verbose --operator-namespace $(OPERATOR_NAMESPACE)

