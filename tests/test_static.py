"""Static checks run as part of the suite: mypy --strict (package, tests, typing tests) and stubtest on typings/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.environ.get("FUTUREKIT_SKIP_STATIC") == "1",
    reason="static checks run once, on the primary Python (scripts/test-all)",
)


def test_mypy_strict_package_tests_and_typing_tests() -> None:
    """mypy --strict over futurekit/, tests/ and the typing tests (must-fail lines pinned by type: ignore[code],
    with warn_unused_ignores, so a must-fail line that stops failing is itself an error)."""
    from mypy import api

    typing_tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "typing").glob("*.py"))
    assert typing_tests, "no typing tests found"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        stdout, stderr, status = api.run(
            ["--config-file", "pyproject.toml", "--strict", "futurekit", "tests", *typing_tests]
        )
    finally:
        os.chdir(cwd)
    assert status == 0, f"mypy failed:\n{stdout}\n{stderr}"


def test_tblib_stubs_match_runtime() -> None:
    """typings/tblib must describe the installed tblib honestly (mypy.stubtest)."""
    env = dict(os.environ, MYPYPATH=str(ROOT / "typings"))
    cmd = [sys.executable, "-m", "mypy.stubtest", "tblib", "--mypy-config-file", str(ROOT / "pyproject.toml")]
    allowlist = ROOT / "typings" / "stubtest-allowlist.txt"
    if allowlist.exists():
        cmd += ["--allowlist", str(allowlist)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"stubtest failed:\n{proc.stdout}\n{proc.stderr}"
