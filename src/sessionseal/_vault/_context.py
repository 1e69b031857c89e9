"""The vault context: its directories, its id, and its locks (docs/design.md, "Locks").

Every component gets the same :class:`VaultContext` from the facade.  The one lock order of the
vault is kept by taking locks only through it: the import lock, the cleanup lock, then session
locks, then the vault lock, then the in-process mutex (the audit log's lock, innermost, is the audit log's own).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from .._fs import Dir, lock, make_lock_files
from ._common import SUFFIX

_DEFAULT_LOCK_TIMEOUT: Final = 10.0


def lock_timeout() -> float:
    """Seconds a lock is waited for: ``SESSIONSEAL_LOCK_TIMEOUT``, or 10."""
    try:
        return float(os.environ.get("SESSIONSEAL_LOCK_TIMEOUT", _DEFAULT_LOCK_TIMEOUT))
    except ValueError:
        return _DEFAULT_LOCK_TIMEOUT


class VaultContext:
    """An open vault directory: ``sessions/``, ``checkpoints/`` and ``locks/`` under *root*."""

    def __init__(self, path: Path, root: Dir, vault_id: uuid.UUID) -> None:
        self.path = path
        self.root = root
        self.vault_id = vault_id
        subs: list[Dir] = []
        try:
            for name in ("sessions", "checkpoints", "locks"):
                subs.append(root.sub(name, create=True))
        except BaseException:
            for d in subs:  # one refused (a link, not ours, open to others): the others are closed
                d.close()
            raise
        self.sessions, self.ckpts, self.locks = subs
        #: Guards what this process caches (the key table, the index), after the vault lock.
        self.mutex = threading.RLock()
        self.lock_timeout = lock_timeout()
        #: The thread of this process that holds the vault lock, if one does.
        self._vault_holder: int | None = None
        #: Called by :meth:`close` first: each stops a thread of a component that uses the
        #: directories (the merge thread, ``_ftsmerge``) and says whether it ended.
        self.before_close: list[Callable[[], bool]] = []

    def cleanup_lock(self, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """One cleanup at a time; taken before any session lock."""
        t = self.lock_timeout if timeout is None else timeout
        return lock(self.locks.path / "cleanup.lock", timeout=t, what="cleanup")

    def import_lock(self, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """One transcript import at a time, from reading what the vault holds of it to storing
        what it grew by (agents' hooks for one session overlap); taken before any other lock."""
        t = self.lock_timeout if timeout is None else timeout
        return lock(self.locks.path / "import.lock", timeout=t, what="transcript import")

    def session_lock(
        self, name: str, session_id: uuid.UUID, *, timeout: float | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """The lock of one session (*name*: its file name stem); taken before the vault lock."""
        t = self.lock_timeout if timeout is None else timeout
        return lock(self.locks.path / f"{name}.lock", timeout=t, what=f"session {session_id}")

    @contextlib.contextmanager
    def session_locks_ahead(self, names: Sequence[str]) -> Iterator[None]:
        """The lock files of the sessions *names* (their file name stems) made by a thread while
        the block runs (:func:`.._fslock.make_lock_files`), which ends with it."""
        if not names:
            yield
            return
        maker = threading.Thread(
            target=make_lock_files,
            args=([self.locks.path / f"{name}.lock" for name in names],),
            name="sessionseal-lockfiles",
            daemon=True,
        )
        maker.start()
        try:
            yield
        finally:
            maker.join()

    @contextlib.contextmanager
    def vault_lock(self, *, timeout: float | None = None) -> Iterator[None]:
        """The lock of the vault-wide files (key table, index, config); taken after session locks.

        Re-entrant within a thread: every audited operation ends by anchoring the audit log's
        head in the key table under this lock (issue 20), some while they hold it already.
        Another thread of the process waits for it as another process does (``flock`` locks
        belong to the open file, and each acquisition opens the lock file anew).
        """
        me = threading.get_ident()
        if self._vault_holder == me:
            yield
            return
        t = self.lock_timeout if timeout is None else timeout
        with lock(self.locks.path / "vault.lock", timeout=t, what="the vault"):
            self._vault_holder = me
            try:
                yield
            finally:
                self._vault_holder = None

    @property
    def holds_vault_lock(self) -> bool:
        """Whether this thread holds the vault lock."""
        return self._vault_holder == threading.get_ident()

    def after_fork(self) -> None:
        """In a forked child, where only the forking thread is: what another thread held here
        (the mark of the vault lock's holder, the mutex) is its parent's, never the child's.  The
        lock file's descriptor copy stays open: the parent unlocks it (``_fslock``)."""
        if self._vault_holder != threading.get_ident():
            self._vault_holder = None  # a new thread of the child may get the vanished one's id
        if self.mutex.acquire(blocking=False):
            self.mutex.release()
        else:
            self.mutex = threading.RLock()  # held by a thread the child does not have

    def session_files(self) -> list[str]:
        """The names in ``sessions/`` that are session files (not temp files), unordered."""
        return [n for n in self.sessions.names() if n.endswith(SUFFIX) and not n.startswith(".")]

    def close(self) -> None:
        """Stop the threads that use the directories, then close them; but for a thread that did
        not end in its time: a descriptor closed under it could be reused for another file."""
        if not all([stop() for stop in self.before_close]):
            return
        for d in (self.sessions, self.ckpts, self.locks, self.root):
            d.close()
