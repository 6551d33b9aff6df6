"""Worker logs in the parent: records logged in fk.processes() workers reach the parent's loggers of the same name."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path

import executor_helpers as h
import log_helpers as lh
import pytest
from executor_helpers import PROCESS_KINDS, TIMEOUT, Kit, on_processes

import futurekit as fk
from futurekit._process import exceptions, logs

#: Every logger of these tests is under this name.
NAME = "fk.test"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put back the level, handlers and propagation of the root logger and of every ``fk.test`` logger."""

    def loggers() -> list[logging.Logger]:
        named = [
            lg
            for name, lg in dict(logging.root.manager.loggerDict).items()
            if isinstance(lg, logging.Logger) and (name == NAME or name.startswith(NAME + "."))
        ]
        return [logging.root, *named]

    saved = {lg: (lg.level, list(lg.handlers), lg.propagate) for lg in loggers()}
    yield
    for lg in loggers():
        level, handlers, propagate = saved.get(lg, (logging.NOTSET, [], True))
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def attach(name: str, level: int = logging.DEBUG) -> lh.Records:
    """A :class:`log_helpers.Records` on the logger ``name``, set to ``level``."""
    records = lh.Records()
    logger = logging.getLogger(name)
    logger.setLevel(level)
    logger.addHandler(records)
    return records


@on_processes
def test_record_reaches_the_parent_logger_of_its_name(executor: fk.Executor) -> None:
    part = attach(f"{NAME}.part")
    root = lh.Records()
    logging.root.addHandler(root)  # reached by propagation
    pid = executor.submit(lh.warn, f"{NAME}.part", "x %s", 1).result(timeout=TIMEOUT)
    # The record was sent before the result, on the same pipe: it was handled before the future settled.
    [record] = part.records
    assert record in root.records
    assert (record.name, record.levelno, record.levelname) == (f"{NAME}.part", logging.WARNING, "WARNING")
    assert (record.getMessage(), record.msg, record.args) == ("x 1", "x 1", None)
    assert record.process == pid != os.getpid()
    assert record.funcName == "warn"
    assert record.pathname == lh.__file__
    task = getattr(record, "futurekit_task")
    assert isinstance(task, str)
    assert "warn" in task
    assert "'x %s'" in task


@on_processes
def test_levels_follow_the_parent_and_a_dropped_record_is_never_made(executor: fk.Executor) -> None:
    loud = attach(NAME, logging.DEBUG)
    logging.getLogger(f"{NAME}.quiet").setLevel(logging.WARNING)
    enabled, level, formatted = executor.submit(lh.log_below_level, f"{NAME}.quiet").result(timeout=TIMEOUT)
    assert (enabled, level, formatted) == (False, logging.WARNING, 0)  # filtered before any cost in the worker
    assert loud.records == []
    # A logger the parent lets through at DEBUG (the workers' root says WARNING by default): enabled there too.
    enabled, level, formatted = executor.submit(lh.log_below_level, f"{NAME}.loud").result(timeout=TIMEOUT)
    assert (enabled, level, formatted) == (True, logging.DEBUG, 2)
    assert loud.messages() == ["quiet counted", "quieter counted"]


@on_processes
def test_exception_renders_with_the_workers_frames(executor: fk.Executor) -> None:
    records = attach(NAME)
    executor.submit(lh.log_exception, NAME).result(timeout=TIMEOUT)
    failed, located = records.records
    assert failed.exc_info is not None
    _, exc, tb = failed.exc_info
    assert isinstance(exc, ValueError)
    assert str(exc) == "bad value"
    assert [frame.name for frame in traceback.extract_tb(tb)] == ["log_exception", "_deep_failure"]
    rendered = "".join(traceback.format_exception(exc))
    assert "in _deep_failure" in rendered
    assert "raise ValueError(text)" in rendered
    text = logging.Formatter().format(failed)
    assert text.startswith("it failed\nTraceback (most recent call last):")
    assert "in _deep_failure" in text
    assert located.stack_info is not None
    assert located.stack_info.startswith("Stack (most recent call last):")
    assert "in log_exception" in located.stack_info


@on_processes
@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_records_logged_just_before_a_crash_arrive(executor: fk.Executor, how: str) -> None:
    records = attach(NAME)
    exc = executor.submit(lh.log_then_crash, NAME, how).exception(timeout=TIMEOUT)
    assert isinstance(exc, fk.WorkerCrashedError)
    [record] = records.records
    assert record.getMessage() == f"last words of {record.process}"
    assert "log_then_crash" in getattr(record, "futurekit_task")
    assert executor.submit(h.add, 1, 2).result(timeout=TIMEOUT) == 3


@on_processes
@pytest.mark.executor_options(forward_logs=False)
def test_forward_logs_false_forwards_nothing(executor: fk.Executor) -> None:
    records = attach(NAME)
    root = lh.Records()
    logging.root.addHandler(root)
    executor.submit(lh.warn, NAME, "x %s", 1).result(timeout=TIMEOUT)
    assert records.records == root.records == []


@pytest.mark.parametrize("value", [0, 1, "yes", None])
def test_forward_logs_must_be_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="forward_logs must be True or False"):
        fk.processes(1, forward_logs=value)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


@on_processes
@pytest.mark.parametrize("error", [RuntimeError("handler broke"), KeyboardInterrupt()], ids=["Exception", "KI"])
def test_a_raising_parent_handler_is_reported_and_the_pool_goes_on(
    executor: fk.Executor, capfd: pytest.CaptureFixture[str], error: BaseException
) -> None:
    logger = logging.getLogger(f"{NAME}.bad")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(lh.Raising(error))
    executor.submit(lh.warn, f"{NAME}.bad", "doomed %s", 1).result(timeout=TIMEOUT)
    records = attach(NAME)
    assert executor.submit(lh.warn, NAME, "fine %s", 2).result(timeout=TIMEOUT)
    assert records.messages() == ["fine 2"]
    err = capfd.readouterr().err
    assert "--- Logging error ---" in err
    assert type(error).__name__ in err
    assert f"forwarded to the logger '{NAME}.bad'" in err
    assert "Message: 'doomed 1'" in err


@on_processes
def test_a_raising_handler_is_silent_without_raise_exceptions(
    executor: fk.Executor, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)
    logger = logging.getLogger(f"{NAME}.bad")
    logger.propagate = False
    logger.addHandler(lh.Raising(RuntimeError("handler broke")))
    executor.submit(lh.warn, f"{NAME}.bad", "doomed %s", 1).result(timeout=TIMEOUT)
    assert "Logging error" not in capfd.readouterr().err


@on_processes
def test_logging_from_a_thread_of_the_task(executor: fk.Executor) -> None:
    records = attach(NAME)
    thread_name = executor.submit(lh.log_from_thread, NAME).result(timeout=TIMEOUT)
    [record] = records.records
    assert (record.getMessage(), record.threadName) == ("from a thread", thread_name)
    assert "log_from_thread" in getattr(record, "futurekit_task")


@on_processes
def test_the_workers_handlers_are_removed_and_its_loggers_propagate(executor: fk.Executor) -> None:
    """Under fork the worker inherits the parent's handlers; they would write every record a second time."""
    private = attach(f"{NAME}.private")
    logging.getLogger(f"{NAME}.private").propagate = False
    root = lh.Records()
    logging.root.addHandler(root)
    root_handlers, count, propagate = executor.submit(lh.handlers_here, f"{NAME}.private").result(timeout=TIMEOUT)
    assert (root_handlers, count, propagate) == (["Forwarder"], 0, True)
    # The parent's propagation still rules: its "private" logger keeps the record from the root.
    executor.submit(lh.warn, f"{NAME}.private", "mine %s", 1).result(timeout=TIMEOUT)
    assert private.messages() == ["mine 1"]
    assert root.records == []


@on_processes
def test_cleanup_after_a_stop_still_names_its_task(kit: Kit) -> None:
    records = attach(NAME)
    future = kit.ex.submit(lh.log_when_stopped, NAME)
    kit.wait_started()
    assert future.cancel()
    [record] = records.wait_for(1)
    assert record.getMessage() == "cleaning up"
    assert "log_when_stopped" in getattr(record, "futurekit_task")


@on_processes
def test_records_between_tasks_name_no_task(kit: Kit) -> None:
    records = attach(NAME)
    with fk.processes(1, mp_context=kit.kind, initializer=lh.log_in_initializer) as ex:
        ex.submit(h.add, 1, 2).result(timeout=TIMEOUT)
    [record] = records.records
    assert record.getMessage() == "initializing"
    assert getattr(record, "futurekit_task") is None


@on_processes
def test_an_attribute_that_does_not_pickle_arrives_as_its_repr(executor: fk.Executor) -> None:
    records = attach(NAME)
    executor.submit(lh.log_with_extra, NAME).result(timeout=TIMEOUT)
    [record] = records.records
    assert (getattr(record, "user_id"), getattr(record, "conn")) == (7, "<Unpicklable>")


@pytest.mark.parametrize("kind", PROCESS_KINDS)
def test_a_script_that_configures_logging_at_import_writes_each_record_once(kind: str, tmp_path: Path) -> None:
    """basicConfig at a script's top level runs again in each spawn/forkserver worker (it imports the main module)."""
    if kind not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {kind} start method")
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import logging, os
            import futurekit as fk
            logging.basicConfig(format="%(process)d %(name)s %(message)s", level=logging.INFO)

            def work():
                logging.getLogger("app").info("hello from the worker")
                return os.getpid()

            if __name__ == "__main__":
                with fk.processes(1, mp_context={kind!r}) as ex:
                    print(ex.submit(work).result(timeout=60))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(fk.__file__).parent.parent), *sys.path])}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT * 2, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    pid = proc.stdout.strip()
    assert proc.stderr.splitlines() == [f"{pid} app hello from the worker"]


# --- the codec alone, in this process --------------------------------------------------------


def _record(exc_info: logging._SysExcInfoType | None = None) -> logging.LogRecord:  # pyright: ignore[reportPrivateUsage]
    return logging.LogRecord("fk.test.codec", logging.ERROR, __file__, 1, "n=%d", (5,), exc_info)


def test_codec_round_trip_formats_the_message_and_keeps_the_attributes() -> None:
    record = _record()
    record.custom = [1, 2]
    back = logs.decode(logs.encode(record), "t(1)")
    assert (back.msg, back.args, back.getMessage()) == ("n=5", None, "n=5")
    assert (back.name, back.levelno, back.lineno, back.process) == (record.name, record.levelno, 1, record.process)
    assert getattr(back, "custom") == [1, 2]
    assert getattr(back, "futurekit_task") == "t(1)"


def test_codec_falls_back_to_the_exception_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(exc: BaseException) -> bytes:
        raise RuntimeError("cannot capture")

    try:
        raise KeyError("k")
    except KeyError:
        record = _record(exc_info=sys.exc_info())
    monkeypatch.setattr(exceptions, "capture", refuse)
    back = logs.decode(logs.encode(record), None)
    assert back.exc_info is None
    assert back.exc_text is not None
    assert "KeyError: 'k'" in back.exc_text
    assert "KeyError: 'k'" in logging.Formatter().format(back)


def test_an_undecodable_record_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    logs.handle(pickle.dumps("not a record"), None, 123)
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err
    assert "worker process 123 could not be decoded" in err
