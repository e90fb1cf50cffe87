"""The performance benchmark of webapp-operator (docs/performance.md).

`python -m bench.run --profile quick|full` starts (or reuses) a private control plane under
`.bench/cluster/`, runs the operator as a separate process against it, and writes
`.bench/results.json` and `.bench/results.md`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# devcluster/localcluster.py is a script directory, not a package (as in pyproject's pytest
# pythonpath): make it importable however the bench is started.
_DEVCLUSTER = str(REPO_ROOT / "devcluster")
if _DEVCLUSTER not in sys.path:
    sys.path.insert(0, _DEVCLUSTER)
