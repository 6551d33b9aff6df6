"""Type stubs for tblib 3.2 (serialisable traceback objects)."""

import re
from collections.abc import Callable, Mapping
from types import CodeType, FrameType, TracebackType
from typing import Any, Final, Protocol, TypedDict, type_check_only

from typing_extensions import NotRequired, Self

__version__: Final[str]
__all__ = ("Code", "Frame", "Traceback", "TracebackParseError")

FRAME_RE: re.Pattern[str]

_GetLocals = Callable[[Any], dict[str, Any]]

@type_check_only
class _CodeLike(Protocol):
    @property
    def co_filename(self) -> str: ...
    @property
    def co_name(self) -> str: ...

@type_check_only
class _FrameLike(Protocol):
    @property
    def f_globals(self) -> Mapping[str, Any]: ...
    @property
    def f_code(self) -> _CodeLike: ...
    @property
    def f_lineno(self) -> int: ...

@type_check_only
class _TracebackLike(Protocol):
    @property
    def tb_frame(self) -> _FrameLike: ...
    @property
    def tb_lineno(self) -> int: ...
    @property
    def tb_next(self) -> _TracebackLike | None: ...

@type_check_only
class _CodeDict(TypedDict):
    co_filename: str
    co_name: str

@type_check_only
class _FrameDict(TypedDict):
    f_globals: dict[str, Any]
    f_locals: NotRequired[dict[str, Any]]
    f_code: _CodeDict
    f_lineno: int

@type_check_only
class _TracebackDict(TypedDict):
    tb_frame: _FrameDict
    tb_lineno: int
    tb_next: _TracebackDict | None

class _AttrDict(dict[str, Any]):
    def __getattr__(self, name: str) -> Any: ...

class TracebackParseError(Exception): ...

class Code:
    """Just enough of a code object to pickle it and render a traceback."""

    co_code: None
    co_filename: str
    co_name: str
    co_argcount: int
    co_kwonlyargcount: int
    co_varnames: tuple[()]
    co_nlocals: int
    co_stacksize: int
    co_flags: int
    co_firstlineno: int
    def __init__(self, code: CodeType | _CodeLike) -> None: ...

class Frame:
    """Just enough of a frame object to pickle it and render a traceback."""

    f_locals: dict[str, Any]
    f_globals: dict[str, Any]
    f_code: Code
    f_lineno: int
    def __init__(self, frame: FrameType | _FrameLike, *, get_locals: _GetLocals | None = None) -> None: ...
    def clear(self) -> None: ...

class Traceback:
    """A picklable copy of a traceback; ``as_traceback`` makes a real one again."""

    tb_next: Traceback | None
    tb_frame: Frame
    tb_lineno: int
    def __init__(self, tb: TracebackType | _TracebackLike, *, get_locals: _GetLocals | None = None) -> None: ...
    def as_traceback(self) -> TracebackType | None: ...
    def to_traceback(self) -> TracebackType | None: ...
    def as_dict(self) -> _TracebackDict: ...
    def to_dict(self) -> _TracebackDict: ...
    @classmethod
    def from_dict(cls, dct: _TracebackDict) -> Self: ...
    @classmethod
    def from_string(cls, string: str, strict: bool = True) -> Self: ...

def get_all_locals(frame: FrameType | _FrameLike) -> dict[str, Any]: ...
