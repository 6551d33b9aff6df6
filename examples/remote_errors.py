"""Errors from worker processes arrive as themselves, with the worker's frames.

Run:  python examples/remote_errors.py
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

import futurekit as fk


class ConfigError(Exception):
    """An exception whose __init__ takes a required argument besides the message."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def load(key: str) -> int:
    try:
        return int({"retries": "three"}[key])
    except ValueError as exc:
        raise ConfigError(key, "not a number") from exc


def holds_a_lock() -> None:
    error = RuntimeError("cannot be pickled")
    error.lock = threading.Lock()  # type: ignore[attr-defined]
    raise error


def crash() -> None:
    os._exit(3)


def main() -> None:
    with fk.processes(max_workers=2) as ex:
        print("== 1. The original type, its cause, and the worker's frames")
        try:
            ex.submit(load, "retries").result(timeout=60)
        except ConfigError as exc:
            print(f"caught {type(exc).__name__} (key={exc.key!r}); its cause: {exc.__cause__!r}")
            traceback.print_exception(exc, file=sys.stdout)

        print("\n== 2. An exception that cannot cross arrives as fk.RemoteError")
        try:
            ex.submit(holds_a_lock).result(timeout=60)
        except fk.RemoteError as exc:
            print(f"caught RemoteError: type_name={exc.type_name!r}, message={exc.message!r}")

        print("\n== 3. A worker that dies: WorkerCrashedError names the task; the pool recovers")
        try:
            ex.submit(crash).result(timeout=60)
        except fk.WorkerCrashedError as exc:
            print(f"caught WorkerCrashedError: {exc}")
        print("the pool still works:", ex.submit(pow, 2, 10).result(timeout=60))


if __name__ == "__main__":
    main()
