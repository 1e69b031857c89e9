"""``sessionseal sanitize``: stdin to stdout with every secret replaced.

This module imports no CLI framework: ``sessionseal sanitize`` with only its own options
(``--report``, ``--engine NAME``) runs it directly (see :mod:`sessionseal._main`), which
saves the start-up of the full command line; anything else (``--help``, a typo, a global
option) goes through the regular ``click`` command, which calls :func:`run_filter` too.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["run_filter"]


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector: the sanitizer makes no reference cycles, and the collector
    would only re-walk the growing lists of findings (about 15% of a large run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: glibc's ``mallopt`` parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def _reuse_freed_memory() -> None:
    """Keep what a region frees for the next one (glibc only; nothing elsewhere).

    Each region allocates some 30 MB of large buffers (the decoded text, its folded copy,
    the output), which glibc maps afresh and unmaps when freed, so every region touches new
    pages: some 10,000 page faults each, tens of milliseconds of a 20 MB run.  Serving them
    from the heap and not trimming it (this process exits when its output is written)
    lets the next region reuse the same pages.  Only for a process that is the command.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: larger buffers are still mapped
        mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): as it is
        return


def run_filter(
    *,
    report: bool = False,
    engine: str | None = None,
    read: Callable[[], bytes] | None = None,
    own_process: bool = False,
) -> None:
    """Read stdin (with *read*, if given), write it sanitized to stdout; with *report*, per-rule
    counts as JSON to stderr.

    *own_process*: the process is the ``sessionseal sanitize`` command and exits after it, so
    the memory regions free is kept for the next region rather than given back
    (:func:`_reuse_freed_memory`); a program that runs the command in-process keeps its
    allocator settings.
    """
    from . import Sanitizer
    from ._stream import sanitize_stream

    if own_process:
        _reuse_freed_memory()
    with _no_cyclic_gc():
        sanitizer = Sanitizer(os.urandom(32), engine=engine)
        pending = getattr(read, "pending", None)
        if pending is not None:  # the input is still arriving: compile rules meanwhile
            sanitizer.prepare(pending)
        data = (read or sys.stdin.buffer.read)()
        out = sys.stdout.buffer
        counts = sanitize_stream(sanitizer, data, out)
        out.flush()
    if report:
        counts = dict(sorted(counts.items()))
        sys.stderr.write(json.dumps({"total": sum(counts.values()), "counts": counts}) + "\n")
        sys.stderr.flush()
