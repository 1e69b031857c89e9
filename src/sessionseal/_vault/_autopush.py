"""Automatic push after writes (issue 26; docs/sync.md, "Automatic push").

When a remote has ``auto_push`` on (``sessionseal remote auto NAME on``), every write that
completes (a save, an append, an edit, an import, a delete: :data:`WRITES`) starts a detached
``sessionseal sync --auto`` in a new session, stdio on ``/dev/null``, never interactive (a
locked keychain fails it in seconds, never a prompt), unless one is already pending.  The write
neither waits for it nor fails because of it: spawning is one ``fork``/``exec`` (about a
millisecond), and anything that goes wrong in deciding or spawning is swallowed.

**Debounce.**  A writer, once its write is committed, tries ``locks/autopush.lock`` (``flock``)
without waiting.  Held: a child is pending, and nothing is spawned.  Free: the writer now holds
it, spawns the child with that descriptor, and closes its own copy, so the lock is held from
the spawn on, with no gap while the child starts.  The child keeps it through its delay and
lets go *before* it reads what to push.  So every write is covered by a push that reads the
vault after it: the lock the writer found held belongs to a child that reads after letting it
go, which is after the write; the lock it found free, to the child it spawned.  A burst of
writes within the delay starts one push (a few, when pushes take longer than the writes'
spacing: a write during a push starts the next one).

The outcome of each automatic push is kept in ``autopush.json`` at the vault's root (time,
outcome, error class and exit code, counts: never a message, a name or a bucket) for ``remote
list`` and ``doctor``, and audited as ``sync.push`` with ``auto: true``; nothing is printed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from .._configfile import CONFIG_FILE
from .._fs import Dir
from .._fscheck import FILE_MODE, O_CLOEXEC, check_owner_only
from .._harden import SECRET_ENV
from ..errors import SessionSealError
from ._auditing import Auditor, recorded_by_caller
from ._context import VaultContext
from ._settings import Settings

if TYPE_CHECKING:
    from .._config import RemoteConfig

__all__ = ["AUTO_FILE", "LOCK_FILE", "WRITES", "AutoPush", "detach", "inherited_lock", "outcomes", "try_lock"]

AUTO_FILE: Final = "autopush.json"
LOCK_FILE: Final = "autopush.lock"
#: The audited actions that change what a push sends (docs/spec/audit-log.md).
WRITES: Final = frozenset(
    {
        "save",
        "append",
        "import",
        "import-transcripts",
        "fork",
        "rename",
        "describe",
        "tag",
        "set-status",
        "link",
        "pin",
        "unpin",
        "archive",
        "unarchive",
        "delete",
        "cleanup",
        "checkpoint.restore",
    }
)
#: How long the background push waits for another sync of the vault (a manual push, a pull)
#: before it gives up and records a ``LockTimeout``: it runs unattended, so it may wait longer
#: than a command run at a terminal.
CHILD_LOCK_TIMEOUT: Final = "300"
_MAX_FILE: Final = 64 << 10
#: The descriptor of the pending lock a writer hands to the child it spawns.
FD_ENV: Final = "SESSIONSEAL_AUTOPUSH_FD"

#: Children spawned by this process, polled at the next spawn so that none is left a zombie
#: (nor reported by ``subprocess`` as still running when its handle is collected).
_children: list[subprocess.Popen[bytes]] = []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class AutoPush:
    """The writer's side (:meth:`after_write`) and the background process's (:meth:`run`)."""

    def __init__(self, ctx: VaultContext, settings: Settings, *, keychain: bool) -> None:
        self._ctx = ctx
        self._settings = settings
        #: A passphrase vault is never pushed in the background: nothing could give the child
        #: the passphrase without handing a secret to another process (``remote auto`` says so).
        self.keychain = keychain
        self._seen: tuple[int, int, int] | None = None
        self._delay: float | None = None
        #: Background pushes this vault object started (for tests and the benchmark).
        self.spawned = 0

    # -- the writer's side ----------------------------------------------------------------

    def after_write(self, actions: list[str]) -> None:
        """Start a background push when *actions* wrote something, a remote has automatic push
        on, and none is pending.  Never raises, never waits: the write is done already."""
        if not self.keychain or WRITES.isdisjoint(actions):
            return
        # A failure to decide or to spawn must not fail or slow the write that is done: it
        # shows as a missing automatic push (remote list), and the next write tries again.
        with contextlib.suppress(Exception):
            if self.delay() is None:
                return
            fd = self._take()
            if fd is None:
                return  # a pending child reads the vault after this write: it covers it
            try:
                spawn(self._ctx, fd)
                self.spawned += 1
            finally:
                os.close(fd)  # the child holds the lock through its own copy

    def delay(self) -> float | None:
        """The shortest ``auto_push`` delay of the remotes (None: off), read again only when
        the config file changed (a ``stat``: the config is not decrypted on every write)."""
        st = os.stat(CONFIG_FILE, dir_fd=self._ctx.root.fd, follow_symlinks=False)
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            delays = [r.auto_push for r in self._settings.read(checked=False).remotes if r.auto_push is not None]
            self._delay, self._seen = (min(delays) if delays else None), seen
        return self._delay

    def pending(self) -> bool:
        """Whether a background push is pending (holds the lock of its delay)."""
        fd = self._take()
        if fd is None:
            return True
        os.close(fd)
        return False

    def outcomes(self) -> dict[str, Any]:
        """What the background pushes of this vault last did (:func:`outcomes`)."""
        return outcomes(self._ctx.root)

    def unopened(self, exc: BaseException) -> None:
        """A background push that could not open the vault (a locked keychain, say): its
        outcome, best effort, without the keys (so for no remote in particular)."""
        with contextlib.suppress(Exception):
            _write(self._ctx.root, {}, last={"at": _now(), "outcome": "error", **_error(exc)})

    def _take(self) -> int | None:
        """A descriptor holding ``locks/autopush.lock`` (``flock``, not waiting), or None when
        another holds it.  The writer hands it to the child it spawns, so the lock is held
        from the spawn on, with no gap while the child starts."""
        return try_lock(self._ctx.locks, LOCK_FILE)

    def _inherited(self) -> int | None:
        """The lock descriptor the spawning writer handed over (``SESSIONSEAL_AUTOPUSH_FD``),
        when it is that lock file; else None."""
        return inherited_lock(self._ctx.locks, LOCK_FILE, FD_ENV)

    # -- the background process's side ------------------------------------------------------

    def run(
        self,
        remotes: list[RemoteConfig],
        push: Callable[[str], Mapping[str, Any]],
        auditor: Auditor,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, dict[str, Any]] | None:
        """Wait out the delay holding the lock (handed over by the writer, or taken), let it
        go, then push to each of *remotes* (those with ``auto_push`` on) through *push* (the
        name to its counts).  Each outcome is audited (``sync.push`` with ``auto``) and kept in
        ``autopush.json``.  None when another background push is pending (it covers every
        write this one was started for)."""
        fd = self._inherited()
        if fd is None:
            fd = self._take()
            if fd is None:
                return None
        try:
            sleep(min((r.auto_push or 0.0 for r in remotes), default=0.0))
        finally:
            os.close(fd)  # from here on, a write starts another push: this one may not see it
        if not remotes:
            return {}
        done: dict[str, dict[str, Any]] = {}
        for remote in remotes:
            try:
                with recorded_by_caller("sync.push"):
                    counts = push(remote.name)
            except SessionSealError as exc:
                auditor.failure("sync.push", exc, detail={"auto": True})
                done[remote.device.hex] = {"at": _now(), "outcome": "error", **_error(exc)}
            else:
                kept = {k: counts[k] for k in ("sessions", "entries", "bytes", "seq") if k in counts}
                done[remote.device.hex] = {"at": _now(), "outcome": "ok", **kept}
        _write(self._ctx.root, done, last=_last(done))
        return done


def spawn(ctx: VaultContext, lock_fd: int) -> subprocess.Popen[bytes]:
    """Start ``sessionseal --vault PATH sync --auto`` detached (:func:`detach`), holding *lock_fd*
    (the pending lock it holds through its delay)."""
    argv = ["--vault", str(ctx.path), "sync", "--auto"]
    return detach(argv, lock_fd, FD_ENV, {"SESSIONSEAL_LOCK_TIMEOUT": CHILD_LOCK_TIMEOUT})


def try_lock(locks: Dir, name: str) -> int | None:
    """A descriptor holding ``locks/NAME`` (``flock``, not waiting), or None when another holds
    it (the debounce of a background process: this one and ``_ftsmerge``'s)."""
    import fcntl  # POSIX only: elsewhere this raises, and no background process is started

    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NOCTTY | O_CLOEXEC
    fd = os.open(name, flags, FILE_MODE, dir_fd=locks.fd)
    try:
        check_owner_only(os.fstat(fd), str(locks.path / name), is_dir=False)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def inherited_lock(locks: Dir, name: str, env: str) -> int | None:
    """The lock descriptor a spawning writer handed over (its number in the variable *env*,
    taken out of the environment), when it is ``locks/NAME``; else None."""
    raw = os.environ.pop(env, "")
    if not raw.isdigit():
        return None
    fd = int(raw)
    try:
        st, lock_st = os.fstat(fd), os.stat(name, dir_fd=locks.fd, follow_symlinks=False)
    except OSError:
        return None
    return fd if (st.st_dev, st.st_ino) == (lock_st.st_dev, lock_st.st_ino) else None


def detach(argv: list[str], lock_fd: int, fd_env: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``sessionseal ARGV`` detached: its own session (no controlling terminal, no signal
    from the writer's), stdio on /dev/null, no descriptor inherited but *lock_fd* (its number in
    *fd_env*), never interactive, no passphrase in its environment, not waited for."""
    _children[:] = [c for c in _children if c.poll() is None]
    # No passphrase variable: the child unlocks from the keychain or a passphrase file.
    child_env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    child_env.update({"SESSIONSEAL_NONINTERACTIVE": "1", **env, fd_env: str(lock_fd)})
    child = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        pass_fds=(lock_fd,),
        cwd="/",
        env=child_env,
    )
    _children.append(child)
    return child


def _error(exc: BaseException) -> dict[str, Any]:
    # The class and the exit code only: messages may name a bucket or a host (docs/sync.md).
    return {"error": type(exc).__name__, "exit_code": getattr(exc, "exit_code", 1)}


def _last(done: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    bad = [o for o in done.values() if o["outcome"] != "ok"]
    return dict(bad[0]) if bad else {"at": _now(), "outcome": "ok", "remotes": len(done)}


def outcomes(root: Dir) -> dict[str, Any]:
    """``autopush.json``: ``last`` (the last background run: ``ok``, or its first failure) and
    ``remotes`` (by device id, each remote's last outcome); empty when none ran."""
    try:
        doc = orjson.loads(root.read(AUTO_FILE, max_size=_MAX_FILE))
    except (FileNotFoundError, orjson.JSONDecodeError, SessionSealError):
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("remotes", {}), dict):
        return {}
    return doc


def _write(root: Dir, done: Mapping[str, Mapping[str, Any]], *, last: Mapping[str, Any]) -> None:
    doc = outcomes(root)
    remotes = {**doc.get("remotes", {}), **done}
    root.write_atomic(AUTO_FILE, orjson.dumps({"v": 1, "last": last, "remotes": remotes}, option=orjson.OPT_SORT_KEYS))
