"""Type stubs for tblib.decorators (return exceptions as values, re-raise them later)."""

from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

def reraise(tp: Callable[[], BaseException] | None, value: BaseException | None, tb: TracebackType | None = None) -> NoReturn: ...

class Error:
    exc_type: type[BaseException]
    exc_value: BaseException
    def __init__(self, exc_type: type[BaseException], exc_value: BaseException, traceback: TracebackType) -> None: ...
    @property
    def traceback(self) -> TracebackType | None: ...
    def reraise(self) -> NoReturn: ...

def return_error(
    func: Callable[_P, _R], exc_type: type[BaseException] | tuple[type[BaseException], ...] = ...
) -> Callable[_P, _R | Error]: ...

returns_error = return_error
return_errors = return_error
returns_errors = return_error

def apply_with_return_error(args: tuple[Any, ...]) -> Any: ...
