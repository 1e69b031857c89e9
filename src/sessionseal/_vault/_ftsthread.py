"""The ``thread`` mode of ``vault.maintenance``, the library's default (issue 23: an append of one
turn stays O(turn); docs/design.md, "Tier merges out of the writer's call").

A tier merge found due at the end of a library caller's outermost call runs in one background
thread of that vault object, beside the caller, instead of in the caller's thread (``inline``:
14-19 s of CPU once in some 25,000 appends of a 1 GB vault).  :class:`MergeThread` is only the
thread's life; what it runs is :class:`._ftsmerge.Maintenance`'s merge, under the same
``locks/ftsmerge.lock`` and the same pending mark in ``ftsmerge.json``, so one merge runs at a
time whoever runs it (this thread, a CLI's child, ``index merge``).

* **One thread, no lost request.**  :meth:`MergeThread.want` starts the thread when none runs;
  one that runs takes the request before it ends (request and exit are decided under one lock).
* **Finished, or stopped at a safe point.**  :meth:`MergeThread.close` (``Vault.close``, and at
  interpreter exit) first lets a merge under way finish, for up to :data:`FINISH_GRACE` seconds
  (no new one starts): a script that appends and closes at once would otherwise stop every merge
  it made due, and since only a later fold finds a pending merge again, a vault written only by
  such scripts would never merge (``inline`` merged in the call: the grace costs a closing
  script no more than that did).  Past the grace it sets a flag that the merge checks where
  nothing of it is written yet (before each merge, after its fold, before its commit): it raises
  :class:`Cancelled` there, the merge ends without a commit and ``ftsmerge.json`` keeps its
  pending mark, for the next fold, ``resume`` or ``run``.  Then a bounded join: the longest
  stretch between two safe points is one fold or one seal of the merged segment (about half a
  merge's CPU) or one wait for the vault lock.
* **Interpreter exit.**  The thread is a daemon (an application never hangs at exit for it past
  the bounds); ``atexit`` does what close does first.  One still running past them is frozen by the
  interpreter's end as a killed process would be: a merge writes each file atomically and commits
  by the manifest, so what it leaves is an unnamed segment, reported by ``verify`` (the SIGKILL
  tests of the merge, tests/integration/test_fts_merge_detach.py).
* **Fork.**  A child has only the forking thread: its copy of the state says no thread runs, and
  the owner of the vault object is told (``in_child``) to close its copies of the merge lock's
  descriptors (the lock stays its parent's) and to forget what the vanished thread held.
* **Errors** are recorded by the merge in ``ftsmerge.json`` (class and exit code; ``doctor``'s
  ``fts-merge`` check shows them), never raised into a later call, never printed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final

__all__ = ["EXIT_WAIT", "FINISH_GRACE", "Cancelled", "MergeThread"]

#: Seconds ``atexit`` waits for a merge thread to reach a safe point.
EXIT_WAIT: Final = 30.0
#: Seconds close (and ``atexit``) lets a merge under way finish before it stops it: a tier-1 merge
#: at 1 GB is 14-19 s of CPU.
FINISH_GRACE: Final = 60.0


class Cancelled(Exception):
    """The vault is closing (or the process ends): the merge stops at a safe point, uncommitted."""


class MergeThread:
    """The background thread of one vault object's tier merges.

    :param target: runs the merges, calling its argument at safe points; records its own
        failures (what it raises is dropped, never printed).
    :param in_child: called in a forked child (only the forking thread there).
    """

    def __init__(self, target: Callable[[Callable[[], None]], None], in_child: Callable[[], None]) -> None:
        self._target, self._in_child = target, in_child
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wanted = False
        self._closing = False  # close began: the merge under way may finish, no request is taken
        self._cancel = threading.Event()
        #: Threads started (for tests and the benchmark).
        self.started = 0
        _live.add(self)

    @property
    def running(self) -> bool:
        """Whether the thread runs now."""
        return self._thread is not None

    def want(self) -> bool:
        """A run asked for: the thread starts if none runs (one running takes it before it ends).
        False once closed (nothing starts)."""
        with self._lock:
            if self._closing:
                return False
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sessionseal-ftsmerge", daemon=True)
                self.started += 1
                self._thread.start()
        return True

    def stop(self) -> None:
        """A safe point of the merge: raises :class:`Cancelled` once :meth:`close` was called."""
        if self._cancel.is_set():
            raise Cancelled

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no merge thread runs (None: as long as it takes); whether none does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                t = self._thread
            if t is None or t is threading.current_thread():
                return True
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                return False

    def cancel(self) -> None:
        """Stop the thread at its next safe point; no thread starts afterwards."""
        with self._lock:
            self._closing = True
            self._cancel.set()

    def drain(self) -> None:
        """No request is taken any more; a merge under way goes on (:meth:`close`'s first step)."""
        with self._lock:
            self._closing = True

    def close(self, timeout: float, *, grace: float = 0.0) -> bool:
        """:meth:`drain`, wait up to *grace* seconds for a merge under way to finish, then
        :meth:`cancel` and wait for the thread up to *timeout* seconds; whether it ended (no
        merge runs, nothing of this vault object is left in a thread)."""
        self.drain()
        if grace > 0:
            self.wait(grace)
        self.cancel()
        return self.wait(timeout)

    def _loop(self) -> None:
        try:
            while self._next():
                with contextlib.suppress(Exception):  # recorded by the target: never printed
                    self._target(self.stop)
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _next(self) -> bool:
        # Under the lock that want() takes: a request made before this decides is taken here, and
        # one made after it finds no thread and starts one.
        with self._lock:
            if self._wanted and not self._closing:
                self._wanted = False
                return True
            self._thread = None
            return False

    def _forked(self) -> None:
        # In the child: the lock may have been held by a thread that is not there.
        self._lock = threading.Lock()
        self._thread, self._wanted = None, False
        with contextlib.suppress(Exception):
            self._in_child()


_live: weakref.WeakSet[MergeThread] = weakref.WeakSet()


def _at_exit() -> None:
    # Never raises: what an atexit or at-fork hook raises is printed by the interpreter.
    with contextlib.suppress(Exception):
        live = list(_live)
        for m in live:  # every thread told first: they finish, then stop, side by side
            m.drain()
        deadline = time.monotonic() + FINISH_GRACE
        for m in live:
            m.wait(max(0.0, deadline - time.monotonic()))
        for m in live:
            m.cancel()
        deadline = time.monotonic() + EXIT_WAIT
        for m in live:
            m.wait(max(0.0, deadline - time.monotonic()))


def _in_child() -> None:
    with contextlib.suppress(Exception):
        for m in list(_live):
            with contextlib.suppress(Exception):
                m._forked()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_in_child)
