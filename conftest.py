"""Collection rules for the doctests of the package (tests/conftest.py holds the test fixtures)."""

from __future__ import annotations

import importlib.util

# futurekit/dask.py needs the dask extra; where it is not installed its doctests cannot be
# collected (the cluster tests in tests/ are skipped there, each with its reason).
collect_ignore = [] if importlib.util.find_spec("distributed") is not None else ["futurekit/dask.py"]
