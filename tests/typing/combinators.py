"""Typing tests for the combinators: checked by mypy (tests/test_static.py), never executed.

Must-fail lines are pinned with ``# type: ignore[code]``; with
warn_unused_ignores on, a line that stops failing is itself an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import assert_type

import futurekit as fk

fi: Future[int] = Future()
fs: Future[str] = Future()
fb: Future[bytes] = Future()
ff: Future[float] = Future()
fl: Future[list[int]] = Future()
fn: Future[None] = Future()
fo: Future[object] = Future()
like: fk.FutureLike[int] = fi
ex = ThreadPoolExecutor()

# ----------------------------------------------------------------------------- constructors
assert_type(fk.completed(1), Future[int])
assert_type(fk.completed("a"), Future[str])
fk.failed(ValueError())
fk.failed(ValueError)  # type: ignore[arg-type]
fk.cancelled()

# ----------------------------------------------------------------------------- gather, 0..6, both forms
assert_type(fk.gather(), Future[tuple[()]])
assert_type(fk.gather(fi), Future[tuple[int]])
assert_type(fk.gather(fi, fs), Future[tuple[int, str]])
assert_type(fk.gather(fi, fs, fb), Future[tuple[int, str, bytes]])
assert_type(fk.gather(fi, fs, fb, ff), Future[tuple[int, str, bytes, float]])
assert_type(fk.gather(fi, fs, fb, ff, fl), Future[tuple[int, str, bytes, float, list[int]]])
assert_type(fk.gather(fi, fs, fb, ff, fl, fn), Future[tuple[int, str, bytes, float, list[int], None]])
assert_type(fk.gather(like, fs), Future[tuple[int, str]])
assert_type(fk.gather(fi, return_exceptions=False), Future[tuple[int]])

assert_type(fk.gather(return_exceptions=True), Future[tuple[()]])
assert_type(fk.gather(fi, return_exceptions=True), Future[tuple[int | BaseException]])
assert_type(fk.gather(fi, fs, return_exceptions=True), Future[tuple[int | BaseException, str | BaseException]])
assert_type(
    fk.gather(fi, fs, fb, return_exceptions=True),
    Future[tuple[int | BaseException, str | BaseException, bytes | BaseException]],
)
assert_type(
    fk.gather(fi, fs, fb, ff, return_exceptions=True),
    Future[tuple[int | BaseException, str | BaseException, bytes | BaseException, float | BaseException]],
)
assert_type(
    fk.gather(fi, fs, fb, ff, fl, return_exceptions=True),
    Future[
        tuple[
            int | BaseException,
            str | BaseException,
            bytes | BaseException,
            float | BaseException,
            list[int] | BaseException,
        ]
    ],
)
assert_type(
    fk.gather(fi, fs, fb, ff, fl, fn, return_exceptions=True),
    Future[
        tuple[
            int | BaseException,
            str | BaseException,
            bytes | BaseException,
            float | BaseException,
            list[int] | BaseException,
            BaseException | None,
        ]
    ],
)

# Homogeneous fallback: seven or more, or a starred list.
assert_type(fk.gather(fi, fi, fi, fi, fi, fi, fi), Future[tuple[int, ...]])
assert_type(fk.gather(fi, fi, fi, fi, fi, fi, fi, return_exceptions=True), Future[tuple[int | BaseException, ...]])
many: list[Future[int]] = []
assert_type(fk.gather(*many), Future[tuple[int, ...]])
assert_type(fk.gather(*many, return_exceptions=True), Future[tuple[int | BaseException, ...]])

fk.gather(fi, 3)  # type: ignore[call-overload]
fk.gather(fi, return_exceptions="yes")  # type: ignore[call-overload]
t2: Future[tuple[int, int]] = fk.gather(fi, fs)  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- gather_all
assert_type(fk.gather_all(many), Future[list[int]])
assert_type(fk.gather_all(iter(many)), Future[list[int]])
assert_type(fk.gather_all(many, return_exceptions=True), Future[list[int | BaseException]])
assert_type(fk.gather_all(many, return_exceptions=False), Future[list[int]])
fk.gather_all(fi)  # type: ignore[call-overload]
fk.gather_all([1, 2])  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- race / first_success
assert_type(fk.race(fi), Future[int])
assert_type(fk.race(fi, fs), Future[int | str])
assert_type(fk.race(fi, fs, fb), Future[int | str | bytes])
assert_type(fk.race(fi, fs, fb, ff), Future[int | str | bytes | float])
assert_type(fk.race(fi, fs, fb, ff, fl), Future[int | str | bytes | float | list[int]])
assert_type(fk.race(fi, fs, fb, ff, fl, fn), Future[int | str | bytes | float | list[int] | None])
assert_type(fk.race(fi, fi, fi, fi, fi, fi, fi), Future[int])
assert_type(fk.race(*many), Future[int])
assert_type(fk.first_success(fi), Future[int])
assert_type(fk.first_success(fi, fs), Future[int | str])
assert_type(fk.first_success(fi, fs, fb, ff, fl, fn), Future[int | str | bytes | float | list[int] | None])
assert_type(fk.first_success(*many), Future[int])
fk.race()  # type: ignore[call-overload]
fk.first_success()  # type: ignore[call-overload]
fk.race(fi, "x")  # type: ignore[call-overload]
narrow: Future[int] = fk.race(fi, fs)  # type: ignore[arg-type]

# ----------------------------------------------------------------------------- then / chain / recover


def to_str(x: int) -> str:
    return str(x)


def to_future(x: int) -> Future[str]:
    return fk.completed(str(x))


def handle_key(e: KeyError) -> int:
    return 0


def handle_any(e: BaseException) -> bytes:
    return b""


assert_type(fk.then(fi, to_str), Future[str])
assert_type(fk.then(fi, lambda x: x * 2.0), Future[float])
assert_type(fk.then(like, to_str, executor=ex), Future[str])
assert_type(fk.then(fi, to_future), Future[Future[str]])  # then never flattens
fk.then(fs, to_str)  # type: ignore[arg-type]
fk.then(fi, to_str, executor=3)  # type: ignore[arg-type]
fk.then(fi, 3)  # type: ignore[arg-type]

assert_type(fk.chain(fi, to_future), Future[str])
assert_type(fk.chain(fi, lambda x: fk.completed([x])), Future[list[int]])
assert_type(fk.chain(fi, to_future, executor=ex), Future[str])
fk.chain(fi, to_str)  # type: ignore[arg-type]

assert_type(fk.recover(fi, lambda e: "fallback"), Future[int | str])
assert_type(fk.recover(fi, handle_key, KeyError), Future[int])
assert_type(fk.recover(fs, handle_key, KeyError), Future[str | int])
assert_type(fk.recover(fi, handle_any, KeyError, ValueError), Future[int | bytes])
assert_type(fk.recover(fi, handle_any, executor=ex), Future[int | bytes])
fk.recover(fi, handle_key)  # type: ignore[arg-type]
fk.recover(fi, handle_key, ValueError)  # type: ignore[arg-type]
fk.recover(fi, handle_any, int)  # type: ignore[type-var, arg-type]

# ----------------------------------------------------------------------------- timeout / as_completed
assert_type(fk.timeout(fi, 1.5), Future[int])
assert_type(fk.timeout(like, 2), Future[int])
fk.timeout(fi, "1")  # type: ignore[arg-type]

assert_type(fk.as_completed(many), Iterator[fk.FutureLike[int]])
assert_type(fk.as_completed([fi, fi], timeout=1.0), Iterator[fk.FutureLike[int]])
for done in fk.as_completed(many, timeout=None):
    assert_type(done.result(), int)
mixed: list[fk.FutureLike[object]] = [fi, fs]
assert_type(fk.as_completed(mixed), Iterator[fk.FutureLike[object]])
fk.as_completed(fi)  # type: ignore[arg-type]
fk.as_completed(many, timeout="1")  # type: ignore[arg-type]
assert_type(fk.as_completed(many, progress=True), Iterator[fk.FutureLike[int]])
assert_type(fk.as_completed(many, 1.0, progress=lambda done, total: None), Iterator[fk.FutureLike[int]])
fk.as_completed(many, progress=1)  # type: ignore[arg-type]
fk.as_completed(many, None, True)  # type: ignore[call-arg]

# Outputs compose: a combinator's output is an input.
assert_type(fk.then(fk.gather(fi, fs), lambda t: t[1] + str(t[0])), Future[str])
assert_type(fk.race(fk.timeout(fi, 1), fk.recover(fs, lambda e: str(e), KeyError)), Future[int | str])
