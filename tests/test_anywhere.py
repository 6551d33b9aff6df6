"""Code written anywhere runs in processes: stdin, python -c, a notebook, lambdas, closures, __main__, loky.

How Python was started decides what workers can import, so every case runs
in a fresh interpreter (``subprocess``), never in the test runner's own
``__main__``. Each program prints one line of results; the test compares it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import futurekit as fk

TIMEOUT = 120
METHODS = ["fork", "forkserver", "spawn"]

# Code that defines everything in __main__ (functions, a closure, a class, a lambda) and uses it in processes.
BODY = """
import futurekit as fk

def square(x):
    return x * x

class Point:
    def __init__(self, x):
        self.x = x

def make_adder(n):
    def add(x):
        return x + n
    return add

def main(method):
    with fk.processes(max_workers=2, mp_context=method) as ex:
        squares = list(ex.map(square, range(5)))
        closure = ex.submit(make_adder(10), 1).result(timeout=60)
        lam = ex.submit(lambda x: x * 3, 2).result(timeout=60)
        point = ex.submit(Point, 7).result(timeout=60)
        back = ex.submit(lambda: (lambda: 42)).result(timeout=60)()
        rows = list(ex.starmap(pow, [(2, 3), (3, 2)]))
    print("RESULT", squares, closure, lam, type(point) is Point, point.x, back, rows)
"""
EXPECTED = "RESULT [0, 1, 4, 9, 16] 11 6 True 7 42 [8, 9]"


def run(args: list[str], stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd
    )


def result_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return lines[-1]


@pytest.mark.parametrize("method", METHODS)
def test_a_script_read_from_stdin(method: str) -> None:
    proc = run(["-"], stdin=BODY + f"\nif __name__ == '__main__':\n    main({method!r})\n")
    assert result_line(proc) == EXPECTED


@pytest.mark.parametrize("method", METHODS)
def test_python_dash_c(method: str) -> None:
    assert result_line(run(["-c", BODY + f"\nmain({method!r})\n"])) == EXPECTED


@pytest.mark.parametrize("method", METHODS)
def test_a_notebook_cell(method: str, tmp_path: Path) -> None:
    # A kernel runs each cell in a __main__ module that has no file, as IPython and Jupyter do.
    kernel = tmp_path / "kernel.py"
    kernel.write_text(
        textwrap.dedent(
            f"""
            import sys, types
            cell = {(BODY + f"main({method!r})").strip()!r}
            notebook = types.ModuleType("__main__")
            notebook.__dict__["__builtins__"] = __builtins__
            sys.modules["__main__"] = notebook
            exec(compile(cell, "<ipython-input-1-0123456789ab>", "exec"), notebook.__dict__)
            """
        )
    )
    assert result_line(run([str(kernel)])) == EXPECTED


@pytest.mark.parametrize("method", METHODS)
def test_a_script_file_with_the_main_guard(method: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(BODY + f"\nif __name__ == '__main__':\n    main({method!r})\n")
    assert result_line(run([str(script)])) == EXPECTED


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_script_without_the_main_guard_says_why(method: str, tmp_path: Path) -> None:
    script = tmp_path / "noguard.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import futurekit as fk

            def square(x):
                return x * x

            with fk.processes(max_workers=2, mp_context={method!r}) as ex:
                print("RESULT", list(ex.map(square, range(3))))
            """
        )
    )
    proc = run([str(script)])
    assert proc.returncode != 0
    assert "BrokenProcessPool" in proc.stderr
    assert "could not import the main script" in proc.stderr
    assert "if __name__ == '__main__':" in proc.stderr
    assert "RuntimeError: An attempt has been made to start a new process" in proc.stderr  # the worker's own error
    assert "The above exception was the direct cause" in proc.stderr


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_function_defined_under_the_guard_says_where_to_put_it(method: str, tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import futurekit as fk

            if __name__ == "__main__":
                def square(x):
                    return x * x

                with fk.processes(max_workers=1, mp_context={method!r}) as ex:
                    try:
                        ex.submit(square, 3).result(timeout=60)
                    except fk.SerializationError as err:
                        print("RESULT", err)
            """
        )
    )
    line = result_line(run([str(script)]))
    assert "square" in line
    assert "outside that block, or in a module" in line


def test_loky_with_remote_true_runs_main_functions_and_lambdas(tmp_path: Path) -> None:
    pytest.importorskip("loky")
    script = tmp_path / "with_loky.py"
    script.write_text(
        textwrap.dedent(
            """
            import loky
            import futurekit as fk

            def square(x):
                return x * x

            if __name__ == "__main__":
                with fk.Executor(loky.get_reusable_executor(max_workers=1), remote=True) as ex:
                    values = [ex.submit(square, 4).result(timeout=60), ex.submit(lambda: 5).result(timeout=60)]
                    values.append(list(ex.map(square, [1, 2])))
                    try:
                        ex.submit(int, "x").result(timeout=60)
                    except ValueError as err:
                        values.append(type(err).__name__)
                print("RESULT", values)
            """
        )
    )
    assert result_line(run([str(script)])) == "RESULT [16, 5, [1, 4], 'ValueError']"


def test_what_nothing_can_send_still_fails_at_submit() -> None:
    import socket

    sock = socket.socket()
    try:
        with fk.processes(max_workers=1) as ex, pytest.raises(fk.SerializationError, match=r"argument 0 .*socket"):
            ex.submit(print, sock)
    finally:
        sock.close()


# An initializer defined in __main__, with a multiprocessing object (which pickles only while a process
# starts) and a __main__ class among its arguments. It leaves its mark in os.environ, not in a global of
# __main__: a function sent by value carries its own copy of the globals it reads (docs/notebooks-and-scripts.md).
INIT_BODY = """
import multiprocessing
import os
import futurekit as fk

class Tag:
    def __init__(self, name):
        self.name = name

def init(queue, tag):
    os.environ["FK_TEST_TAG"] = tag.name
    queue.put(tag.name)

def seen(_):
    return os.environ.get("FK_TEST_TAG")

def main(method):
    queue = multiprocessing.get_context(method).Queue()
    with fk.processes(max_workers=1, mp_context=method, initializer=init, initargs=(queue, Tag("t"))) as ex:
        values = list(ex.map(seen, range(3)))
        print("RESULT", values, queue.get(timeout=60))
"""


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", ["file", "stdin", "lambda"])
def test_an_initializer_defined_in_main(method: str, how: str, tmp_path: Path) -> None:
    source = INIT_BODY + f"\nif __name__ == '__main__':\n    main({method!r})\n"
    if how == "lambda":  # by value, from a script file
        source = source.replace("initializer=init,", "initializer=lambda q, t: init(q, t),")
        assert "lambda q" in source
    if how in ("file", "lambda"):
        script = tmp_path / "script.py"
        script.write_text(source)
        proc = run([str(script)])
    else:
        proc = run(["-"], stdin=source)
    assert result_line(proc) == "RESULT ['t', 't', 't'] t"
