# The Helm chart (manifests/charts/webapp-operator), the kustomize tree derived from it
# (manifests/kustomize), the image (operator/Dockerfile) and skaffold.yaml; tested by tests/chart.
# See docs/install.md and docs/image.md.
#
# Included by the top Makefile, after devcluster/devcluster.mk (PY, STAMP, CACHE_DIR,
# TEST_CLUSTER_DEPS). helm and kubectl come from .devcluster/bin (make cluster-build).

.PHONY: manifests
manifests: $(STAMP) cluster-build ## regenerate the chart's CRD copy, manifests/kustomize and the chart snapshots from the chart
	$(PY) -m tests.chart.generate

.PHONY: lint-chart
lint-chart: $(STAMP) cluster-build ## chart, kustomize, Dockerfile (hadolint) and skaffold checks that need no cluster
	CACHE_DIR='$(CACHE_DIR)' $(PY) -m pytest tests/chart -m 'not cluster'

.PHONY: test-chart
test-chart: $(TEST_CLUSTER_DEPS) cluster-build ## every chart test, with helm install and the controller scenarios as the chart's ServiceAccount
	CACHE_DIR='$(CACHE_DIR)' $(PY) -m pytest tests/chart
