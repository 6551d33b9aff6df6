"""The process boundary: calls go out as bytes, results and exceptions come back as bytes.

Parent side: :func:`dump_call` pickles ``(fn, args, kwargs)`` in ``submit``'s
own thread (so a failure is raised there, at once, as
:class:`~futurekit.SerializationError`), and :func:`rebuild` turns a captured
exception back into its original type with the child's real frames.

Child side: :func:`run_call` runs a call and never raises; :func:`capture`
turns any exception into bytes, with its traceback as frame data (file, name,
line and column positions), its ``__cause__``/``__context__`` chain, notes and
exception-group members, and falls back to :class:`~futurekit.RemoteError`
when the exception cannot cross.

Why not ``tblib.pickling_support``: its "per instance" registration still
calls ``copyreg.pickle(type(exc), ...)`` (a process-global change), and its
rebuilt frames come from ``exec`` of a stub whose column table is wrong
(wrong ``^^^^`` markers on 3.11+, tblib issue 76) and whose ``f_back`` pins the
rebuilding thread's frames. Here the reductions live on a private
:class:`pickle.Pickler` (``reducer_override``), so nothing global changes,
and every rebuilt frame is the frame of an *unstarted generator* whose code
object carries the child's exact positions in its location table: the
traceback renders exactly as the worker would have rendered it, and the
frames reference nothing of the caller (``f_back is None``).
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import reprlib
import types
from collections.abc import Callable, Iterable
from typing import Any, Final

from ._errors import RemoteError, SerializationError

__all__ = [
    "capture",
    "describe_call",
    "dump_batch",
    "dump_call",
    "load_result",
    "rebuild",
    "run_batch",
    "run_call",
]

_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_FORMAT: Final = "futurekit-exc-1"
KEEP_HEAD: Final = 50
"""Remote frames kept from the outermost end of a deep traceback."""
KEEP_TAIL: Final = 50
"""Remote frames kept from the innermost end (where it was raised)."""
_MAX_CHAIN: Final = 50

# (filename, name, qualname, module name, co_firstlineno, lineno, end_lineno, col, end_col)
_FrameData = tuple[str, str, str, "str | None", int, "int | None", "int | None", "int | None", "int | None"]
# (frames, number of frames omitted after the first KEEP_HEAD)
_TbData = tuple[tuple[_FrameData, ...], int]

_TRAMPOLINES: Final = frozenset({__name__, "futurekit._worker"})
_THREADS_HINT: Final = "or use fk.threads() to run it in this process"


# --------------------------------------------------------------------------- names


def _type_name(cls: type) -> str:
    """Qualified name of a class, e.g. ``mymod.ParseError`` or ``ValueError``."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    if module in (None, "builtins"):
        return str(qualname)
    return f"{module}.{qualname}"


def _callable_name(fn: object) -> str:
    """``module.qualname`` of a callable; never raises."""
    try:
        inner = fn
        for _ in range(10):  # functools.partial and friends
            nested = getattr(inner, "func", None)
            if nested is None or not callable(nested):
                break
            inner = nested
        qualname = getattr(inner, "__qualname__", None)
        if not isinstance(qualname, str):
            qualname = _type_name(type(inner))
            return qualname
        module = getattr(inner, "__module__", None)
        if isinstance(module, str) and module != "builtins":
            return f"{module}.{qualname}"
        return qualname
    except BaseException:
        return f"<{type(fn).__name__} object>"


def _safe_str(exc: BaseException) -> str:
    """``str(exc)`` or a placeholder when its ``__str__`` fails (in any way)."""
    try:
        return str(exc)
    except BaseException as err:
        return f"<str() failed: {type(err).__name__}>"


def _is_local_function(obj: object) -> bool:
    """True for lambdas and functions defined inside another function."""
    qualname = getattr(obj, "__qualname__", "")
    return isinstance(obj, types.FunctionType) and ("<lambda>" in qualname or "<locals>" in qualname)


# --------------------------------------------------------------------------- describe_call


_repr: Final = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4


def _short_repr(obj: object) -> str:
    """Truncated repr that never raises (except KeyboardInterrupt)."""
    try:
        return _repr.repr(obj)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return f"<{type(obj).__name__} object (repr failed)>"


def describe_call(
    fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, limit: int = 120
) -> str:
    """Describe a call briefly, e.g. ``"mymod.work(1, 'abc', key=2)"``.

    Argument reprs are truncated (:mod:`reprlib`) and the whole text is cut to
    at most ``limit`` characters. Used in error messages (a crashed worker, an
    unpicklable argument), so it never raises: a failing ``__repr__`` shows as
    a placeholder.

    Args:
        fn: The callable.
        args: Positional arguments.
        kwargs: Keyword arguments.
        limit: Maximum length of the result (at least 10).

    Returns:
        The description.

    Example:
        >>> from futurekit._remote import describe_call
        >>> describe_call(divmod, (7, "x" * 100), {"key": 2}, limit=60)
        "divmod(7, 'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx', key=2)"
        >>> len(describe_call(divmod, tuple(range(100)), limit=30))
        30

    Concurrency:
        Blocking: Never blocks (calls the arguments' ``__repr__``).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    limit = max(limit, 10)
    text = f"{_callable_name(fn)}("
    try:
        parts = itertools.chain(
            (_short_repr(a) for a in args),
            (f"{k}={_short_repr(v)}" for k, v in (kwargs or {}).items()),
        )
        sep = ""
        for part in parts:  # lazily: a huge argument list is never repr'd in full
            if len(text) > limit:
                break
            text += sep + part
            sep = ", "
    except KeyboardInterrupt:
        raise
    except BaseException:
        text += "..."
    text += ")"
    if len(text) > limit:
        text = text[: limit - 4] + "...)"
    return text


# --------------------------------------------------------------------------- dump_call


def _first_unpicklable(fn: object, args: Iterable[tuple[str, object]]) -> tuple[str, object, BaseException] | None:
    """Find which of fn / the arguments fails to pickle (slow path only)."""
    for label, obj in itertools.chain((("function", fn),), args):
        try:
            pickle.dumps(obj, _PROTOCOL)
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            return label, obj, err
    return None


def _serialization_error(
    fn: object, labelled: Iterable[tuple[str, object]], err: BaseException, what: str
) -> SerializationError:
    """Build the SerializationError for an unpicklable call."""
    name = _callable_name(fn)
    found = _first_unpicklable(fn, labelled)
    if found is None:  # only the combination fails (e.g. a recursion limit)
        label, obj, cause = what, None, err
    else:
        label, obj, cause = found
    reason = _describe_error(cause)
    if label == "function":
        subject = f"function {name}"
    else:
        subject = f"{label} of {name}" + ("" if obj is None else f" (type {_type_name(type(obj))})")
    if _is_local_function(obj) or _is_local_function(getattr(obj, "func", None)):
        hint = (
            "lambda/local functions cannot be sent to a process: define it at module level, "
            f"{_THREADS_HINT}"
        )
    elif label == "function":
        hint = f"the function must be importable by name in the worker: define it at module level, {_THREADS_HINT}"
    else:
        hint = (
            "pass picklable data instead (not locks, open files, sockets, generators or "
            f"local functions), {_THREADS_HINT}"
        )
    exc = SerializationError(f"cannot send {subject} to a worker process: {reason}; {hint}")
    exc.__cause__ = cause
    return exc


def dump_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Pickle a call for :func:`run_call` in a worker process.

    Runs in the submitting thread, so a function or argument that cannot be
    pickled fails ``submit`` at once with a message that names it, instead of
    failing later in a pool's feeder thread (where the stdlib loses a
    ``BaseException`` raised by a ``__reduce__`` and the future never settles).

    Args:
        fn: The function; it must be importable by name in the worker.
        args: Positional arguments.
        kwargs: Keyword arguments.

    Returns:
        The payload for :func:`run_call`.

    Raises:
        SerializationError: ``fn`` or an argument cannot be pickled (any
            exception, even a ``BaseException`` such as ``SystemExit`` raised
            by a ``__reduce__``, other than ``KeyboardInterrupt``). The
            original error is chained as ``__cause__``.

    Example:
        >>> from futurekit._remote import dump_call, run_call
        >>> ok, data = run_call(dump_call(divmod, (7, 2), {}))
        >>> ok, __import__("pickle").loads(data)
        (True, (3, 1))
        >>> dump_call(lambda: 1, (), {})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        futurekit.SerializationError: cannot send function ...<lambda> to a worker process: ...

    Concurrency:
        Blocking: Never blocks (runs the arguments' pickling hooks).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    try:
        return pickle.dumps((fn, args, kwargs), _PROTOCOL)
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        failure = err
    # Outside the except block, so the probes' errors carry no noisy context.
    labelled = itertools.chain(
        ((f"argument {i}", a) for i, a in enumerate(args)),
        ((f"keyword argument {k!r}", v) for k, v in kwargs.items()),
    )
    error = _serialization_error(fn, labelled, failure, "arguments")
    del failure
    raise error from error.__cause__


def dump_batch(fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> bytes:
    """Pickle many calls of one function (a ``map`` chunk) for :func:`run_batch`.

    Args:
        fn: The function, importable by name in the worker.
        items: One tuple of positional arguments per call.

    Returns:
        The payload for :func:`run_batch`.

    Raises:
        SerializationError: As :func:`dump_call`, naming the failing item.

    Example:
        >>> import pickle
        >>> from futurekit._remote import dump_batch, run_batch
        >>> [(ok, pickle.loads(d)) for ok, d in run_batch(dump_batch(pow, [(2, 3), (3, 2)]))]
        [(True, 8), (True, 9)]

    Concurrency:
        Blocking: Never blocks (runs the arguments' pickling hooks).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    calls = list(items)
    try:
        inner = pickle.dumps((fn, calls), _PROTOCOL)
        return pickle.dumps((_callable_name(fn), len(calls), inner), _PROTOCOL)
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        failure = err
    error = _serialization_error(fn, ((f"item {i}", a) for i, a in enumerate(calls)), failure, "arguments")
    del failure
    raise error from error.__cause__


# --------------------------------------------------------------------------- run_call (child)


def _dump_result(fn: object, result: object) -> tuple[bool, bytes]:
    """Pickle a result, or capture a SerializationError naming fn and type."""
    try:
        return True, pickle.dumps(result, _PROTOCOL)
    except BaseException as err:
        exc = SerializationError(
            f"result of {_callable_name(fn)} (type {_type_name(type(result))}) cannot be pickled: "
            f"{_describe_error(err)}; return picklable data instead, {_THREADS_HINT}"
        )
        exc.__cause__ = err
        return False, capture(exc)


def _run_one(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, bytes]:
    """Run fn and encode the outcome (the caller catches nothing)."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return False, capture(exc)
    return _dump_result(fn, result)


def _guess_name(payload: bytes) -> str:
    """The first global a payload refers to (its function, usually); slow path only."""
    try:
        import pickletools

        strings: list[str] = []
        for opcode, arg, _pos in itertools.islice(pickletools.genops(payload), 200):
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                return arg.replace(" ", ".")
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:
        pass
    return "<unknown function>"


def _payload_error(name: str, err: BaseException) -> bytes:
    """Capture a SerializationError for a payload the worker could not unpickle."""
    exc = SerializationError(
        f"the worker could not unpickle the call to {name}: {_describe_error(err)}; "
        "the function and the classes of its arguments must be importable by name in the worker"
    )
    exc.__cause__ = err
    return capture(exc)


def run_call(payload: bytes) -> tuple[bool, bytes]:
    """Run a call made by :func:`dump_call`; the child-side trampoline.

    Module level, so a process pool pickles it by reference. Never raises, so
    the pool only ever transports ``(bool, bytes)``: nothing of the user's can
    break the pool while being (un)pickled on either side.

    Args:
        payload: Bytes from :func:`dump_call`.

    Returns:
        ``(True, pickled result)``, or ``(False, capture(exc))`` when the call
        raised, when its result cannot be pickled (a
        :class:`~futurekit.SerializationError` naming the function and the
        type) or when the payload cannot be unpickled here.

    Example:
        >>> from futurekit._remote import dump_call, rebuild, run_call
        >>> ok, data = run_call(dump_call(int, ("x",), {}))
        >>> ok, type(rebuild(data)).__name__
        (False, 'ValueError')

    Concurrency:
        Blocking: Runs the call in the calling thread (the worker).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable; it runs to completion.
    """
    try:
        fn, args, kwargs = pickle.loads(payload)
    except BaseException as err:
        return False, _payload_error(_guess_name(payload), err)
    return _run_one(fn, args, kwargs)


def run_batch(payload: bytes) -> list[tuple[bool, bytes]]:
    """Run a chunk of calls made by :func:`dump_batch`; one outcome per item.

    Never raises. Each item's outcome is encoded independently, as by
    :func:`run_call`, so one failing item fails only its own future; if the
    call cannot be unpickled here, every item gets that error (and bytes
    that did not come from :func:`dump_batch` get a one-item error list).

    Args:
        payload: Bytes from :func:`dump_batch`.

    Returns:
        A list of ``(ok, bytes)`` pairs in item order, as many as items.

    Example:
        >>> from futurekit._remote import dump_batch, run_batch
        >>> [ok for ok, _ in run_batch(dump_batch(int, [("1",), ("x",)]))]
        [True, False]

    Concurrency:
        Blocking: Runs the calls in the calling thread (the worker), in order.
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable; it runs to completion.
    """
    try:
        name, count, inner = pickle.loads(payload)  # plain str, int and bytes
    except BaseException as err:  # not from dump_batch: the size is unknown
        return [(False, _payload_error("<unknown function>", err))]
    try:
        fn, calls = pickle.loads(inner)
    except BaseException as err:
        error = _payload_error(name, err)
        return [(False, error)] * count
    return [_run_one(fn, args, {}) for args in calls]


def load_result(data: bytes, description: str = "the task") -> Any:
    """Unpickle a successful result in the caller.

    Args:
        data: The bytes of a ``(True, data)`` outcome.
        description: What produced it (e.g. :func:`describe_call`'s text), for
            the error message.

    Returns:
        The result.

    Raises:
        SerializationError: The result cannot be unpickled here (its class
            is not importable, or its ``__setstate__``/constructor fails).

    Example:
        >>> from futurekit._remote import load_result
        >>> load_result(__import__("pickle").dumps([1, 2]))
        [1, 2]

    Concurrency:
        Blocking: Never blocks.
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    try:
        return pickle.loads(data)
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        raise SerializationError(
            f"the result of {description} cannot be unpickled in the caller: {_describe_error(err)}"
        ) from err


# --------------------------------------------------------------------------- traceback data


def _frame_data(tb: types.TracebackType) -> _FrameData:
    """File, name, module and exact source positions of one traceback entry."""
    frame = tb.tb_frame
    code = frame.f_code
    lineno: int | None = tb.tb_lineno
    end_lineno = col = end_col = None
    lasti = tb.tb_lasti
    if lasti >= 0:
        try:
            pos = next(itertools.islice(code.co_positions(), lasti // 2, None))
        except StopIteration:
            pass
        else:
            # The traceback module falls back to tb_lineno when there is no line.
            if pos[0] is not None:
                lineno = pos[0]
            end_lineno, col, end_col = pos[1], pos[2], pos[3]
    module = frame.f_globals.get("__name__")
    return (
        code.co_filename,
        code.co_name,
        code.co_qualname,
        module if isinstance(module, str) else None,
        code.co_firstlineno,
        lineno,
        end_lineno,
        col,
        end_col,
    )


def _tb_data(tb: types.TracebackType | None) -> _TbData:
    """The frames of a traceback as data; deep ones lose their middle.

    Leading frames of futurekit's own worker trampolines are left out, so a
    remote traceback starts at the user's function.
    """
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_globals.get("__name__") in _TRAMPOLINES:
        tb = tb.tb_next
    entries: list[types.TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    omitted = 0
    if len(entries) > KEEP_HEAD + KEEP_TAIL:
        omitted = len(entries) - KEEP_HEAD - KEEP_TAIL
        entries = entries[:KEEP_HEAD] + entries[-KEEP_TAIL:]
    return tuple(_frame_data(t) for t in entries), omitted


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 64:
        out.append(64 | (value & 63))
        value >>= 6
    out.append(value)
    return bytes(out)


def _svarint(value: int) -> bytes:
    return _varint((-value << 1) | 1 if value < 0 else value << 1)


_STUB_CODE: types.CodeType | None = None
_CODE_CACHE: dict[_FrameData, types.CodeType] = {}
_CODE_CACHE_MAX: Final = 2048


def _stub_code() -> types.CodeType:
    """Code of an empty generator function; its frames stand in for remote ones."""
    global _STUB_CODE
    if _STUB_CODE is None:
        module = compile("def _futurekit_remote_frame():\n    yield\n", "<futurekit>", "exec")
        _STUB_CODE = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return _STUB_CODE


def _code_for(frame: _FrameData) -> types.CodeType:
    """A code object named and placed like the remote frame, every instruction at its positions."""
    code = _CODE_CACHE.get(frame)
    if code is not None:
        return code
    filename, name, qualname, _module, firstlineno, lineno, end_lineno, col, end_col = frame
    stub = _stub_code()
    units = len(stub.co_code) // 2
    # Location table (CPython's Objects/locations.md; the same format on
    # 3.11-3.13): entries of up to 8 code units each, all at the same place.
    # The first entry's line is relative to co_firstlineno, later ones to it.
    table = bytearray()
    first = True
    while units > 0:
        n = min(units, 8)
        units -= n
        delta = 0
        if first and lineno is not None:
            delta = lineno - firstlineno
        first = False
        if lineno is None:  # no location: the traceback module uses tb_lineno
            table.append(0x80 | (15 << 3) | (n - 1))
        elif end_lineno is None or col is None or end_col is None or end_lineno < lineno:
            table.append(0x80 | (13 << 3) | (n - 1))  # line only: no column markers
            table += _svarint(delta)
        else:
            table.append(0x80 | (14 << 3) | (n - 1))
            table += _svarint(delta) + _varint(end_lineno - lineno) + _varint(col + 1) + _varint(end_col + 1)
    code = stub.replace(
        co_filename=filename,
        co_name=name,
        co_qualname=qualname,
        co_firstlineno=firstlineno,
        co_linetable=bytes(table),
    )
    if len(_CODE_CACHE) >= _CODE_CACHE_MAX:
        _CODE_CACHE.clear()
    _CODE_CACHE[frame] = code
    return code


def _build_traceback(data: _TbData) -> types.TracebackType | None:
    """Real traceback objects for frame data; the frames reference nothing of ours."""
    frames, _omitted = data
    tb: types.TracebackType | None = None
    for frame in reversed(frames):
        code = _code_for(frame)
        f_globals = {"__name__": frame[3], "__file__": frame[0]}
        # An unstarted generator's frame: no code runs, f_back is None, and the
        # traceback module reads positions from tb_lasti in code we control.
        gen_frame = types.FunctionType(code, f_globals)().gi_frame
        lineno = frame[5]
        tb = types.TracebackType(tb, gen_frame, 0, lineno if lineno is not None else 0)
    return tb


def _omitted_note(count: int) -> str:
    return (
        f"futurekit: {count} remote frames omitted "
        f"(kept the first {KEEP_HEAD} and the last {KEEP_TAIL})"
    )


# --------------------------------------------------------------------------- exception (re)construction


def _make_exception(mode: int, func: Any, args: tuple[Any, ...]) -> BaseException:
    """Unpickling step 1: create the exception (mode 0: call; mode 1: __new__ only)."""
    if mode == 1:
        exc = func.__new__(func, *args)
    else:
        exc = func(*args)
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
            exc.__notes__.append(_omitted_note(tb_data[1]))
        if build_tb:
            exc.__traceback__ = _build_traceback(tb_data)


def _set_exception_state(exc: BaseException, state: tuple[Any, ...]) -> None:
    """Pickle ``state_setter`` for exceptions."""
    _apply_state(exc, state, True)


def _set_exception_state_verify(exc: BaseException, state: tuple[Any, ...]) -> None:
    """Child-side round-trip check: as :func:`_set_exception_state`, no frames built."""
    _apply_state(exc, state, False)


def _rebuild_traceback(data: _TbData) -> types.TracebackType | None:
    """Unpickle a traceback found anywhere else in an exception's data."""
    return _build_traceback(data)


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
        raise TypeError(f"{_type_name(cls)}.__reduce_ex__ returned {reduced!r}")
    if any(item is not None for item in reduced[3:5]):
        raise TypeError(f"{_type_name(cls)}.__reduce_ex__ returned list or dict items")
    plain = cls.__reduce__ in _PLAIN_REDUCERS and cls.__reduce_ex__ is BaseException.__reduce_ex__
    # A Python __init__ with plain reduction is the classic "custom __init__
    # with required arguments" whose signature need not match self.args.
    if (plain and isinstance(cls.__init__, types.FunctionType)) != alt:
        attrs: dict[str, Any] = {"args": exc.args}
        new_args: tuple[Any, ...] = ()
        if isinstance(exc, BaseExceptionGroup):
            new_args = (exc.message, exc.exceptions)
        if isinstance(exc, OSError):
            for field in _OSERROR_FIELDS:
                value = getattr(exc, field, None)
                if value is not None:
                    attrs[field] = value
        return (1, cls, new_args), (getattr(exc, "__dict__", None) or None), None, attrs
    state = reduced[2] if len(reduced) > 2 else None
    setter = reduced[5] if len(reduced) > 5 else None
    return (0, reduced[0], tuple(reduced[1])), state, setter, {}


def _describe_error(err: BaseException) -> str:
    """``"TypeName: message"``; never raises."""
    return f"{type(err).__name__}: {_safe_str(err)}"


class _CapturePickler(pickle.Pickler):
    """Pickles exceptions and tracebacks as data, on this pickler only (no copyreg change).

    ``safe``: check that each exception alone can be rebuilt (trying both
    modes of :func:`_head`) and send a RemoteError for one that cannot.
    ``bare``: id of an exception to pickle without chain, notes or traceback
    (the object of such a check). ``alt``: ids of exceptions whose usual mode
    failed the check.
    """

    def __init__(
        self, file: io.BytesIO, cache: dict[int, _TbData], *, safe: bool, bare: int = 0, alt: set[int] | None = None
    ) -> None:
        super().__init__(file, _PROTOCOL)
        self.tb_cache = cache
        self.safe = safe
        self.bare = bare
        self.alt = set() if alt is None else alt

    def tb_data(self, tb: types.TracebackType | None) -> _TbData | None:
        """Frame data of a traceback, computed once per capture."""
        if tb is None:
            return None
        data = self.tb_cache.get(id(tb))
        if data is None:
            data = self.tb_cache[id(tb)] = _tb_data(tb)
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
        (mode, func, args), own_state, setter, attrs = _head(exc, _PROTOCOL, id(exc) in self.alt)
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
    return (_type_name(type(exc)), _safe_str(exc), f"could not be pickled in the worker: {_describe_error(err)}")


def _dumps(exc: BaseException, cache: dict[int, _TbData], *, safe: bool) -> bytes:
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
_Fallback = tuple[str, str, "_TbData | None", "list[str] | None", Any, Any, bool]


def _fallback(exc: BaseException, cache: dict[int, _TbData], depth: int = 0) -> _Fallback:
    """Plain-data summary of exc and its chain, for when nothing else can be rebuilt."""
    tb = exc.__traceback__
    tb_data = None
    if tb is not None:
        tb_data = cache.get(id(tb)) or _tb_data(tb)
    notes = getattr(exc, "__notes__", None)
    plain_notes = [str(n) for n in notes] if isinstance(notes, list) else None
    cause = context = None
    if depth < _MAX_CHAIN:
        if exc.__cause__ is not None:
            cause = _fallback(exc.__cause__, cache, depth + 1)
        if exc.__context__ is not None and exc.__context__ is not exc.__cause__:
            context = _fallback(exc.__context__, cache, depth + 1)
    return (_type_name(type(exc)), _safe_str(exc), tb_data, plain_notes, cause, context, exc.__suppress_context__)


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
        >>> from futurekit._remote import capture, rebuild
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
    cache: dict[int, _TbData] = {}
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
        reason = _describe_error(err)
    try:
        fallback: Any = _fallback(exc, cache)
    except BaseException:
        fallback = None
    try:
        return pickle.dumps((_FORMAT, os.getpid(), primary, fallback, reason), _PROTOCOL)
    except BaseException:  # pragma: no cover - only plain data is left
        return pickle.dumps((_FORMAT, os.getpid(), None, None, reason), _PROTOCOL)


def _from_fallback(node: _Fallback, reason: str) -> RemoteError:
    """RemoteError (and chained RemoteErrors) from plain data."""
    type_name, message, tb_data, notes, cause, context, suppress = node
    err = RemoteError(type_name, message, reason=reason)
    if notes is not None:
        err.__notes__ = list(notes)
    if tb_data is not None:
        if tb_data[1]:
            err.add_note(_omitted_note(tb_data[1]))
        err.__traceback__ = _build_traceback(tb_data)
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
        >>> from futurekit._remote import capture, rebuild
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
        return RemoteError("<unknown>", "", reason=f"undecodable remote exception data: {_describe_error(err)}")
    exc: BaseException | None = None
    if primary is not None:
        try:
            exc = pickle.loads(primary)
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            reason = f"could not be rebuilt in the caller: {_describe_error(err)}"
        else:
            if not isinstance(exc, BaseException):
                exc = None
                reason = "could not be rebuilt in the caller"
    elif reason:
        reason = f"could not be pickled in the worker: {reason}"
    if exc is None:
        try:
            exc = _from_fallback(fallback, reason) if fallback is not None else RemoteError("<unknown>", "", reason=reason)
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            exc = RemoteError("<unknown>", "", reason=f"{reason}; fallback failed: {_describe_error(err)}")
    try:
        if pid != os.getpid():
            exc.add_note(f"futurekit: raised in worker process {pid}")
    except Exception:
        pass
    return exc

