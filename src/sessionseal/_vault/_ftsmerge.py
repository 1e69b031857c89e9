"""The full-text index's tier merges, out of every writer's call (issue 23; docs/design.md,
"Tier merges out of the writer's call"; docs/spec/fts-v1.md, "Compaction").

A fold of the delta log (64 appends) may leave a tier of :data:`._fulltext.TIER_FANOUT`
segments: a merge is then due.  A tier-1 merge is 14-19 s of CPU, so it never runs inside the
call that made it due (an append holding its session's lock, a capture hook that ends itself
after 25 s).  :class:`Maintenance` (``vault.maintenance``) takes it from there, by its
:attr:`~Maintenance.mode`:

* ``thread`` (the library's default: no process is started behind a library caller's back, and
  no caller's call waits for the merge): one background thread of the vault object runs it,
  started at the end of the outermost vault call that made it due (``_ftsthread``: stopped at a
  safe point by ``Vault.close`` and at interpreter exit, forgotten in a forked child);
* ``inline``: the merge runs in the calling thread at the end of the outermost vault call that
  made it due, once that call has released every lock;
* ``background`` (the CLI's): a detached ``sessionseal index merge --auto`` child runs it (a new
  session, stdio on /dev/null, never interactive), if it can unlock the vault unattended: a
  keychain vault, or a passphrase vault whose passphrase came from a regular file (the child is
  given the file's path, never the passphrase).  Otherwise the merge stays *pending* (below);
* ``manual``: it stays pending, for :meth:`Maintenance.run` (``sessionseal index merge``).

**Never lost.**  The manifest itself says a tier is full, and every later fold finds it again.
A merge found due is also noted in ``ftsmerge.json`` at the vault's root (``pending``: since
when; cleared when a run leaves no tier full), so a child that was killed, or a vault whose
passphrase no child can have, is picked up by the next command: ``sessionseal`` ends every
command that opened the vault with :meth:`Maintenance.resume` (a child again, or at a terminal
the merge itself, after the command's output; never in a hook).

**Debounce.**  ``locks/ftsmerge.lock`` (``flock``) is held by whoever merges, handed by the
writer to the child it spawns (as ``_autopush`` does).  A writer that finds it held starts
nothing: the holder merges until no tier is full, lets the lock go, and looks once more (a fold
committed while it held the lock is seen then).  A merge builds outside the vault lock and
commits only if the manifest still names what it merged (:meth:`.FullText.merge_tier`), so a
merge killed at any point leaves the index whole (its new segment unnamed, reported by
``verify``, as any killed writer's), and a later run does it again.

``ftsmerge.json`` holds times, counts, an error's class and exit code: never a key, a word or a
session id.  Nothing here is audited: a merge changes no session (as the fold inside an append).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from ..errors import InvalidInput, SessionSealError
from . import _ftsthread
from ._auditing import Auditor
from ._autopush import detach, inherited_lock, try_lock
from ._context import VaultContext
from ._ftsthread import Cancelled, MergeThread
from ._fulltext import FullText
from ._keys import Keys

__all__ = ["MERGE_FILE", "MERGE_LOCK", "Maintenance", "MergeStatus"]

MERGE_FILE: Final = "ftsmerge.json"
MERGE_LOCK: Final = "ftsmerge.lock"
#: The descriptor of the merge lock a writer hands to the child it spawns.
FD_ENV: Final = "SESSIONSEAL_MERGE_FD"
#: How long the child waits for the vault lock (another writer's fold, a rotation): it runs
#: unattended, so it may wait longer than a command at a terminal.
CHILD_LOCK_TIMEOUT: Final = "300"
#: At most this many merges a run (each commits one; more would be a bug looping).
_MAX_MERGES: Final = 64
_MAX_FILE: Final = 16 << 10
#: Seconds ``Vault.close`` waits for its merge thread to reach a safe point (``_ftsthread``): a
#: fold or a seal of the merged segment (seconds of CPU for a tier-1 merge), or a wait for the
#: vault lock (``SESSIONSEAL_LOCK_TIMEOUT``) is the longest stretch between two.
CLOSE_WAIT: Final = 120.0
Mode = Literal["thread", "inline", "background", "manual"]
_MODES: Final = ("thread", "inline", "background", "manual")
#: A new vault object's mode (the CLI sets ``background``; tests of the index's life set
#: ``inline``, to see each merge done when the call that made it due returns).
DEFAULT_MODE: Mode = "thread"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MergeStatus:
    """What ``doctor`` shows (:meth:`Maintenance.status`)."""

    #: A tier is full now (a merge is due: a matter of speed, never damage).
    due: bool
    #: A merge holds ``locks/ftsmerge.lock`` now (a background child, or another process's run).
    running: bool
    #: Since when a merge found due has not finished (None: none pending).
    pending: str | None
    #: The last run's outcome: ``at``, ``outcome`` (``ok``/``error``), ``merges``, ``by``
    #: (``thread``, ``inline``, ``background``, ``terminal``, ``command``), and for an error its ``error`` class and
    #: ``exit_code``; empty when none ran.
    last: dict[str, Any]


class Maintenance:
    """``vault.maintenance``: the full-text index's due tier merges (docs/api.md, "Maintenance")."""

    def __init__(self, ctx: VaultContext, keys: Keys, fulltext: FullText, auditor: Auditor, *, keychain: bool) -> None:
        self._ctx, self._keys, self._fulltext = ctx, keys, fulltext
        self._keychain = keychain
        self._mode: Mode = DEFAULT_MODE
        #: A regular file holding the passphrase (the CLI's ``--passphrase-file``): a child may read it.
        self._passphrase_file: str | None = None
        #: A fold of this process left a full tier; taken up at the end of the outermost call.
        self._due = False
        #: Children started by this vault object (for tests and the benchmark).
        self.spawned = 0
        #: The merge lock's descriptors this process holds now (a forked child closes its copies).
        self._held: set[int] = set()
        self._worker = MergeThread(self._in_thread, self._forked)
        ctx.before_close.append(self.close)  # Vault.close stops the merge thread first
        fulltext.tier_due = self._note_due  # inside a writer's call: noted only
        auditor.after_call = self.after_call  # the outermost call returned: taken up
        auditor.after_record = self.after_record  # an operation that records itself: the same, or later

    # -- settings -------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """``thread`` (default), ``inline``, ``background`` or ``manual`` (module docstring)."""
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in _MODES:
            raise InvalidInput("the maintenance mode is thread, inline, background or manual")
        self._mode = value

    @property
    def threads(self) -> int:
        """Merge threads started by this vault object (``thread`` mode; for tests and benchmarks)."""
        return self._worker.started

    def unlock_with_file(self, path: str | os.PathLike[str] | None) -> None:
        """The passphrase file a background child may read to unlock a passphrase vault (only a
        regular file: a pipe's passphrase is read once); None: none (the default)."""
        self._passphrase_file = None
        if path is not None:
            with contextlib.suppress(OSError):
                full = os.path.abspath(path)
                if stat.S_ISREG(os.stat(full).st_mode):
                    self._passphrase_file = full

    @property
    def unattended(self) -> bool:
        """Whether a background child can unlock this vault (keychain, or a passphrase file)."""
        return self._keychain or self._passphrase_file is not None

    # -- the writer's side -------------------------------------------------------------------

    def _note_due(self) -> None:
        # Called by FullText inside the writer's call, under its session lock: noted only.
        self._due = True

    def after_call(self) -> None:
        """The end of the outermost vault call (every lock released): take up a merge a fold of
        it found due.  Never raises: the call's write is done."""
        if not self._due:
            return
        self._due = False
        with contextlib.suppress(Exception):
            self._mark_pending()
            if self._mode == "thread":
                self._worker.want()
            elif self._mode == "inline":
                self.run(by="inline")
            elif self._mode == "background" and self.unattended:
                self._spawn()

    def after_record(self) -> None:
        """A record written outside every audited call (an import of transcripts records each
        session itself, under the import lock): a thread or a child is started, or the merge
        noted pending; one in the calling thread waits for the end of the next outermost call."""
        if not self._due:
            return
        if self._mode != "inline":
            self.after_call()
            return
        with contextlib.suppress(Exception):
            self._mark_pending()

    def resume(self, *, foreground: bool, before: Callable[[], None] = lambda: None) -> int:
        """The end of a command: a merge still pending (``ftsmerge.json``) and not running is taken
        up by the mode: ``thread``, in the vault's merge thread; ``inline``, here; ``background``,
        in a child when one can unlock the vault, else, with *foreground* (a person at a terminal,
        never a hook) and the keys already held, here after *before*; ``manual``, not.  One that
        failed since it was found due is left to the next fold.  Returns the merges run here."""
        with contextlib.suppress(Exception):
            doc = self._read()
            pending, last = doc.get("pending"), doc.get("last") or {}
            if not isinstance(pending, str) or (last.get("outcome") == "error" and str(last.get("at")) >= pending):
                return 0
            if self._mode == "thread":
                self._worker.want()
            elif self._mode == "inline":
                return self.run(by="inline") or 0
            elif self._mode == "background" and self.unattended:
                self._spawn()
            elif self._mode == "background" and foreground and self._keys.table is not None:
                fd = try_lock(self._ctx.locks, MERGE_LOCK)
                if fd is not None:
                    before()
                    return self._merge(fd, by="terminal")
        return 0

    def _spawn(self) -> None:
        fd = try_lock(self._ctx.locks, MERGE_LOCK)
        if fd is None:
            return  # a merge runs: it looks again after letting the lock go
        try:
            pf = ["--passphrase-file", self._passphrase_file] if self._passphrase_file and not self._keychain else []
            argv = ["--vault", str(self._ctx.path), *pf, "index", "merge", "--auto"]
            detach(argv, fd, FD_ENV, {"SESSIONSEAL_LOCK_TIMEOUT": CHILD_LOCK_TIMEOUT})
            self.spawned += 1
        finally:
            os.close(fd)  # the child holds the lock through its own copy

    # -- the merge thread (``thread``) ------------------------------------------------------------

    def _in_thread(self, stop: Callable[[], None]) -> None:
        # The merge thread's run: as run(), stopped where *stop* raises.  Never raises (a
        # failure is in ftsmerge.json), so that nothing is printed by the thread's end.
        with contextlib.suppress(Cancelled):
            if not self._fulltext.tier_full():
                # Asked again by a fold while a run held the lock, which merged what it found:
                # nothing to record (the last run's outcome stays), but a stale pending mark.
                self._clear_pending()
                return
            try:
                fd = try_lock(self._ctx.locks, MERGE_LOCK)
            except Exception as exc:  # an unsafe lock file, a full disk: as a run's failure
                self._record({"at": _now(), "outcome": "error", "merges": 0, "by": "thread", **_error(exc)})
                return
            if fd is not None:
                with contextlib.suppress(Exception):  # recorded by _merge
                    self._merge(fd, by="thread", stop=stop)

    def _forked(self) -> None:
        # In a forked child (only the forking thread there): the merge lock is the parent's, so
        # the child's copies of its descriptors go (flock locks belong to the open file, which
        # fork shares: a copy kept open would hold the lock for as long as the child lives), and
        # what a vanished thread held in this process is forgotten.
        held, self._held = self._held, set()
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._ctx.after_fork()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until this vault object's merge thread is done (None: as long as it takes);
        whether it is.  A merge in another process is not waited for."""
        return self._worker.wait(timeout)

    def close(self, timeout: float = CLOSE_WAIT) -> bool:
        """``Vault.close``, before its directories close: a merge under way in the merge thread
        may finish (``_ftsthread.FINISH_GRACE``), then the thread stops at its next safe point
        (its merge uncommitted, still pending) and is waited for up to *timeout* seconds; none
        starts afterwards.  Whether it ended: if not, the directories stay open for it."""
        return self._worker.close(timeout, grace=_ftsthread.FINISH_GRACE)

    # -- running merges -----------------------------------------------------------------------

    def run(self, *, by: str = "command") -> int | None:
        """Merge every full tier now, in this thread; returns the merges committed, or None when
        another merge runs (a background child: it merges every full tier before it ends)."""
        fd = try_lock(self._ctx.locks, MERGE_LOCK)
        return None if fd is None else self._merge(fd, by=by)

    def run_auto(self) -> int:
        """The background child's run (``sessionseal index merge --auto``): with the lock its
        writer handed over, or taken (None held: another merge runs, and nothing is done)."""
        fd = inherited_lock(self._ctx.locks, MERGE_LOCK, FD_ENV)
        if fd is None:
            fd = try_lock(self._ctx.locks, MERGE_LOCK)
        return 0 if fd is None else self._merge(fd, by="background")

    def _merge(self, fd: int, *, by: str, stop: Callable[[], None] = lambda: None) -> int:
        """Merge while a tier is full, holding the lock *fd*; record the outcome and clear the
        pending mark; let the lock go, then look once more (a fold committed meanwhile).  What
        *stop* raises at a safe point (:class:`._ftsthread.Cancelled`) is not a failure: nothing
        is recorded, and the pending mark stays."""
        done = 0
        while True:
            self._held.add(fd)
            try:
                n = self._merge_held(by, done, stop)
            except Cancelled:
                raise
            except Exception as exc:
                self._record({"at": _now(), "outcome": "error", "merges": done, "by": by, **_error(exc)})
                raise
            finally:
                self._let_go(fd)
            done += n
            if not n or not self._fulltext.tier_full():
                return done
            again = try_lock(self._ctx.locks, MERGE_LOCK)
            if again is None:
                return done  # another merge runs: it looks again when it ends
            fd = again

    def _let_go(self, fd: int) -> None:
        # Unlocked before closed: a forked child's copy of the descriptor (it closes its copies,
        # but one forked between the open and the note above) must not keep the lock held.
        self._held.discard(fd)
        try:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _merge_held(self, by: str, before: int, stop: Callable[[], None]) -> int:
        self._keys.keytable()  # the key first: a locked keychain is an error, not "nothing due"
        n = 0
        while n < _MAX_MERGES and self._fulltext.tier_full():
            stop()
            if not self._fulltext.merge_tier(stop):
                break  # a rotation, a reindex or another merge came first; or it failed
            n += 1
        stop()  # a merge given up because the vault closes (a lock waited for in vain) is no failure
        if not n and self._fulltext.tier_full():
            # Nothing committed and a tier still full: recorded as a failure, so that no command
            # starts another run for it; the next fold (or 'index merge') tries again.
            raise _NotMerged("no tier merge could be committed")
        last = {"at": _now(), "outcome": "ok", "merges": before + n, "by": by}
        self._record(last, clear=not self._fulltext.tier_full())
        return n

    # -- the record -----------------------------------------------------------------------------

    def status(self) -> MergeStatus:
        """Whether a tier is full, a merge runs, one is pending, and the last run's outcome."""
        doc = self._read()
        running = False
        if self._ctx.locks.exists(MERGE_LOCK):  # none: no merge ever ran (and none is made here)
            fd = try_lock(self._ctx.locks, MERGE_LOCK)
            running = fd is None
            if fd is not None:
                os.close(fd)
        pending = doc.get("pending")
        last = doc.get("last")
        return MergeStatus(
            due=self._fulltext.tier_full(),
            running=running,
            pending=pending if isinstance(pending, str) else None,
            last=dict(last) if isinstance(last, dict) else {},
        )

    def _read(self) -> dict[str, Any]:
        try:
            doc = orjson.loads(self._ctx.root.read(MERGE_FILE, max_size=_MAX_FILE))
        except (FileNotFoundError, orjson.JSONDecodeError, SessionSealError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _mark_pending(self) -> None:
        doc = self._read()
        if not isinstance(doc.get("pending"), str):
            self._write({**doc, "pending": _now()})

    def _clear_pending(self) -> None:
        with contextlib.suppress(SessionSealError, OSError):
            doc = self._read()
            if "pending" in doc:
                doc.pop("pending")
                self._write(doc)

    def _record(self, last: dict[str, Any], *, clear: bool = False) -> None:
        with contextlib.suppress(SessionSealError, OSError):
            doc = {**self._read(), "last": last}
            if clear:
                doc.pop("pending", None)
            self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        self._ctx.root.write_atomic(MERGE_FILE, orjson.dumps({**doc, "v": 1}, option=orjson.OPT_SORT_KEYS))


class _NotMerged(SessionSealError):
    """A tier stayed full and no merge of it committed (a failure merge_tier kept to itself)."""


def _error(exc: BaseException) -> dict[str, Any]:
    # The class and the exit code only: a message may name a file.
    return {"error": type(exc).__name__, "exit_code": getattr(exc, "exit_code", 1)}
