"""Type stubs for tblib.pickling_support (pickle exceptions with their tracebacks)."""

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from . import Frame, Traceback, _GetLocals

_E = TypeVar("_E", bound=BaseException)
_T = TypeVar("_T", bound=type[BaseException])

def unpickle_traceback(tb_frame: Frame, tb_lineno: int, tb_next: Traceback | None) -> TracebackType | None: ...
def pickle_traceback(
    tb: TracebackType, *, get_locals: _GetLocals | None = None
) -> tuple[Callable[[Frame, int, Traceback | None], TracebackType | None], tuple[Frame, int, Traceback | None]]: ...
def unpickle_exception_with_attrs(
    func: type[_E],
    attrs: dict[str, Any],
    cause: BaseException | None,
    tb: TracebackType | None,
    context: BaseException | None,
    suppress_context: bool,
    notes: list[str] | None,
    args: tuple[Any, ...] = (),
) -> _E: ...
def unpickle_exception(
    func: Callable[..., _E],
    args: tuple[Any, ...],
    cause: BaseException | None,
    tb: TracebackType | None,
    context: BaseException | None = None,
    suppress_context: bool = False,
    notes: list[str] | None = None,
) -> _E: ...
def pickle_exception(
    obj: BaseException,
    builtin_reducers: tuple[Callable[..., Any], ...] = ...,
    builtin_inits: tuple[Callable[..., Any], ...] = ...,
) -> tuple[Any, ...]: ...

# Mutates the process-global copyreg.dispatch_table (even for instances: it
# registers their classes). futurekit never calls it.
@overload
def install(exc_class: _T, /, *, get_locals: _GetLocals | None = None) -> _T: ...
@overload
def install(
    *exc_classes_or_instances: type[BaseException] | BaseException, get_locals: _GetLocals | None = None
) -> type[BaseException] | None: ...
