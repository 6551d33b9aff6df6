"""``python -m futurekit``: the showcase runs to its end, with its cluster section when dask is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from executor_helpers import HAVE_DASK

ROOT = Path(__file__).resolve().parent.parent


def test_python_m_futurekit_runs_every_section() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "futurekit"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "== gather" in out
    assert "ValueError: line '12x' is not a number" in out
    assert "== futurekit.dask.executor(client)" in out
    if HAVE_DASK:
        assert "LocalCluster of 2 worker processes up" in out
        assert "sum(map(abs, 100,000 lazy items)) = 4999950000" in out.split("futurekit.dask.executor")[1]
        assert "raised on a dask worker" in out
        cluster_part = out.split("raised on a dask worker")[1]
        assert "in _validate\n" in cluster_part  # the worker's frames
        assert "Traceback" not in proc.stderr
    else:
        assert "pip install 'futurekit[dask]'" in out
