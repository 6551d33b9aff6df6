# The part of cloudpickle futurekit uses (cloudpickle ships no type information).
from typing import Any

__version__: str

def dumps(obj: Any, protocol: int | None = None, buffer_callback: Any = None) -> bytes: ...
