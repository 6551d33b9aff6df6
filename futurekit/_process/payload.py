"""What crosses the process boundary besides exceptions: calls going out, values coming back.

Parent side: :func:`dump_call` pickles ``(fn, args, kwargs)`` in ``submit``'s
own thread (so a failure is raised there, at once, as
:class:`~futurekit.SerializationError`), and :func:`decode_value` /
:func:`decode_chunk` unpickle what a worker sent back. Child side:
:func:`dump_result` pickles a value (or captures the error naming the
function and the type), and :func:`payload_error` says why a call could not
be unpickled. The runners that use them are in :mod:`futurekit._process.worker`;
exceptions cross through :mod:`futurekit._process.exceptions`.
"""

from __future__ import annotations

import itertools
import os
import pickle
import reprlib
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, cast

from .._errors import SerializationError
from .exceptions import capture, rebuild
from .names import callable_name as _callable_name
from .names import describe_error as _describe_error
from .names import type_name as _type_name
from .wire import PROTOCOL as _PROTOCOL

__all__ = [
    "Encoded",
    "decode_chunk",
    "decode_value",
    "describe_call",
    "dump_call",
    "dump_result",
    "encode_call",
    "encode_chunk",
]

#: Turns what a worker sent back for a task into its value; the callable names the task for errors.
Decoder = Callable[[bytes, Callable[[], str]], Any]
#: A task ready to send: its payload, how to decode a successful outcome, and how to name it.
Encoded = tuple[bytes, Decoder, Callable[[], str]]

_THREADS_HINT: Final = "or use fk.threads() to run it in this process"


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
        >>> from futurekit._process.payload import describe_call
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


def main_importable() -> bool:
    """Whether spawn/forkserver workers can import this program's ``__main__`` (a script file, or ``-m module``).

    Not for ``python -c``, a script read from stdin, the REPL, or an IPython
    or Jupyter kernel: there, what ``__main__`` defines is sent by value.
    """
    global _main_checked
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return True
    path = getattr(main, "__file__", None)
    checked = _main_checked
    if checked is not None and checked[0] is main and checked[1] == path:
        return checked[2]  # a stat per submit of a __main__ function would cost ~2 us
    importable = isinstance(path, str) and os.path.isfile(path)
    _main_checked = (main, path, importable)
    return importable


#: The last answer of :func:`main_importable`: for this ``__main__`` module object and ``__file__``.
_main_checked: tuple[object, object, bool] | None = None


def _dumps_by_value(obj: object) -> bytes:
    """Pickle with cloudpickle: lambdas, closures and what ``__main__`` defines travel by value."""
    import cloudpickle  # imported on first use: the fast path never needs it

    return cloudpickle.dumps(obj, _PROTOCOL)


class Deferred:
    """A value handed to a starting worker in its ``Process`` arguments, unpickled only when the worker asks.

    The pool's ``initializer`` and ``initargs`` travel this way, so that what
    they name from ``__main__`` is looked up after the worker imported the
    parent's main module (:func:`futurekit._process.mainmodule.import_main`),
    not while ``multiprocessing`` unpickles the arguments. They are pickled
    while the process is being started, so ``multiprocessing`` objects that
    only pickle then (a ``Queue``, a ``Lock``, an ``Event``) can be among
    them; by value with cloudpickle when the workers cannot import ``__main__``
    (see :func:`main_importable`), when they hold a function that has no
    importable name (a lambda, a closure), or when plain pickle refuses them.
    Under "fork" nothing is pickled: :meth:`load` returns the inherited value.
    """

    __slots__ = ("_data", "_value")

    def __init__(self, value: object) -> None:
        self._value = value
        self._data: bytes | None = None

    def __reduce__(self) -> tuple[Callable[[bytes], Deferred], tuple[bytes]]:
        return _deferred, (_dumps_while_spawning(self._value),)

    def load(self) -> Any:
        """The value (unpickled here, in the worker, if it was sent)."""
        return self._value if self._data is None else pickle.loads(self._data)


def _deferred(data: bytes) -> Deferred:
    deferred = Deferred(None)
    deferred._data = data  # pyright: ignore[reportPrivateUsage] - its own module's constructor
    return deferred


def _dumps_while_spawning(value: object) -> bytes:
    """Pickle ``value`` as ``multiprocessing`` pickles a starting process's arguments (its reducers apply)."""
    from io import BytesIO
    from multiprocessing.reduction import ForkingPickler

    spawning = ForkingPickler(BytesIO()).dispatch_table  # copyreg's table plus multiprocessing's own reducers
    # Decide before pickling: pickling a Connection registers its descriptor with the starting process, and
    # registering it twice (a second try) makes spawn refuse to start ("bad value(s) in fds_to_keep").
    if main_importable() and not any(_by_value_only(part) for part in _flatten(value)):
        buffer = BytesIO()
        pickler = pickle.Pickler(buffer, _PROTOCOL)
        pickler.dispatch_table = spawning
        try:
            pickler.dump(value)
        except Exception:
            pass  # something else plain pickle refuses: by value below (the rare case that may register twice)
        else:
            return buffer.getvalue()
    import cloudpickle

    class SpawningCloudPickler(cloudpickle.Pickler):
        # A class attribute: the C pickler reads its dispatch table once, in __init__. cloudpickle's own first.
        dispatch_table = types.MappingProxyType({**spawning, **cloudpickle.Pickler.dispatch_table})

    buffer = BytesIO()
    SpawningCloudPickler(buffer, _PROTOCOL).dump(value)
    return buffer.getvalue()


def _flatten(value: object) -> Iterator[object]:
    """``value`` and, if it is a tuple, what it holds (recursively)."""
    yield value
    if isinstance(value, tuple):
        for item in cast("tuple[object, ...]", value):
            yield from _flatten(item)


def _by_value_only(obj: object) -> bool:
    """Whether ``obj`` is a function that cannot be pickled by reference (a lambda, a closure, a nested function)."""
    if not isinstance(obj, types.FunctionType):
        return False
    try:
        pickle.dumps(obj, _PROTOCOL)  # by reference: a name lookup, no side effects
    except Exception:
        return True
    return False


def _unsendable(obj: object) -> BaseException | None:
    """The error that stops ``obj`` from being sent by value, or None if it can be."""
    try:
        _dumps_by_value(obj)
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        return err
    return None


def _parts(obj: object) -> Iterator[tuple[str, object]]:
    """What ``obj`` holds, labelled as a path step: items of containers, attributes of instances."""
    if isinstance(obj, dict):
        items: Iterable[tuple[object, object]] = itertools.islice(cast("dict[object, object]", obj).items(), 100)
        for key, value in items:
            yield f"[{_short_repr(key)}]", value
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, value in enumerate(itertools.islice(cast("Iterable[object]", obj), 100)):
            yield f"[{i}]", value
    elif isinstance(obj, types.FunctionType):  # sent by value: what it captures travels with it
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or (), strict=False):
            try:
                yield f"<captured {name}>", cell.cell_contents
            except ValueError:  # an empty cell
                continue
        for name in obj.__code__.co_names:
            if name in obj.__globals__:
                yield f"<global {name}>", obj.__globals__[name]
        for i, value in enumerate(obj.__defaults__ or ()):
            yield f"<default {i}>", value
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for key, value in itertools.islice(cast("dict[str, object]", state).items(), 100):
                yield f".{key}", value


def _offending_path(obj: object, depth: int = 0) -> str:
    """``" -> .conn -> socket"``: the way from ``obj`` to the innermost part that cannot be sent."""
    if depth < 8:
        for step, part in _parts(obj):
            if part is not obj and _unsendable(part) is not None:
                return f" -> {step}{_offending_path(part, depth + 1)}"
    return f" -> {_type_name(type(obj))}" if depth else ""


def _first_unpicklable(fn: object, args: Iterable[tuple[str, object]]) -> tuple[str, object, BaseException] | None:
    """Find which of fn / the arguments cannot be sent, even by value (slow path only)."""
    for label, obj in itertools.chain((("function", fn),), args):
        err = _unsendable(obj)
        if err is not None:
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
        subject = f"function {name}" + ("" if obj is None else _offending_path(obj))
    else:
        path = "" if obj is None else _offending_path(obj)
        subject = f"{label}{path} of {name}" + ("" if obj is None else f" (type {_type_name(type(obj))})")
    if label == "function":
        hint = (
            "a function that cannot be found by name is sent by value, with what it captures: "
            f"let it capture no locks, sockets, open files or generators, {_THREADS_HINT}"
        )
    else:
        hint = f"pass picklable data instead (not locks, sockets, open files or generators), {_THREADS_HINT}"
    exc = SerializationError(f"cannot send {subject} to a worker process: {reason}; {hint}")
    exc.__cause__ = cause
    return exc


def dump_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, main_by_value: bool | None = None
) -> bytes:
    """Pickle a call for :func:`futurekit._process.worker.run_call` in a worker process.

    By reference with plain pickle when it can (the fast path: functions and
    classes the workers import by name); by value with cloudpickle otherwise:
    lambdas, closures, nested functions, and what ``__main__`` defines when
    the workers cannot import ``__main__`` (``python -c``, stdin, the REPL, a
    notebook; see :func:`main_importable`). Runs in the submitting thread, so
    a call that cannot be sent either way fails ``submit`` at once with a
    message that names the offending part, instead of failing later in a
    pool's feeder thread (where the stdlib loses a ``BaseException`` raised by
    a ``__reduce__`` and the future never settles).

    Args:
        fn: The function.
        args: Positional arguments.
        kwargs: Keyword arguments.
        main_by_value: Send what ``__main__`` defines by value: True for pools
            whose workers never import ``__main__`` (foreign pools such as
            loky); None decides by :func:`main_importable`.

    Returns:
        The payload.

    Raises:
        SerializationError: ``fn`` or an argument cannot be pickled (any
            exception, even a ``BaseException`` such as ``SystemExit`` raised
            by a ``__reduce__``, other than ``KeyboardInterrupt``). The
            original error is chained as ``__cause__``.

    Example:
        >>> import pickle
        >>> from futurekit._process.payload import dump_call
        >>> pickle.loads(dump_call(divmod, (7, 2), {}))
        (<built-in function divmod>, (7, 2), {})
        >>> fn, args, kwargs = pickle.loads(dump_call(lambda x: x + 1, (1,), {}))  # by value
        >>> fn(*args)
        2
        >>> import threading
        >>> dump_call(print, (threading.Lock(),), {})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        futurekit.SerializationError: cannot send argument 0 of print (type _thread.lock) to a worker process: ...

    Concurrency:
        Blocking: Never blocks (runs the arguments' pickling hooks).
        Callbacks: None.
        Thread safety: Safe from any thread.
        Cancellation: Not applicable.
    """
    call = (fn, args, kwargs)
    try:
        data = pickle.dumps(call, _PROTOCOL)
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass  # a lambda, a closure...: by value below
    else:
        if b"__main__" not in data:  # names nothing of __main__ (a false hit only costs the slow path)
            return data
        if not ((not main_importable()) if main_by_value is None else main_by_value):
            return data  # the workers import __main__ (a script file, or -m): by reference is right
    try:
        return _dumps_by_value(call)
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


# --------------------------------------------------------------------------- the child side


def unpicklable_result_error(fn: object, result: object, err: BaseException | None = None) -> SerializationError:
    """The error for a result of ``fn`` that cannot be pickled, naming the function and the type."""
    detail = f": {_describe_error(err)}" if err is not None else ""
    exc = SerializationError(
        f"result of {_callable_name(fn)} (type {_type_name(type(result))}) cannot be pickled{detail}; "
        f"return picklable data instead, {_THREADS_HINT}"
    )
    exc.__cause__ = err
    return exc


def dump_result(fn: object, result: object) -> tuple[bool, bytes]:
    """Pickle a result (by value if it must: a lambda, say), or capture a SerializationError naming fn and type."""
    try:
        return True, pickle.dumps(result, _PROTOCOL)
    except BaseException:
        pass
    try:
        return True, _dumps_by_value(result)
    except BaseException as err:
        return False, capture(unpicklable_result_error(fn, result, err))


def guess_name(payload: bytes) -> str:
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


def payload_error(name: str, err: BaseException) -> bytes:
    """Capture a SerializationError for a payload the worker could not unpickle."""
    hint = "the function and the classes of its arguments must be importable by name in the worker"
    if name.startswith(("__main__.", "__mp_main__.")) or "__main__" in _describe_error(err):
        hint = (
            "the worker imports the main script to find what it defines, without running the code under "
            "`if __name__ == '__main__':`: define the function at the top level of the script, outside that "
            "block, or in a module"
        )
    exc = SerializationError(f"the worker could not unpickle the call to {name}: {_describe_error(err)}; {hint}")
    exc.__cause__ = err
    return capture(exc)


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
        >>> from futurekit._process.payload import load_result
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


def decode_value(data: bytes, describe: Callable[[], str]) -> Any:
    """Decode a single call's pickled return value (SerializationError naming the task if it fails)."""
    try:
        return pickle.loads(data)
    except BaseException:
        return load_result(data, describe())


def decode_chunk(
    data: bytes, describe: Callable[[], str], sent: int = 0
) -> tuple[list[Any], BaseException | None, float, int]:
    """Decode a map() chunk's result into ``(values, error or None, seconds, bytes)``, rebuilding the error.

    ``bytes`` is ``sent`` (the size of the chunk's pickled items) plus the size of ``data``.
    """
    try:
        values, captured, seconds = pickle.loads(data)
    except BaseException:
        values, captured, seconds = load_result(data, describe())
    return values, (None if captured is None else rebuild(captured)), seconds, sent + len(data)


def encode_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], main_by_value: bool | None = None
) -> Encoded:
    """One call, pickled here (SerializationError at once), with its decoder and its description."""
    data = dump_call(fn, args, kwargs, main_by_value=main_by_value)
    return data, decode_value, lambda: describe_call(fn, args, kwargs)


def describe_chunk(fn: Callable[..., Any], chunk: list[Any]) -> str:
    """Name a ``map`` chunk in an error message by its first item, e.g. ``"mod.f(1) and 99 more items..."``."""
    from .chunks import Star

    if isinstance(fn, Star):
        text = describe_call(fn.fn, chunk[0] if chunk else (), {})
    else:
        text = describe_call(fn, (chunk[0],) if chunk else (), {})
    if len(chunk) > 1:
        text += f" and {len(chunk) - 1} more items of one map() chunk"
    return text


def encode_chunk(fn: Callable[..., Any], chunk: list[Any], main_by_value: bool | None = None) -> Encoded:
    """One ``map`` chunk (``fn`` over ``chunk``), pickled here, with its decoder and its description."""
    data = dump_call(fn, tuple(chunk), {}, main_by_value=main_by_value)
    sent = len(data)
    return data, lambda body, describe: decode_chunk(body, describe, sent), lambda: describe_chunk(fn, chunk)
