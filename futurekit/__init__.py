"""futurekit: typed futures combinators for any executor, and executors that never lose an error.

Only re-exports live here; the code lives in private modules.
"""

from __future__ import annotations

from . import testing as testing
from ._combinators import as_completed as as_completed
from ._combinators import cancelled as cancelled
from ._combinators import chain as chain
from ._combinators import completed as completed
from ._combinators import failed as failed
from ._combinators import first_success as first_success
from ._combinators import gather as gather
from ._combinators import gather_all as gather_all
from ._combinators import race as race
from ._combinators import recover as recover
from ._combinators import then as then
from ._combinators import timeout as timeout
from ._errors import DeadlockError as DeadlockError
from ._errors import RemoteError as RemoteError
from ._errors import SerializationError as SerializationError
from ._errors import StopRequested as StopRequested
from ._errors import TaskTimeoutError as TaskTimeoutError
from ._errors import WorkerCrashedError as WorkerCrashedError
from ._executor import Executor as Executor
from ._executor import processes as processes
from ._executor import threads as threads
from ._types import FutureLike as FutureLike

__version__ = "0.1.0.dev0"

__all__ = [
    "DeadlockError",
    "Executor",
    "FutureLike",
    "RemoteError",
    "SerializationError",
    "StopRequested",
    "TaskTimeoutError",
    "WorkerCrashedError",
    "as_completed",
    "cancelled",
    "chain",
    "completed",
    "failed",
    "first_success",
    "gather",
    "gather_all",
    "processes",
    "race",
    "recover",
    "testing",
    "then",
    "threads",
    "timeout",
]


def _fixup_module_metadata() -> None:
    # Tracebacks, reprs, pickles and docs should say futurekit.gather, not
    # futurekit._combinators.gather (trio's fixup_module_metadata does the same).
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("futurekit._"):
            obj.__module__ = "futurekit"
            # Methods too, so doctest collects their examples under futurekit.<Class>.
            if isinstance(obj, type):
                for attr in vars(obj).values():
                    func = getattr(attr, "__func__", getattr(attr, "fget", attr))
                    if callable(func) and getattr(func, "__module__", "").startswith("futurekit._"):
                        func.__module__ = "futurekit"


_fixup_module_metadata()
del _fixup_module_metadata
