# The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
# (one fake Node), kubectl and helm, built from Go modules (devcluster/build.sh) and run by
# devcluster/localcluster.py. See docs/devcluster.md.
#
# Included by the top Makefile, which defines VENV, PY, STAMP and CACHE_DIR.
#
# For other targets (`make run`, other test tiers):
#   DEVCLUSTER_KUBECONFIG   absolute path of the local cluster's admin kubeconfig
#   DEVCLUSTER_BIN          absolute path of .devcluster/bin (kubectl, helm, ...)
#   CLUSTER_DEPS            prerequisites that give a cluster: `cluster-up`, or nothing when the
#                           caller set KUBECONFIG (then that cluster is used as it is)
#   CLUSTER_KUBECONFIG      $(KUBECONFIG) if set, else $(DEVCLUSTER_KUBECONFIG)
# Python code can call localcluster.ensure_up(repo_root) -> Path (the kubeconfig) instead.

DEVCLUSTER_DIR := $(CURDIR)/.devcluster
DEVCLUSTER_BIN := $(DEVCLUSTER_DIR)/bin
DEVCLUSTER_KUBECONFIG := $(DEVCLUSTER_DIR)/kubeconfig
DEVCLUSTER := $(PY) devcluster/localcluster.py
CLUSTER_DEPS := $(if $(KUBECONFIG),,cluster-up)
CLUSTER_KUBECONFIG := $(or $(KUBECONFIG),$(DEVCLUSTER_KUBECONFIG))
# The cluster tests use WEBAPP_TEST_KUBECONFIG when set (kind, k3d, a real cluster), and then
# need neither the build nor the local control plane.
TEST_CLUSTER_DEPS := $(if $(WEBAPP_TEST_KUBECONFIG),$(STAMP),cluster-up)

.PHONY: cluster-build
cluster-build: ## build (first time: slow) or reuse etcd, kube-*, kubectl, kwok, helm in .devcluster/bin
	@CACHE_DIR='$(CACHE_DIR)' devcluster/build.sh

.PHONY: cluster-up
cluster-up: cluster-build $(STAMP) ## start the local control plane (idempotent); prints export KUBECONFIG=...
	@$(DEVCLUSTER) up

.PHONY: cluster-down
cluster-down: $(STAMP) ## stop the local control plane and forget its data
	@$(DEVCLUSTER) down

.PHONY: cluster-status
cluster-status: $(STAMP) ## show the local control plane's processes and health
	@$(DEVCLUSTER) status

.PHONY: cluster-env
cluster-env: $(STAMP) ## print the exports (KUBECONFIG; PATH with .devcluster/bin and the venv's bin, for `kubectl webapp`)
	@$(DEVCLUSTER) env --venv '$(abspath $(VENV))'

.PHONY: test-cluster
test-cluster: $(TEST_CLUSTER_DEPS) ## tests against a real API server (the local one unless WEBAPP_TEST_KUBECONFIG)
	$(PY) -m pytest tests/cluster
