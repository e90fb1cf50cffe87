# The performance benchmark (bench/, docs/performance.md). Included by the top Makefile, which
# defines PY, STAMP, and (through devcluster/devcluster.mk) cluster-build and TEST_CLUSTER_DEPS.
#
#   make bench         full sizes: fan-out 10/100/500, burst 100/1000, 1,000 apps steady state
#   make bench-quick   small sizes, a few minutes
#   make bench-ci      the tiny fan-out (N=10) of `make test`: every observer converges
#
# bench and bench-quick run on a private control plane under .bench/cluster/ (never the shared
# .devcluster/ one), write .bench/results.json and .bench/results.md, and exit 1 when a target
# of docs/performance.md is missed. BENCH_ARGS passes more, e.g.
#   make bench-quick BENCH_ARGS='--compare .bench/results.prev.json --keep-cluster'

BENCH_ARGS ?=

.PHONY: bench
bench: cluster-build $(STAMP) ## benchmark at full size on a private control plane (.bench/results.md)
	$(PY) -m bench.run --profile full $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: cluster-build $(STAMP) ## benchmark at small sizes (about 5 minutes on 2 cores; .bench/results.md)
	$(PY) -m bench.run --profile quick $(BENCH_ARGS)

.PHONY: bench-ci
bench-ci: $(TEST_CLUSTER_DEPS) ## tiny bench run (fan-out N=10): every observer converges, no timing
	$(PY) -m pytest tests/bench
