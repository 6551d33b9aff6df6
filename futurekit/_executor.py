"""PLACEHOLDER - being written. The executor wrapper."""
from __future__ import annotations
import concurrent.futures
from typing import Any
class Executor(concurrent.futures.Executor):
    pass
def threads(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
processes = threads
