"""The exception codec of the process boundary: an exception crosses as bytes and arrives as itself.

Child side: :func:`capture` turns any exception into bytes, with its traceback
as frame data (:mod:`futurekit._process.frames`), its ``__cause__``/``__context__``
chain, notes and exception-group members, and falls back to
:class:`~futurekit.RemoteError` when the exception cannot cross. Parent side:
:func:`rebuild` turns those bytes back into the original type with the
child's real frames. (The codec of calls and results is
:mod:`futurekit._process.payload`.) A traceback is captured as it is: a
runner that wants its own frames left out strips them first
(:func:`futurekit._process.worker.run_call` does).

Why not ``tblib.pickling_support``: its "per instance" registration still
calls ``copyreg.pickle(type(exc), ...)`` (a process-global change), and its
rebuilt frames come from ``exec`` of a stub whose column table is wrong
(wrong ``^^^^`` markers on 3.11+, tblib issue 76) and whose ``f_back`` pins the
rebuilding thread's frames. Here the reductions live on a private
:class:`pickle.Pickler` (``reducer_override``), so nothing global changes.
"""

from __future__ import annotations

import io
import os
import pickle
import types
from typing import Any, Final, cast

from .._errors import RemoteError
from .frames import TbData, build_traceback, omitted_note
from .frames import tb_data as frames_tb_data
from .names import describe_error, safe_str, type_name
from .wire import PROTOCOL

__all__ = ["capture", "rebuild"]

_FORMAT: Final = "futurekit-exc-1"
_MAX_CHAIN: Final = 50

# --------------------------------------------------------------------------- exception (re)construction


def _make_exception(mode: int, func: Any, args: tuple[Any, ...]) -> BaseException:
    """Unpickling step 1: create the exception (mode 0: call; mode 1: __new__ only)."""
    exc = func.__new__(func, *args) if mode == 1 else func(*args)
    if not isinstance(exc, BaseException):
        raise TypeError(f"rebuilt {type(exc).__name__}, not an exception")
    return exc


def _apply_state(exc: BaseException, state: tuple[Any, ...], build_tb: bool) -> None:
    """Unpickling step 2: restore state, chain, notes and traceback."""
    own_state, setter, attrs, cause, context, suppress, notes, tb_data = state
    if setter is not None:
        setter(exc, own_state)
    elif own_state is not None:
        exc.__setstate__(own_state)
    if attrs:
        for key, value in attrs.items():
            setattr(exc, key, value)
    exc.__cause__ = cause
    exc.__context__ = context
    exc.__suppress_context__ = suppress
    if notes is not None:
        exc.__notes__ = notes
    if tb_data is not None:
        if tb_data[1]:
            if not isinstance(getattr(exc, "__notes__", None), list):
                exc.__notes__ = []
            exc.__notes__.append(omitted_note(tb_data[1]))
        if build_tb:
            exc.__traceback__ = build_traceback(tb_data)


def _set_exception_state(exc: BaseException, state: tuple[Any, ...]) -> None:
    """Pickle ``state_setter`` for exceptions."""
    _apply_state(exc, state, True)


def _set_exception_state_verify(exc: BaseException, state: tuple[Any, ...]) -> None:
    """Child-side round-trip check: as :func:`_set_exception_state`, no frames built."""
    _apply_state(exc, state, False)


def _rebuild_traceback(data: TbData) -> types.TracebackType | None:
    """Unpickle a traceback found anywhere else in an exception's data."""
    return build_traceback(data)


def _remote_error(type_name: str, message: str, reason: str) -> RemoteError:
    """Construct a RemoteError (pickled by reference)."""
    return RemoteError(type_name, message, reason=reason)


_PLAIN_REDUCERS: Final = (BaseException.__reduce__, OSError.__reduce__)
_OSERROR_FIELDS: Final = ("errno", "strerror", "filename", "filename2")


def _head(
    exc: BaseException, protocol: int, alt: bool = False
) -> tuple[tuple[int, Any, tuple[Any, ...]], Any, Any, dict[str, Any]]:
    """How to recreate exc itself: (mode, func, args), state, state_setter, attrs.

    Mode 0 calls what ``__reduce_ex__`` says; mode 1 creates the instance with
    ``__new__`` and restores ``args``, ``__dict__`` (and OSError's fields)
    without calling ``__init__``. ``alt`` picks the other mode than usual.
    """
    cls = type(exc)
    reduced = exc.__reduce_ex__(protocol)
    if isinstance(reduced, str) or len(reduced) < 2:
        raise TypeError(f"{type_name(cls)}.__reduce_ex__ returned {reduced!r}")
    if any(item is not None for item in reduced[3:5]):
        raise TypeError(f"{type_name(cls)}.__reduce_ex__ returned list or dict items")
    plain = cls.__reduce__ in _PLAIN_REDUCERS and cls.__reduce_ex__ is BaseException.__reduce_ex__
    # A Python __init__ with plain reduction is the classic "custom __init__
    # with required arguments" whose signature need not match self.args.
    if (plain and isinstance(cls.__init__, types.FunctionType)) != alt:
        attrs: dict[str, Any] = {"args": exc.args}
        instance_dict = getattr(exc, "__dict__", None) or None  # read before isinstance() narrows exc
        new_args: tuple[Any, ...] = ()
        if isinstance(exc, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", exc)  # isinstance() leaves the type argument unknown
            new_args = (group.message, group.exceptions)
        if isinstance(exc, OSError):
            for field in _OSERROR_FIELDS:
                value = getattr(exc, field, None)
                if value is not None:
                    attrs[field] = value
        return (1, cls, new_args), instance_dict, None, attrs
    state = reduced[2] if len(reduced) > 2 else None
    setter = reduced[5] if len(reduced) > 5 else None
    return (0, reduced[0], tuple(reduced[1])), state, setter, {}


class _CapturePickler(pickle.Pickler):
    """Pickles exceptions and tracebacks as data, on this pickler only (no copyreg change).

    ``safe``: check that each exception alone can be rebuilt (trying both
    modes of :func:`_head`) and send a RemoteError for one that cannot.
    ``bare``: id of an exception to pickle without chain, notes or traceback
    (the object of such a check). ``alt``: ids of exceptions whose usual mode
    failed the check.
    """

    def __init__(
        self, file: io.BytesIO, cache: dict[int, TbData], *, safe: bool, bare: int = 0, alt: set[int] | None = None
    ) -> None:
        super().__init__(file, PROTOCOL)
        self.tb_cache = cache
        self.safe = safe
        self.bare = bare
        self.alt: set[int] = set() if alt is None else alt

    def tb_data(self, tb: types.TracebackType | None) -> TbData | None:
        """Frame data of a traceback, computed once per capture."""
        if tb is None:
            return None
        data = self.tb_cache.get(id(tb))
        if data is None:
            data = self.tb_cache[id(tb)] = frames_tb_data(tb)
        return data

    def reducer_override(self, obj: Any) -> Any:
        """Exceptions and tracebacks get our reductions; everything else pickles as usual."""
        if isinstance(obj, BaseException):
            return self.reduce_exception(obj)
        if isinstance(obj, types.TracebackType):
            return _rebuild_traceback, (self.tb_data(obj),)
        return NotImplemented

    def check(self, exc: BaseException, alt: bool) -> BaseException | None:
        """None if exc alone survives a round trip in the given mode, else the error."""
        ids = self.alt | {id(exc)} if alt else self.alt - {id(exc)}
        try:
            buf = io.BytesIO()
            _CapturePickler(buf, self.tb_cache, safe=True, bare=id(exc), alt=ids).dump(exc)
            _verify(buf.getvalue())
        except BaseException as err:
            return err
        return None

    def reduce_exception(self, exc: BaseException) -> tuple[Any, ...]:
        """Reduce exc to (_make_exception, head, state incl. chain, notes and frames)."""
        if id(exc) == self.bare:
            extras: tuple[Any, ...] = (None, None, False, None, None)
        else:
            extras = (
                exc.__cause__,
                exc.__context__,
                exc.__suppress_context__,
                getattr(exc, "__notes__", None),
                self.tb_data(exc.__traceback__),
            )
            if self.safe:
                failure = self.check(exc, alt=False)
                if failure is not None:
                    if self.check(exc, alt=True) is None:
                        self.alt.add(id(exc))
                    else:
                        head: tuple[Any, ...] = (0, _remote_error, _remote_error_args(exc, failure))
                        state: tuple[Any, ...] = (None, None, None, *extras)
                        return _make_exception, head, state, None, None, _set_exception_state
        (mode, func, args), own_state, setter, attrs = _head(exc, PROTOCOL, id(exc) in self.alt)
        return (
            _make_exception,
            (mode, func, args),
            (own_state, setter, attrs, *extras),
            None,
            None,
            _set_exception_state,
        )


def _remote_error_args(exc: BaseException, err: BaseException) -> tuple[str, str, str]:
    """RemoteError arguments for exc, which failed with err."""
    return (type_name(type(exc)), safe_str(exc), f"could not be pickled in the worker: {describe_error(err)}")


def _dumps(exc: BaseException, cache: dict[int, TbData], *, safe: bool) -> bytes:
    """Pickle exc with a :class:`_CapturePickler`."""
    buf = io.BytesIO()
    _CapturePickler(buf, cache, safe=safe).dump(exc)
    return buf.getvalue()


class _VerifyUnpickler(pickle.Unpickler):
    """Unpickles captured data without building frames (the child's round-trip check)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_set_exception_state":
            return _set_exception_state_verify
        return super().find_class(module, name)


def _verify(data: bytes) -> None:
    """Raise if data does not unpickle to an exception."""
    obj = _VerifyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, BaseException):
        raise TypeError(f"unpickled {type(obj).__name__}, not an exception")


# Fallback node: (type name, message, tb data, notes, cause node, context node, suppress_context)
_Fallback = tuple[str, str, "TbData | None", "list[str] | None", Any, Any, bool]


def _fallback(exc: BaseException, cache: dict[int, TbData], depth: int = 0) -> _Fallback:
    """Plain-data summary of exc and its chain, for when nothing else can be rebuilt."""
    tb = exc.__traceback__
    tb_data = None
    if tb is not None:
        tb_data = cache.get(id(tb)) or frames_tb_data(tb)
    notes = getattr(exc, "__notes__", None)
    plain_notes = [str(n) for n in cast("list[object]", notes)] if isinstance(notes, list) else None
    cause = context = None
    if depth < _MAX_CHAIN:
        if exc.__cause__ is not None:
            cause = _fallback(exc.__cause__, cache, depth + 1)
        if exc.__context__ is not None and exc.__context__ is not exc.__cause__:
            context = _fallback(exc.__context__, cache, depth + 1)
    return (type_name(type(exc)), safe_str(exc), tb_data, plain_notes, cause, context, exc.__suppress_context__)


def capture(exc: BaseException) -> bytes:
    """Serialise an exception, with its real traceback, for :func:`rebuild`.

    The traceback travels as frame data (file, function, line and the exact
    column positions), with the ``__cause__``/``__context__`` chain,
    ``__suppress_context__``, ``__notes__`` and exception-group members, each
    with its own traceback. A traceback deeper than 100 frames keeps its first
    and last 50 frames; the rebuilt exception gets a note saying how many were
    omitted. The result is unpickled here first; an exception (or a chained
    one) that cannot be pickled or rebuilt is sent as a
    :class:`~futurekit.RemoteError` carrying its type's qualified name, its
    message and its frames. Nothing global (``copyreg``) is changed.

    Args:
        exc: The exception, typically just caught in a worker.

    Returns:
        Bytes for :func:`rebuild`.

    Example:
        >>> from futurekit._process.exceptions import capture, rebuild
        >>> try:
        ...     {}["missing"]
        ... except KeyError as exc:
        ...     data = capture(exc)
        >>> err = rebuild(data)
        >>> type(err).__name__, err.args, err.__traceback__ is not None
        ('KeyError', ('missing',), True)

    Concurrency:
        Blocking: Never blocks (calls the exception's pickling hooks).
        Callbacks: None.
        Thread safety: Safe from any thread; does not modify exc.
        Cancellation: Not applicable.
    """
    cache: dict[int, TbData] = {}
    primary: bytes | None = None
    reason = ""
    try:
        try:
            primary = _dumps(exc, cache, safe=False)
            _verify(primary)
        except BaseException:
            # Slow path: find the exceptions that cannot cross, replace only those.
            primary = _dumps(exc, cache, safe=True)
            _verify(primary)
    except BaseException as err:
        primary = None
        reason = describe_error(err)
    try:
        fallback: Any = _fallback(exc, cache)
    except BaseException:
        fallback = None
    try:
        return pickle.dumps((_FORMAT, os.getpid(), primary, fallback, reason), PROTOCOL)
    except BaseException:  # pragma: no cover - only plain data is left
        return pickle.dumps((_FORMAT, os.getpid(), None, None, reason), PROTOCOL)


def _from_fallback(node: _Fallback, reason: str) -> RemoteError:
    """RemoteError (and chained RemoteErrors) from plain data."""
    type_name, message, tb_data, notes, cause, context, suppress = node
    err = RemoteError(type_name, message, reason=reason)
    if notes is not None:
        err.__notes__ = list(notes)
    if tb_data is not None:
        if tb_data[1]:
            err.add_note(omitted_note(tb_data[1]))
        err.__traceback__ = build_traceback(tb_data)
    if cause is not None:
        err.__cause__ = _from_fallback(cause, reason)
    if context is not None:
        err.__context__ = _from_fallback(context, reason)
    err.__suppress_context__ = suppress
    return err


def rebuild(data: bytes) -> BaseException:
    """Rebuild an exception captured by :func:`capture`, as its original type.

    Its ``__traceback__`` holds the child's frames as real traceback objects,
    so ``traceback.print_exception``, ``traceback.extract_tb``, pytest and
    ``pdb.post_mortem`` name the child's functions, files and lines, and show
    the same column markers the child would have shown. Chain, notes and
    group members are restored; the outermost exception gets a note
    ``"futurekit: raised in worker process <pid>"``. When the type cannot be
    imported or constructed here, a :class:`~futurekit.RemoteError` with the
    qualified name, message and remote frames stands in for it (and for each
    chained exception).

    Args:
        data: Bytes from :func:`capture`.

    Returns:
        The exception (never raised by this function).

    Example:
        >>> import traceback
        >>> from futurekit._process.exceptions import capture, rebuild
        >>> def parse(text):
        ...     return int(text)
        >>> try:
        ...     parse("x")
        ... except ValueError as exc:
        ...     data = capture(exc)
        >>> err = rebuild(data)
        >>> type(err).__name__, traceback.extract_tb(err.__traceback__)[-1].name
        ('ValueError', 'parse')

    Concurrency:
        Blocking: Never blocks (calls the exception type's unpickling hooks).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    try:
        fmt, pid, primary, fallback, reason = pickle.loads(data)
        if fmt != _FORMAT:
            raise ValueError(f"unknown format {fmt!r}")
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        return RemoteError("<unknown>", "", reason=f"undecodable remote exception data: {describe_error(err)}")
    exc: BaseException | None = None
    if primary is not None:
        try:
            exc = pickle.loads(primary)
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            reason = f"could not be rebuilt in the caller: {describe_error(err)}"
        else:
            if not isinstance(exc, BaseException):
                exc = None
                reason = "could not be rebuilt in the caller"
    elif reason:
        reason = f"could not be pickled in the worker: {reason}"
    if exc is None:
        try:
            exc = (
                _from_fallback(fallback, reason)
                if fallback is not None
                else RemoteError("<unknown>", "", reason=reason)
            )
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            exc = RemoteError("<unknown>", "", reason=f"{reason}; fallback failed: {describe_error(err)}")
    try:
        if pid != os.getpid():
            exc.add_note(f"futurekit: raised in worker process {pid}")
    except Exception:
        pass
    return exc
