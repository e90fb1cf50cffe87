"""Regenerate what derives from the Helm chart: `python -m tests.chart.generate` (`make manifests`).

- manifests/charts/webapp-operator/crds/: a copy of crds/ (Helm reads only files in the chart);
- manifests/kustomize/: the base and the namespaced overlay (chartkit.kustomize_files);
- tests/chart/snapshots/: the `helm template` snapshots.

Tests fail when any of these is stale; review the diff of a regeneration like code.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.chart import chartkit

SNAPSHOTS = Path(__file__).parent / "snapshots"
SNAPSHOT_VALUES = {"default": [], "namespaced": [chartkit.NAMESPACED_VALUES]}


def main() -> int:
    shutil.copyfile(chartkit.REPO_CRD, chartkit.CHART_CRD)
    written = [chartkit.CHART_CRD]
    written += chartkit.write_kustomize()
    SNAPSHOTS.mkdir(exist_ok=True)
    for name, values in SNAPSHOT_VALUES.items():
        path = SNAPSHOTS / f"{name}.yaml"
        path.write_text(chartkit.template(values=values))
        written.append(path)
    for path in written:
        sys.stdout.write(f"wrote {path.relative_to(chartkit.REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
