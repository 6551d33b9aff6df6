"""The wire format between futurekit's process pool and its workers: one place for every message.

Each message on a worker's pipes is a :data:`HEADER` followed by a payload:

* ``kind`` says what the message is (one of the constants below);
* ``task`` is the task's id, unique in its pool (0 for messages about no task);
* ``seconds`` is how long the task ran (results only; else 0.0).

Parent to worker: :data:`CALL` (payload: :func:`futurekit._process.payload.dump_call`
of one call), :data:`CHUNK` (the same for a ``map`` chunk: ``(fn, items, {})``), and
an empty message (no header at all), which tells the worker to exit.
Worker to parent: :data:`VALUE` (the runner succeeded; payload: the pickled value, or
a chunk's outcome), :data:`RAISED` (payload: :func:`futurekit._process.exceptions.capture`
of the error), :data:`READY` (the initializer ran) and :data:`INIT_FAILED` (it
raised; payload: the captured error), and :data:`LOG` (a log record emitted in the
worker; ``task`` is the id of the task running then, or 0; payload:
:func:`futurekit._process.logs.encode` of the record).
"""

from __future__ import annotations

import pickle
from struct import Struct
from typing import Final

#: Pickle protocol of everything that crosses the boundary.
PROTOCOL: Final = pickle.HIGHEST_PROTOCOL

#: kind (unsigned byte), task id (signed 64-bit), seconds the task ran (double).
HEADER: Final = Struct("<Bqd")

# Parent -> worker.
CALL: Final = 1
CHUNK: Final = 2
# Worker -> parent.
VALUE: Final = 3
RAISED: Final = 4
READY: Final = 5
INIT_FAILED: Final = 6
LOG: Final = 7
#: The worker could not import the parent's main module (payload: the captured error); it exits.
MAIN_FAILED: Final = 8
