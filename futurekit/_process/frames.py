"""Traceback frames as data, and real traceback objects rebuilt from that data.

Child side: :func:`tb_data` reads each entry of a traceback (file, function,
module and the exact line and column positions of the failing expression).
Parent side: :func:`build_traceback` turns that data into real traceback
objects whose frames are those of *unstarted generators*, with code objects
that carry the child's exact positions in their location table: the traceback
renders exactly as the worker would have rendered it (the same ``^^^^``
markers), and the frames reference nothing of the caller (``f_back is None``).
The exception codec (:mod:`futurekit._process.exceptions`) carries this data
across the process boundary.
"""

from __future__ import annotations

import itertools
import types
from typing import Final

KEEP_HEAD: Final = 50
"""Remote frames kept from the outermost end of a deep traceback."""
KEEP_TAIL: Final = 50
"""Remote frames kept from the innermost end (where it was raised)."""

#: (filename, name, qualname, module name, co_firstlineno, lineno, end_lineno, col, end_col)
FrameData = tuple[str, str, str, "str | None", int, "int | None", "int | None", "int | None", "int | None"]
#: (frames, number of frames omitted after the first KEEP_HEAD)
TbData = tuple[tuple[FrameData, ...], int]


def _frame_data(tb: types.TracebackType) -> FrameData:
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


def tb_data(tb: types.TracebackType | None) -> TbData:
    """The frames of a traceback as data; a deep one loses its middle (see KEEP_HEAD, KEEP_TAIL)."""
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


_stub_code_object: types.CodeType | None = None  # built on first use; lower case: it is rebound
_CODE_CACHE: dict[FrameData, types.CodeType] = {}
_CODE_CACHE_MAX: Final = 2048


def _stub_code() -> types.CodeType:
    """Code of an empty generator function; its frames stand in for remote ones."""
    global _stub_code_object
    if _stub_code_object is None:
        module = compile("def _futurekit_remote_frame():\n    yield\n", "<futurekit>", "exec")
        _stub_code_object = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return _stub_code_object


def _code_for(frame: FrameData) -> types.CodeType:
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


def build_traceback(data: TbData) -> types.TracebackType | None:
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


def omitted_note(count: int) -> str:
    return f"futurekit: {count} remote frames omitted (kept the first {KEEP_HEAD} and the last {KEEP_TAIL})"
