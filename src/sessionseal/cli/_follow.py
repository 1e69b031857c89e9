"""``audit show --follow``: a live tail of the audit log (docs/reports.md).

The log's directory is looked at every *interval* (names, inodes, sizes, times of its files):
only when something changed is the log read again, checked as ``audit show`` checks it, with the
key table read afresh (a session saved meanwhile is shown by id; a rekey's new audit key
verifies its records), and the records past the last one printed are printed.  Reading by
sequence number, not by file offset, keeps the tail whole across the log's rotation (the current
file renamed to ``audit-<seq>.log`` and a new one started) and across its retention.

SIGINT and SIGTERM end the tail between two looks, with exit 0: what was printed is whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._terminal import say

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = ["Stop", "follow_log", "stop_signals"]

Record = dict[str, Any]


def _signature(directory: str) -> tuple[tuple[str, int, int, int], ...]:
    out: list[tuple[str, int, int, int]] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return ()
    for name in sorted(names):
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(os.path.join(directory, name), follow_symlinks=False)
            out.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _key(rec: Record) -> tuple[str, str, str]:
    # A pending record (no seq yet) by who and when: it is printed once, then again (with its
    # seq) once a keyed append chains it.
    return (str(rec.get("time")), str(rec.get("pid")), str(rec.get("action")))


def _after(records: list[Record], last: int, pending: set[tuple[str, str, str]]) -> tuple[list[Record], int]:
    """The records past seq *last* and the pending ones not printed yet; the new last seq."""
    new: list[Record] = []
    for rec in records:
        seq = rec.get("seq")
        if isinstance(seq, int):
            if seq > last:
                new.append(rec)
                last = seq
        elif _key(rec) not in pending:
            pending.add(_key(rec))
            new.append(rec)
    return new, last


class Stop:
    """Set by SIGINT or SIGTERM while :func:`stop_signals` is active."""

    def __init__(self) -> None:
        self.stopped = False


@contextlib.contextmanager
def stop_signals() -> Iterator[Stop]:
    """SIGINT and SIGTERM set a flag instead of interrupting (the tail stops between two looks,
    after whole records); the handlers before are put back on leaving."""
    stop = Stop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.stopped = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig_num, handler in previous.items():
            signal.signal(sig_num, handler)


def follow_log(
    vault: Vault,
    seen: list[Record],
    *,
    stop: Stop,
    session: str | None,
    wanted: Callable[[Record], bool],
    interval: float,
    emit: Callable[[list[Record]], None],
) -> None:
    """Print the records written after *seen* (the records already read) until *stop*."""
    want = None if session is None else uuid.UUID(session)  # checked by the first read
    last = max((r["seq"] for r in seen if isinstance(r.get("seq"), int)), default=0)
    pending = {_key(r) for r in seen if r.get("seq") is None}
    broken = any(r.get("problem") not in (None, "pending") for r in seen)
    directory = str(vault.audit_log_path.parent)
    sig = _signature(directory)
    while not stop.stopped:
        deadline = time.monotonic() + interval
        while not stop.stopped and time.monotonic() < deadline:
            time.sleep(min(0.05, interval))
        if stop.stopped:
            break
        now = _signature(directory)
        if now == sig:
            continue
        sig = now
        records, report = vault.parts.auditor.entries(want, fresh=True)
        new, last = _after(records, last, pending)
        if not report.ok and not broken:
            broken = True
            first = next(p for p in report.problems if p.severity == "error")
            say(f"sessionseal: warning: the audit log does not verify: {first.describe()}")
        shown = [r for r in new if wanted(r)]
        if shown:
            try:
                emit(shown)
            except BrokenPipeError:
                # The reader went away (| head): stop quietly, as a tail does.
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
