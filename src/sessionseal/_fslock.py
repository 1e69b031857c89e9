"""Vault locks: ``flock`` through ``filelock`` (its only importer), on lock files checked
like every vault file, holding the holder's pid for a waiter to name.  Re-exported by
:mod:`sessionseal._fs`."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

import filelock

from ._fscheck import FILE_MODE, O_CLOEXEC, check_owner_only, pid_alive, storage_error
from .errors import LockTimeout, UnsafePermissions

#: The holder record: the pid, left-aligned in 20 columns (any pid fits; int() strips the spaces).
_HOLDER_FORMAT: Final = "{:<20d}"


def _check_lock_file(path: Path) -> None:
    """Refuse a lock file that is a link, a FIFO, a device, hard-linked, not ours or open to others,
    before filelock opens it (it opens by path, following nothing but the last component's parents)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # filelock creates it, 0600, with O_EXCL | O_NOFOLLOW
    except OSError as exc:
        raise storage_error(exc, "lock", str(path)) from exc
    check_owner_only(st, str(path), is_dir=False)


def _holder_writer(path: Path) -> Callable[[int], None]:
    def write_holder(fd: int) -> None:
        # What was opened is checked again (it may have been swapped since _check_lock_file): the
        # pid is written only into a lock file of ours, never through a hard link or into a device.
        # A raise here makes filelock release the lock and re-raise.
        check_owner_only(os.fstat(fd), str(path), is_dir=False)
        # Record the holder's pid in the lock file so a waiter that times out can name it.
        # filelock opens lock files without O_TRUNC (a loser must not wipe the holder's
        # record), so we overwrite in place, at a fixed width that covers any earlier record:
        # no ftruncate (a lock is taken by every operation, some twice; issue 20's speed).
        with contextlib.suppress(OSError):
            os.pwrite(fd, _HOLDER_FORMAT.format(os.getpid()).encode(), 0)

    return write_holder


def _holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | O_CLOEXEC)
        try:
            pid = int(os.read(fd, 32).decode().strip() or "0")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return "another process"
    if pid <= 0:
        return "another process"
    return f"pid {pid}" if pid_alive(pid) else f"pid {pid} (which has exited; retry)"


def _take_free(path: Path) -> int | None:
    """The lock of *path* when no one holds it, taken with one ``open`` and one ``flock``: the
    common case, at about a tenth of filelock's cost (a pull's batch takes one lock per session,
    issue 26's speed).  None: held by someone, or the file did not open as a lock file; then
    filelock waits for it (with the timeout and the holder named) or reports what is wrong, as
    it always did.  The same ``flock`` on the same file as filelock's, so each excludes the other."""
    try:
        # As filelock opens it: no link followed, never blocking on a FIFO, created 0600.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | O_CLOEXEC, FILE_MODE)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:
        _holder_writer(path)(fd)  # checks what was opened, as filelock's on_acquired does
    except BaseException:
        os.close(fd)  # the flock goes with its only descriptor
        raise
    return fd


def make_lock_files(paths: Iterable[Path]) -> None:
    """Create those lock files of *paths* that do not exist yet, as :func:`lock`'s first take
    would (0600, no link followed, never blocking on a FIFO), and nothing more: no lock is taken.
    A batch of new sessions has them made by a thread ahead of its saves, so that each take opens
    a file that is there (the kernel's creation, most of a new lock's cost, off the saving thread).
    One that exists, or cannot be made, is left to :func:`lock`, which takes or reports it as always."""
    for path in paths:
        try:
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | O_CLOEXEC, FILE_MODE
            )
        except OSError:
            continue
        os.close(fd)


def _let_go(fd: int, owner: int) -> None:
    # A forked child leaving the block closes its copy but never unlocks its parent's lock:
    # flock locks belong to the open file, which fork shares (filelock guards its own alike).
    try:
        if os.getpid() == owner:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* for the block.

    ``flock`` locks die with their process, so a killed holder never blocks anyone.

    :raises LockTimeout: not acquired within *timeout* seconds; names the holder's pid.
    """
    _check_lock_file(path)
    owner, fd = os.getpid(), _take_free(path)
    if fd is not None:
        try:
            yield
        finally:
            _let_go(fd, owner)
        return
    fl = filelock.FileLock(
        str(path), timeout=timeout, mode=FILE_MODE, fallback_to_soft=False, on_acquired=_holder_writer(path)
    )
    try:
        fl.acquire()
    except UnsafePermissions:
        raise
    except filelock.Timeout as exc:
        raise LockTimeout(
            f"{what} is locked by {_holder(path)}; waited {timeout:g} s. Retry, or raise SESSIONSEAL_LOCK_TIMEOUT"
        ) from exc
    except OSError as exc:
        raise storage_error(exc, "lock", str(path)) from exc
    try:
        yield
    finally:
        fl.release()
