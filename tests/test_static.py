"""Static checks run as part of the suite: mypy --strict (package, tests, typing tests), stubtest on typings/,
ruff (lint and format), pyright with the project's configuration, and pyright --verifytypes on a built copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff(args: list[str]) -> None:
    """ruff check and ruff format --check pass on the whole tree, with the configuration in pyproject.toml."""
    proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def _pyright(*args: str, cwd: Path, pythonpath: str | None = None) -> dict[str, Any]:
    """Run pyright (the pip package, through this interpreter) and return its JSON report.

    ``--pythonpath sys.executable``: no activated venv needed. ``--outputjson`` also keeps pyright-python
    from asking PyPI whether a newer version exists.
    """
    env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath  # replaced, not prepended: nothing else may come first
    cmd = [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable, *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no JSON report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return report


def _where(diag: dict[str, Any]) -> str:
    start = diag.get("range", {}).get("start", {})
    return f"{diag.get('file', '?')}:{start.get('line', -1) + 1}:{start.get('character', -1) + 1}"


def test_pyright() -> None:
    """pyright with the project's configuration: strict on futurekit/, standard on tests/."""
    report = _pyright(cwd=ROOT)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    lines = [f"{_where(d)}: {d['message']} ({d.get('rule', '')})" for d in errors]
    assert len(errors) == 0, f"pyright: {len(errors)} error(s):\n" + "\n".join(lines)


def test_pyright_verifytypes_complete(tmp_path: Path) -> None:
    """pyright --verifytypes futurekit scores 100 % on the package as installed from its wheel.

    --verifytypes needs a non-editable installed copy: build the wheel, unpack it, and put that
    directory first on the path of the interpreter pyright asks; run outside the tree, so the
    source checkout is not what pyright finds.
    """
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check"]
    build = subprocess.run(
        [*pip_wheel, "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"building the wheel failed:\n{build.stdout}\n{build.stderr}"
    (wheel,) = wheels.glob("futurekit-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    report = _pyright("--verifytypes", "futurekit", "--ignoreexternal", cwd=tmp_path, pythonpath=str(site))
    completeness = report["typeCompleteness"]
    assert Path(completeness["packageRootDirectory"]) == site / "futurekit", completeness["packageRootDirectory"]
    assert completeness["pyTypedPath"], "the wheel ships no py.typed"
    lines = [
        f"{sym['name']}: {_where(diag)}: {diag['message']}"
        for sym in completeness["symbols"]
        if sym["isExported"] and not (sym["isTypeKnown"] and not sym["isTypeAmbiguous"])
        for diag in sym["diagnostics"] or [{"message": "type unknown or ambiguous"}]
    ]
    lines += [f"{_where(d)}: {d['message']}" for d in report["generalDiagnostics"] if d["severity"] == "error"]
    score = completeness["completenessScore"]
    assert score == 1.0, f"type completeness {score:.1%}, symbols:\n" + "\n".join(lines)
