# The part of cloudpickle futurekit uses (cloudpickle ships no type information).
import pickle
from collections.abc import Callable, Mapping
from typing import IO, Any, ClassVar

__version__: str

def dumps(obj: Any, protocol: int | None = None, buffer_callback: Any = None) -> bytes: ...

class Pickler(pickle.Pickler):
    dispatch_table: Mapping[type, Callable[[Any], Any]]  # pyright: ignore[reportIncompatibleVariableOverride]
    _dispatch_table: ClassVar[dict[type, Callable[[Any], Any]]]
    def __init__(self, file: IO[bytes], protocol: int | None = None, buffer_callback: Any = None) -> None: ...
