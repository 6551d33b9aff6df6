"""The process boundary codec (futurekit._process: payload, exceptions, frames): calls out, results and exceptions back.

In-process unit tests first (fast), then the same guarantees through a real
ProcessPoolExecutor (forkserver where available, else spawn; one pool for the
module), calling run_call/capture/rebuild directly, as the executor does.
"""

from __future__ import annotations

import copyreg
import functools
import gc
import multiprocessing
import os
import pickle
import re
import socket
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import pytest
import remote_helpers as h

from futurekit import RemoteError, SerializationError, WorkerCrashedError
from futurekit._process.exceptions import capture, rebuild
from futurekit._process.frames import KEEP_HEAD, KEEP_TAIL
from futurekit._process.payload import describe_call, dump_call, load_result
from futurekit._process.worker import run_call

HELPERS = Path(h.__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """1-based line number of the helper source line containing marker."""
    return next(i for i, text in enumerate(HELPERS, 1) if marker in text)


def raised(fn: Callable[[], object]) -> BaseException:
    """Call fn, return what it raised."""
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def roundtrip(exc: BaseException) -> BaseException:
    """capture + rebuild in this process."""
    return rebuild(capture(exc))


def tb_names(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


def without_pid_note(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if "futurekit: raised in worker process" not in line)


# --------------------------------------------------------------------------- in-process: exceptions


def test_roundtrip_keeps_type_args_and_frames() -> None:
    exc = raised(lambda: h.fail_nested("x"))
    back = roundtrip(exc)
    assert type(back) is ValueError
    assert back.args == exc.args
    original = traceback.extract_tb(exc.__traceback__)
    rebuilt = traceback.extract_tb(back.__traceback__)
    assert [(f.filename, f.name, f.lineno) for f in rebuilt] == [(f.filename, f.name, f.lineno) for f in original]
    assert rebuilt[-1].name == "level_three"
    assert rebuilt[-1].lineno == line_of("# LINE: level_three")
    assert rebuilt[-1].filename == h.__file__


def test_rendering_is_identical_including_column_markers() -> None:
    for fn in (lambda: h.fail_nested("x"), h.fail_chained, h.fail_group, h.fail_two_arg, h.fail_context_suppressed):
        exc = raised(fn)
        assert "".join(traceback.format_exception(roundtrip(exc))) == "".join(traceback.format_exception(exc))


def test_positions_are_carried_exactly() -> None:
    exc = raised(lambda: h.fail_nested("x"))
    back = roundtrip(exc)
    for a, b in zip(traceback.extract_tb(exc.__traceback__), traceback.extract_tb(back.__traceback__), strict=True):
        assert (a.lineno, a.end_lineno, a.colno, a.end_colno) == (b.lineno, b.end_lineno, b.colno, b.end_colno)
    # Multi-line positions too.
    src = "def multi():\n    return int(\n        'x'\n    )\n"
    namespace: dict[str, Any] = {}
    exec(compile(src, "<multi>", "exec"), namespace)
    exc = raised(namespace["multi"])
    last = traceback.extract_tb(roundtrip(exc).__traceback__)[-1]
    assert (last.lineno, last.end_lineno, last.colno, last.end_colno) == (2, 4, 11, 5)


def test_frames_without_column_information_draw_no_markers() -> None:
    data = capture(raised(lambda: h.fail_nested("x")))
    env, primary_etc = data, None
    del env, primary_etc
    exc = raised(lambda: h.fail_nested("x"))
    # Simulate a worker running with -X no_debug_ranges: strip the columns from the captured frames.
    from futurekit._process import frames

    tb_data = frames.tb_data(exc.__traceback__)
    stripped = (tuple((*f[:6], None, None, None) for f in tb_data[0]), tb_data[1])
    tb = frames.build_traceback(stripped)
    text = "".join(traceback.format_exception(ValueError("x").with_traceback(tb)))
    assert "^" not in text
    assert "~" not in text
    assert "return int(value)" in text  # the source line is still shown


def test_rebuilt_frames_reference_nothing_of_the_caller() -> None:
    back = roundtrip(raised(lambda: h.fail_nested("x")))
    tb = back.__traceback__
    count = 0
    while tb is not None:
        assert tb.tb_frame.f_back is None
        assert tb.tb_frame.f_locals == {}
        tb = tb.tb_next
        count += 1
    assert count == 5  # raised, <lambda>, fail_nested, level_two, level_three


def test_rebuilt_code_starts_where_the_remote_function_starts() -> None:
    """pytest and inspect show the whole function around a remote line, as for a local one."""
    back = roundtrip(raised(lambda: h.fail_nested("x")))
    tb = back.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    assert tb is not None
    assert tb.tb_frame.f_code.co_firstlineno == h.level_three.__code__.co_firstlineno
    assert tb.tb_frame.f_code.co_name == "level_three"
    assert tb.tb_frame.f_lineno == tb.tb_lineno == line_of("# LINE: level_three")
    assert tb.tb_frame.f_globals["__name__"] == "remote_helpers"


def test_rebuild_creates_no_reference_cycles() -> None:
    data = capture(raised(h.fail_chained))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        back = rebuild(data)
        assert back.__traceback__ is not None
        del back
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, (BaseException, types.TracebackType, types.FrameType))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert leaked == []


def test_chain_context_suppress_and_notes() -> None:
    back = roundtrip(raised(h.fail_chained))
    assert type(back) is KeyError
    assert back.__notes__ == ["first note", "second note"]
    assert type(back.__cause__) is ValueError
    assert tb_names(back.__cause__) == ["fail_chained"]
    context = back.__cause__.__context__
    assert type(context) is ZeroDivisionError
    assert tb_names(context) == ["fail_chained"]
    assert back.__context__ is back.__cause__  # raise ... from inner, while handling inner
    suppressed = roundtrip(raised(h.fail_context_suppressed))
    assert suppressed.__suppress_context__ is True
    assert type(suppressed.__context__) is KeyError


def test_exception_group_members_keep_their_tracebacks() -> None:
    back = roundtrip(raised(h.fail_group))
    assert type(back) is h.MyGroup
    assert isinstance(back, h.MyGroup)
    assert back.tag == "custom"
    assert back.message == "outer"
    first, inner = back.exceptions
    assert type(first) is ValueError
    assert first.args == ("member a",)
    assert tb_names(first) == ["fail_group", "_member_a"]
    assert type(inner) is ExceptionGroup
    (second,) = inner.exceptions
    assert type(second) is TypeError
    assert tb_names(second) == ["fail_group", "_member_b"]
    assert back.split(TypeError)[0] is not None  # still a working group


def test_group_member_that_cannot_cross_is_replaced_alone() -> None:
    back = roundtrip(raised(h.fail_group_with_bad_member))
    assert type(back) is ExceptionGroup
    good, bad = back.exceptions
    assert type(good) is ValueError
    assert tb_names(good) == ["fail_group_with_bad_member", "_member_a"]
    assert isinstance(bad, RemoteError)
    assert bad.type_name == "remote_helpers.LockedError"
    assert tb_names(bad) == ["fail_group_with_bad_member", "fail_locked"]


def test_base_exception_group() -> None:
    back = roundtrip(raised(h.fail_base_group))
    assert type(back) is BaseExceptionGroup
    assert [type(e) for e in back.exceptions] == [KeyboardInterrupt, ValueError]


def test_custom_init_with_required_args_is_rebuilt_as_itself() -> None:
    back = roundtrip(raised(h.fail_two_arg))
    assert type(back) is h.TwoArgError
    assert isinstance(back, h.TwoArgError)
    assert (back.code, back.detail, str(back)) == (7, "seven", "code 7: seven")
    assert tb_names(back) == ["raised", "fail_two_arg"]


def test_unpicklable_exception_becomes_remote_error_with_frames() -> None:
    back = roundtrip(raised(h.fail_locked))
    assert isinstance(back, RemoteError)
    assert back.type_name == "remote_helpers.LockedError"
    assert back.message == "locked out"
    assert "lock" in back.reason
    assert tb_names(back) == ["raised", "fail_locked"]


def test_broken_reduce_is_rebuilt_from_state() -> None:
    back = roundtrip(raised(h.fail_bad_reduce))
    assert type(back) is h.BadReduceError
    assert (back.args, back.a, back.b) == ((1, 2), 1, 2)
    assert tb_names(back) == ["raised", "fail_bad_reduce"]


def test_exception_that_cannot_be_rebuilt_becomes_remote_error() -> None:
    back = roundtrip(raised(h.fail_unrebuildable))
    assert isinstance(back, RemoteError)
    assert back.type_name == "remote_helpers.UnrebuildableError"
    assert back.message == "(1, 2)"
    assert "missing 1 required positional argument" in back.reason
    assert tb_names(back) == ["raised", "fail_unrebuildable"]


def test_only_the_bad_link_of_a_chain_is_replaced() -> None:
    def chained() -> NoReturn:
        try:
            h.fail_locked()
        except h.LockedError as err:
            raise KeyError("fine") from err

    back = roundtrip(raised(chained))
    assert type(back) is KeyError
    assert isinstance(back.__cause__, RemoteError)
    assert back.__cause__.type_name == "remote_helpers.LockedError"
    assert tb_names(back.__cause__)[-1] == "fail_locked"


def test_deep_traceback_is_truncated_and_says_so() -> None:
    exc = raised(h.fail_recursion)
    assert isinstance(exc, RecursionError)
    depth = len(traceback.extract_tb(exc.__traceback__))
    back = roundtrip(exc)
    assert type(back) is RecursionError
    frames = traceback.extract_tb(back.__traceback__)
    assert len(frames) == KEEP_HEAD + KEEP_TAIL
    assert frames[0].name == "raised"
    assert frames[-1].name == "recurse"
    omitted = depth - KEEP_HEAD - KEEP_TAIL
    assert omitted > 500
    assert any(f"futurekit: {omitted} remote frames omitted" in note for note in back.__notes__)
    assert f"{omitted} remote frames omitted" in "".join(traceback.format_exception(back))


def test_oserror_and_unicode_errors_keep_their_fields() -> None:
    err = raised(lambda: Path("/nonexistent/futurekit/file").read_bytes())
    back = roundtrip(err)
    assert type(back) is FileNotFoundError
    assert isinstance(err, FileNotFoundError)
    assert (back.errno, back.strerror, back.filename) == (err.errno, err.strerror, err.filename)
    uni = roundtrip(raised(lambda: b"\xff".decode("utf-8")))
    assert isinstance(uni, UnicodeDecodeError)
    assert (uni.encoding, uni.object, uni.start, uni.end) == ("utf-8", b"\xff", 0, 1)

    class LocalOSError(OSError):
        pass

    local = roundtrip(raised(lambda: (_ for _ in ()).throw(LocalOSError(2, "gone"))))
    assert isinstance(local, RemoteError)  # a local class cannot be pickled by reference
    assert local.type_name.endswith("LocalOSError")


def test_futurekit_errors_roundtrip() -> None:
    crash = roundtrip(WorkerCrashedError("worker died", task="f(1)", exitcode=-9))
    assert isinstance(crash, WorkerCrashedError)
    assert (crash.task, crash.exitcode) == ("f(1)", -9)
    remote = roundtrip(RemoteError("a.B", "msg", reason="why"))
    assert isinstance(remote, RemoteError)
    assert str(remote) == "a.B: msg (why)"


def test_never_raised_exception_has_no_traceback() -> None:
    back = roundtrip(ValueError("plain"))
    assert type(back) is ValueError
    assert back.__traceback__ is None


def test_traceback_stored_in_an_attribute_is_rebuilt() -> None:
    inner = raised(lambda: h.fail_nested("x"))
    outer = RuntimeError("holder")
    outer.saved_tb = inner.__traceback__  # type: ignore[attr-defined]
    back = roundtrip(outer)
    saved = back.saved_tb  # type: ignore[attr-defined]
    assert isinstance(saved, types.TracebackType)
    assert [f.name for f in traceback.extract_tb(saved)][-1] == "level_three"


def test_cyclic_chain_does_not_hang() -> None:
    a = ValueError("a")
    b = KeyError("b")
    a.__cause__ = b
    b.__cause__ = a
    back = roundtrip(a)
    assert type(back) is ValueError
    assert type(back.__cause__) is KeyError
    assert back.__cause__.__cause__ is back


def test_very_long_chain_falls_back_without_raising() -> None:
    exc: BaseException = ValueError("root")
    for i in range(3000):
        link = KeyError(i)
        link.__context__ = exc
        exc = link
    back = roundtrip(exc)
    if isinstance(back, RemoteError):  # the pickler ran out of stack (3.11, 3.12)
        assert back.type_name == "KeyError"
        assert "RecursionError" in back.reason
        assert isinstance(back.__context__, RemoteError)  # the start of the chain, as plain data
    else:  # 3.13's C recursion limit is higher: the whole chain crosses
        assert type(back) is KeyError
        assert back.args == (2999,)
        depth = 0
        link_back: BaseException | None = back
        while link_back is not None:
            depth += 1
            link_back = link_back.__context__
        assert depth == 3001


def test_self_referencing_exception() -> None:
    exc = ValueError("self")
    exc.me = exc  # type: ignore[attr-defined]
    back = roundtrip(exc)
    assert back.me is back  # type: ignore[attr-defined]


def test_capture_never_raises() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __reduce_ex__(self, protocol: Any) -> Any:
            raise SystemExit("no reduce")

    back = roundtrip(raised(lambda: (_ for _ in ()).throw(Hostile())))
    assert isinstance(back, RemoteError)
    assert back.type_name.endswith("Hostile")
    assert "str() failed" in back.message


def test_rebuild_never_raises() -> None:
    for data in (b"", b"garbage", pickle.dumps(("other-format", 1, None, None, "")), pickle.dumps(42)):
        back = rebuild(data)
        assert isinstance(back, RemoteError)
        assert back.type_name == "<unknown>"


def test_no_global_copyreg_change() -> None:
    before = dict(copyreg.dispatch_table)
    for fn in (h.fail_chained, h.fail_group, h.fail_two_arg, h.fail_locked, h.fail_unrebuildable, h.fail_recursion):
        roundtrip(raised(fn))
    assert dict(copyreg.dispatch_table) == before
    if "distributed" not in sys.modules:  # importing dask.distributed registers tblib's reducers itself
        assert types.TracebackType not in copyreg.dispatch_table


def test_capture_does_not_modify_the_exception() -> None:
    exc = raised(h.fail_chained)
    notes = list(exc.__notes__)
    tb = exc.__traceback__
    capture(exc)
    assert exc.__notes__ == notes
    assert exc.__traceback__ is tb


# --------------------------------------------------------------------------- in-process: calls


def test_describe_call() -> None:
    assert describe_call(h.add, (1, "abc"), {"key": 2}) == "executor_helpers.add(1, 'abc', key=2)"
    assert describe_call(functools.partial(h.add, 1), (2,), {}) == "executor_helpers.add(2)"
    text = describe_call(h.add, ("x" * 1000, list(range(1000))), {}, limit=50)
    assert len(text) == 50
    assert text.startswith("executor_helpers.add('xxx")
    assert text.endswith("...)")
    assert re.fullmatch(
        r"executor_helpers\.add\(<BadRepr instance at 0x[0-9a-f]+>\)", describe_call(h.add, (h.BadRepr(),))
    )
    assert describe_call(h.CallableObject(), (), {}) == "remote_helpers.CallableObject()"
    assert describe_call(print) == "print()"


def test_describe_call_stops_early_on_huge_argument_lists() -> None:
    h.CountingRepr.calls = 0
    text = describe_call(h.add, tuple(h.CountingRepr() for _ in range(10_000)), {}, limit=40)
    assert len(text) == 40
    assert h.CountingRepr.calls < 10


def test_dump_call_roundtrip() -> None:
    ok, data = run_call(dump_call(h.add, (1,), {"b": 2}))
    assert ok
    assert pickle.loads(data) == 3
    assert pickle.loads(dump_call(h.add, (1, 2), {})) == (h.add, (1, 2), {})


def test_dump_call_sends_lambdas_and_local_functions_by_value() -> None:
    base = 10

    def local(x: int) -> int:
        return x + base  # a closure

    cases: list[tuple[Callable[[int], int], int]] = [
        (lambda x: x + base, 12),
        (local, 12),
        (functools.partial(lambda x, y: x + y + base, 1), 13),
    ]
    for fn, expected in cases:
        ok, data = run_call(dump_call(fn, (2,), {}))
        assert ok
        assert pickle.loads(data) == expected


def test_dump_call_plain_calls_stay_by_reference() -> None:
    data = dump_call(h.add, (1, 2), {})
    assert b"cloudpickle" not in data
    assert pickle.loads(data) == (h.add, (1, 2), {})


def test_dump_call_unpicklable_argument() -> None:
    with pytest.raises(SerializationError) as info:
        dump_call(h.add, (1, threading.Lock()), {})
    message = str(info.value)
    assert "argument 1 of executor_helpers.add (type _thread.lock)" in message
    assert "fk.threads()" in message
    assert isinstance(info.value.__cause__, TypeError)
    ok, data = run_call(dump_call(h.add, (1,), {"b": lambda: 2}))  # a lambda argument travels by value
    assert not ok  # 1 + <function>: the call ran and raised TypeError in the worker
    assert type(rebuild(data)) is TypeError


def test_dump_call_names_the_path_to_the_unsendable_part() -> None:
    holder = h.Holder(conn=h.Holder(sock=socket.socket()))
    try:
        with pytest.raises(SerializationError, match=r"argument 0 -> \.conn -> \.sock -> socket\.socket of"):
            dump_call(h.identity, (holder,), {})
        with pytest.raises(SerializationError, match=r"keyword argument 'b' -> \[1\] -> _thread\.lock of"):
            dump_call(h.add, (1,), {"b": [1, threading.Lock()]})
    finally:
        getattr(holder, "conn").sock.close()


def test_dump_call_base_exception_in_reduce() -> None:
    with pytest.raises(SerializationError, match=r"argument 0 .*RaisesOnReduce.*SystemExit") as info:
        dump_call(h.add, (h.RaisesOnReduce(), 1), {})
    assert isinstance(info.value.__cause__, SystemExit)


def test_dump_call_lets_keyboard_interrupt_through() -> None:
    class Interrupting:
        def __reduce__(self) -> NoReturn:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dump_call(h.add, (Interrupting(),), {})


def test_run_call_unpicklable_result_names_fn_and_type() -> None:
    ok, data = run_call(dump_call(h.return_unpicklable, (), {}))
    assert not ok
    err = rebuild(data)
    assert isinstance(err, SerializationError)
    assert "result of remote_helpers.return_unpicklable (type remote_helpers.Unpicklable) cannot be pickled" in str(err)
    assert isinstance(err.__cause__, TypeError)


def test_run_call_hides_its_own_frame() -> None:
    ok, data = run_call(dump_call(h.fail_nested, ("x",), {}))
    assert not ok
    assert tb_names(rebuild(data)) == ["fail_nested", "level_two", "level_three"]


def test_concurrent_rebuilds_share_the_code_cache_safely() -> None:
    datas = [capture(raised(fn)) for fn in (h.fail_chained, h.fail_group, lambda: h.fail_nested("x"))]
    expected = ["".join(traceback.format_exception(rebuild(d))) for d in datas]
    barrier = threading.Barrier(4)
    results: list[list[str]] = []
    lock = threading.Lock()

    def work() -> None:
        assert barrier.wait(10) is not None
        mine = ["".join(traceback.format_exception(rebuild(d))) for _ in range(30) for d in datas]
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert len(results) == 4
    for mine in results:
        assert mine == expected * 30


def test_run_call_bad_payload_is_an_error_not_an_exception() -> None:
    ok, data = run_call(b"not a pickle")
    assert not ok
    err = rebuild(data)
    assert isinstance(err, SerializationError)
    assert "could not unpickle the call" in str(err)


def test_load_result() -> None:
    ok, data = run_call(dump_call(int, ("1",), {}))
    assert ok
    assert load_result(data) == 1
    with pytest.raises(SerializationError, match="cannot be unpickled in the caller"):
        load_result(b"garbage", "f(1)")


# --------------------------------------------------------------------------- through a real process pool


@pytest.fixture(scope="module")
def stdlib_process_pool() -> Iterator[ProcessPoolExecutor]:
    """A plain stdlib pool on purpose: the codec is tested on its own, without futurekit's executor."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(method)) as executor:
        yield executor


def remote(pool: ProcessPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run fn in the pool as the executor does; return (True, value) or (False, rebuilt exception)."""
    ok, data = pool.submit(run_call, dump_call(fn, args, kwargs)).result(timeout=60)
    return (True, load_result(data)) if ok else (False, rebuild(data))


def remote_error(pool: ProcessPoolExecutor, fn: Callable[..., Any], *args: Any) -> BaseException:
    ok, value = remote(pool, fn, *args)
    assert not ok
    assert isinstance(value, BaseException)
    return value


def test_pool_original_type_and_child_frames(stdlib_process_pool: ProcessPoolExecutor) -> None:
    child_pid = remote(stdlib_process_pool, h.pid)[1]
    assert child_pid != os.getpid()
    err = remote_error(stdlib_process_pool, h.fail_nested, "x")
    assert type(err) is ValueError
    frames = traceback.extract_tb(err.__traceback__)
    assert [f.name for f in frames] == ["fail_nested", "level_two", "level_three"]
    assert frames[-1].lineno == line_of("# LINE: level_three")
    assert frames[-1].filename == h.__file__
    assert err.__notes__ == [f"futurekit: raised in worker process {child_pid}"]
    with pytest.raises(ValueError, match="invalid literal") as info:
        raise err
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert names[0] == "test_pool_original_type_and_child_frames"  # the caller's frame, above the child's
    assert names[-3:] == ["fail_nested", "level_two", "level_three"]


@pytest.mark.parametrize("case", ["nested", "chained", "suppressed", "group", "two_arg", "recursion"])
def test_pool_rendering_matches_the_child(stdlib_process_pool: ProcessPoolExecutor, case: str) -> None:
    child_text, data = stdlib_process_pool.submit(h.render_and_capture, case).result(timeout=60)
    text = without_pid_note("".join(traceback.format_exception(rebuild(data))))
    if case == "recursion":
        # The middle is omitted (and a note says so); the rest renders identically.
        assert "remote frames omitted" in text
        text = "".join(line for line in text.splitlines(True) if "remote frames omitted" not in line)
        assert text.splitlines()[-1] == child_text.splitlines()[-1]
        assert "[Previous line repeated" in text
    else:
        assert text == child_text


def test_pool_chain_notes_and_groups(stdlib_process_pool: ProcessPoolExecutor) -> None:
    err = remote_error(stdlib_process_pool, h.fail_chained)
    assert type(err) is KeyError
    assert err.__notes__[:2] == ["first note", "second note"]
    assert type(err.__cause__) is ValueError
    assert type(err.__cause__.__context__) is ZeroDivisionError
    group = remote_error(stdlib_process_pool, h.fail_group)
    assert type(group) is h.MyGroup
    assert group.tag == "custom"
    assert [type(e) for e in group.exceptions] == [ValueError, ExceptionGroup]
    assert tb_names(group.exceptions[0]) == ["fail_group", "_member_a"]


def test_pool_unpicklable_and_unrebuildable_exceptions(stdlib_process_pool: ProcessPoolExecutor) -> None:
    locked = remote_error(stdlib_process_pool, h.fail_locked)
    assert isinstance(locked, RemoteError)
    assert locked.type_name == "remote_helpers.LockedError"
    assert locked.message == "locked out"
    assert tb_names(locked) == ["fail_locked"]
    two = remote_error(stdlib_process_pool, h.fail_two_arg)
    assert type(two) is h.TwoArgError
    assert (two.code, two.detail) == (7, "seven")
    bad = remote_error(stdlib_process_pool, h.fail_bad_reduce)
    assert type(bad) is h.BadReduceError
    assert (bad.a, bad.b) == (1, 2)
    hopeless = remote_error(stdlib_process_pool, h.fail_unrebuildable)
    assert isinstance(hopeless, RemoteError)
    assert hopeless.type_name == "remote_helpers.UnrebuildableError"
    assert tb_names(hopeless) == ["fail_unrebuildable"]
    picky = remote_error(stdlib_process_pool, h.fail_parent_only)
    assert isinstance(picky, RemoteError)
    assert picky.type_name == "remote_helpers.ParentOnlyFailsError"
    assert "could not be rebuilt in the caller" in picky.reason
    assert tb_names(picky) == ["fail_parent_only"]
    assert remote(stdlib_process_pool, h.add, 2, 3) == (True, 5)  # the pool is unharmed


def test_pool_unpicklable_result(stdlib_process_pool: ProcessPoolExecutor) -> None:
    err = remote_error(stdlib_process_pool, h.return_unpicklable)
    assert isinstance(err, SerializationError)
    assert f"result of {h.__name__}.return_unpicklable (type remote_helpers.Unpicklable) cannot be pickled" in str(err)
    ok, value = remote(stdlib_process_pool, h.return_lambda)  # a lambda result travels by value
    assert ok
    assert value() == 1
    assert remote(stdlib_process_pool, h.add, 1, 1) == (True, 2)


def test_pool_argument_that_fails_to_unpickle_in_the_worker(stdlib_process_pool: ProcessPoolExecutor) -> None:
    arg = h.ParentOnlyFailsError("only here", os.getpid())
    err = remote_error(stdlib_process_pool, h.add, arg, 1)
    assert isinstance(err, SerializationError)
    assert "could not unpickle the call to executor_helpers.add" in str(err)
    assert remote(stdlib_process_pool, h.add, 1, 2) == (True, 3)


def test_pool_base_exceptions_in_the_worker(stdlib_process_pool: ProcessPoolExecutor) -> None:
    err = remote_error(stdlib_process_pool, h.fail_system_exit)
    assert type(err) is SystemExit
    assert err.code == 5
    assert remote(stdlib_process_pool, h.add, 1, 2) == (True, 3)


def test_pool_recursion_error(stdlib_process_pool: ProcessPoolExecutor) -> None:
    err = remote_error(stdlib_process_pool, h.fail_recursion)
    assert type(err) is RecursionError
    assert len(traceback.extract_tb(err.__traceback__)) == KEEP_HEAD + KEEP_TAIL
    assert any("remote frames omitted" in note for note in err.__notes__)


def test_module_import_is_light() -> None:
    code = (
        "import sys, futurekit._process.exceptions, futurekit._process.payload; "
        "print('tblib' in sys.modules, 'pickletools' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]
