"""FutureLike, the structural type every combinator accepts, and shared type variables."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class FutureLike(Protocol[T_co]):
    """Anything that behaves like a :class:`concurrent.futures.Future`.

    Every ``concurrent.futures.Future`` satisfies this protocol, whichever
    executor made it (threads, processes, loky, a cluster's executor), and so
    does any object with the same six methods. Combinators accept
    ``FutureLike[T]`` and return a concrete ``concurrent.futures.Future``.
    The protocol is covariant, so ``race(f_int, f_str)`` type-checks as
    ``Future[int | str]``.

    Example:
        >>> from concurrent.futures import Future
        >>> import futurekit as fk
        >>> isinstance(Future(), fk.FutureLike)
        True

    Concurrency:
        Blocking: ``result`` and ``exception`` block until the future settles
            (or ``timeout`` seconds pass); every other method returns at once.
        Callbacks: ``add_done_callback`` runs ``fn`` in the thread that settles
            the future, or at once in the calling thread if it is already done.
        Thread safety: Implementations are expected to be thread-safe, as
            ``concurrent.futures.Future`` is.
        Cancellation: ``cancel`` returns True if the future is (now) cancelled;
            a running or finished future may refuse.
    """

    def result(self, timeout: float | None = None) -> T_co: ...

    def exception(self, timeout: float | None = None) -> BaseException | None: ...

    def done(self) -> bool: ...

    def cancelled(self) -> bool: ...

    def cancel(self) -> bool: ...

    def add_done_callback(self, fn: Callable[[FutureLike[T_co]], object], /) -> None: ...


def is_future_like(obj: object) -> bool:
    """Fast structural check: a real Future, or an object with the protocol's methods."""
    if isinstance(obj, Future):
        return True
    return all(
        callable(getattr(obj, name, None))
        for name in ("result", "exception", "done", "cancelled", "cancel", "add_done_callback")
    )


AnyFuture = FutureLike[Any]
