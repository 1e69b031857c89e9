"""Owner-only, no-follow, atomic file operations: :class:`Dir`, an open vault directory.

Invariants this module keeps (docs/design.md, "Vault tree" and "Write ordering", rule 3):

* Every directory of a vault is 0700 and every file 0600, set with ``fchmod`` after
  creation so the umask cannot widen them.
* Nothing inside a vault is reached through a symlink: every open uses
  ``O_NOFOLLOW`` relative to a directory descriptor, and what it opens is checked with
  ``fstat`` (regular file, our uid, no group/other bits, one link).  A file is checked
  with ``lstat`` before it is opened too, so a device or a FIFO is never opened at all;
  lock files (opened by ``filelock``, by path) are checked the same way before and after.
* A file is replaced only by write-to-temp, ``fsync``, ``rename``, ``fsync(dir)``:
  a reader sees the old or the new file, never a mix, and a crash keeps one of them.
* OS errors become :class:`StorageError` / :class:`UnsafePermissions` with the path
  and what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

# Split by concern (_fscheck: checks and errors; _fswrite: files by path; _fslock: locks); the
# public names are re-exported here.  Dir looks its write steps (write_all, zero_and_truncate)
# up in this module's globals, where a test may replace them.
from ._fscheck import (
    DIR_MODE,
    FILE_MODE,
    O_CLOEXEC,
    TMP_PREFIX,
    check_ancestors,
    check_owner_only,
    check_vault_dir,
    storage_error,
    temp_writer,
    unreachable_reason,
    unsafe_reason,
    vault_exists,
)
from ._fslock import lock, make_lock_files
from ._fswrite import (
    shred_file,
    sweep_export_temps,
    write_all,
    write_private_dir,
    write_private_file,
    zero_and_truncate,
)
from .errors import StorageError, UnsafePermissions

#: Times a file replaced as it was opened is opened again (each time, a writer renamed a new
#: version over it; a file replaced that often in that instant is reported).
_REPLACED_RETRIES: Final = 8
#: Threads that fsync a batch of files at once (:meth:`Dir.fsync_all`).
_SYNC_THREADS: Final = 8

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "TMP_PREFIX",
    "Dir",
    "check_ancestors",
    "check_vault_dir",
    "lock",
    "make_lock_files",
    "shred_file",
    "sweep_export_temps",
    "temp_writer",
    "unreachable_reason",
    "unsafe_reason",
    "vault_exists",
    "write_private_dir",
    "write_private_file",
]


class Dir:
    """An open directory of the vault; every operation is relative to its descriptor."""

    def __init__(
        self, path: Path, *, create: bool = False, parent: Dir | None = None, others_may_read: bool = False
    ) -> None:
        """Open *path* (relative to *parent* when given), refusing links and foreign or loose modes.

        :param others_may_read: accept group/other read and search bits (never write bits).
            Only for recording why a vault with such a mode was refused: nobody else can
            change what is in a directory they cannot write.
        """
        self.path = path
        self.fd: int = -1
        name = path.name
        created = False
        try:
            if create:
                try:
                    if parent is not None:
                        os.mkdir(name, DIR_MODE, dir_fd=parent.fd)
                    else:
                        os.mkdir(path, DIR_MODE)
                    created = True
                except FileExistsError:
                    pass
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | O_CLOEXEC
            self.fd = os.open(name, flags, dir_fd=parent.fd) if parent is not None else os.open(path, flags)
        except OSError as exc:
            raise storage_error(exc, "open directory", str(path)) from exc
        try:
            if created:
                # mkdir's mode is filtered by the umask; set it exactly before anything is written.
                os.fchmod(self.fd, DIR_MODE)
            check_owner_only(os.fstat(self.fd), str(path), is_dir=True, others_may_read=others_may_read)
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def sub(self, name: str, *, create: bool = False) -> Dir:
        """Open (or create) a subdirectory, refusing links and foreign modes."""
        return Dir(self.path / name, create=create, parent=self)

    def _path(self, name: str) -> str:
        return str(self.path / name)

    def read(self, name: str, *, max_size: int) -> bytes:
        """Read a whole file that must be a regular, owner-only, single-link file.

        :raises FileNotFoundError: the file does not exist (callers map it).
        """
        fd = self._open_checked(name, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if st.st_size > max_size:
                raise StorageError(f"{self._path(name)} is {st.st_size} bytes, over the limit of {max_size}")
            chunks = []
            remaining = st.st_size + 1  # one more byte detects a file that grew under us
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 24))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)
        except OSError as exc:
            if isinstance(exc, StorageError | UnsafePermissions):
                raise
            raise storage_error(exc, "read", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def read_prefix(self, name: str, size: int) -> tuple[bytes, int]:
        """Read the first *size* bytes of a checked file; return them and the file size."""
        fd = self._open_checked(name, os.O_RDONLY)
        try:
            return os.pread(fd, size, 0), os.fstat(fd).st_size
        except OSError as exc:
            raise storage_error(exc, "read", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def is_unchanged(self, name: str, head: bytes, size: int) -> bool:
        """Whether *name* is still *size* bytes long and begins with *head*: the file a
        reader cached (a container's header holds a data key wrapped afresh for every
        rewrite).  Never by inode: a file system may give a freed inode to the next new file
        at once (ext4 does), so a file rewritten twice by others can come back at the inode
        and size we knew.  False when it is missing or not a file we would read."""
        if not head:
            return False  # nothing read or written yet
        try:
            prefix, actual = self.read_prefix(name, len(head))
        except (FileNotFoundError, StorageError, UnsafePermissions):
            return False
        return actual == size and prefix == head

    def read_tail(self, name: str, size: int) -> tuple[bytes, int]:
        """Read the last *size* bytes of a checked file; return them and the file size."""
        fd = self._open_checked(name, os.O_RDONLY)
        try:
            total = os.fstat(fd).st_size
            start = max(0, total - size)
            return os.pread(fd, total - start, start), total
        except OSError as exc:
            raise storage_error(exc, "read", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[tuple[Callable[[int, int], bytes], int]]:
        """A checked file open for positioned reads: yields ``(read_at, size)``, where
        ``read_at(offset, n)`` returns the *n* bytes at *offset* (fewer only at the end)."""
        fd = self._open_checked(name, os.O_RDONLY)
        try:

            def read_at(offset: int, n: int) -> bytes:
                try:
                    return os.pread(fd, n, offset)
                except OSError as exc:
                    raise storage_error(exc, "read", self._path(name), opened=True) from exc

            yield read_at, os.fstat(fd).st_size
        finally:
            os.close(fd)

    def append_at(self, name: str, offset: int, data: bytes) -> int:
        """Write *data* at *offset* of an existing checked file, cutting off whatever followed
        *offset* first (a torn append of a killed writer), and fsync it.  Returns the new size.

        The caller holds the file's lock and has read the file up to *offset*.
        """
        fd = self._open_checked(name, os.O_WRONLY)
        try:
            if os.fstat(fd).st_size != offset:
                os.ftruncate(fd, offset)
            view, pos = memoryview(data), offset
            try:
                while view:
                    written = os.pwrite(fd, view, pos)
                    view, pos = view[written:], pos + written
                os.fsync(fd)
            except OSError:
                # Cut off again: readers must not see a group whose writer was told it failed.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, offset)
                    os.fsync(fd)
                raise
            return pos
        except OSError as exc:
            raise storage_error(exc, "append to", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def truncate(self, name: str, length: int) -> None:
        """Cut a checked file to *length* bytes and fsync it (a torn append's tail; the caller
        holds the file's lock and has read it up to *length*)."""
        fd = self._open_checked(name, os.O_WRONLY)
        try:
            os.ftruncate(fd, length)
            os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, "truncate", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def open_checked(self, name: str, *, write: bool = False) -> int:
        """A descriptor of *name*, checked as :meth:`read` checks it (regular, owner-only,
        single-link, no link followed), for a reader that reads it its own way (an index
        segment). The caller closes it. :raises FileNotFoundError: no such file."""
        return self._open_checked(name, os.O_RDWR if write else os.O_RDONLY)

    def _open_checked(self, name: str, flags: int) -> int:
        """Open a vault file that must be regular, owner-only and single-link.

        What is there is looked at (``lstat``) before it is opened: a device, a FIFO or a
        hard-linked file is refused without being opened (opening a device runs its driver;
        opening someone else's file for writing is not ours to do).  The ``fstat`` after the
        open checks again what was opened.  O_NONBLOCK and O_NOCTTY: a FIFO or a terminal
        swapped in between must neither hang the opener nor become its controlling terminal.
        :raises FileNotFoundError: the file does not exist (callers map it).
        """
        for attempt in range(_REPLACED_RETRIES + 1):
            try:
                seen = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                if seen.st_nlink == 0 and attempt < _REPLACED_RETRIES:
                    # The same race one step earlier: the name resolved to a file an atomic
                    # write renamed over before its attributes were read.  Look again.
                    continue
                check_owner_only(seen, self._path(name), is_dir=False)
                fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | O_CLOEXEC, dir_fd=self.fd)
            except (FileNotFoundError, UnsafePermissions):
                raise
            except OSError as exc:
                raise storage_error(exc, "open", self._path(name)) from exc
            try:
                st = os.fstat(fd)
                # Renamed over by an atomic write once opened (a reader racing a writer): not a
                # hard link but a file no longer there; the one there now is opened instead.
                replaced = st.st_nlink == 0 and attempt < _REPLACED_RETRIES
                if not replaced:
                    check_owner_only(st, self._path(name), is_dir=False)
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def check(self, name: str) -> None:
        """Refuse *name* unless it is a regular, owner-only, single-link file (or missing),
        without opening it."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_error(exc, "inspect", self._path(name)) from exc
        check_owner_only(st, self._path(name), is_dir=False)

    def identity(self, name: str) -> tuple[int, int, int, int] | None:
        """What *name* is now (device, inode, change time, size; never followed), or None when
        it is missing: a reader compares it before and after a read to tell a file replaced
        under it from a damaged one."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage_error(exc, "inspect", self._path(name)) from exc
        return st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size

    def exists(self, name: str) -> bool:
        """Whether *name* exists (as anything, links included, never followed)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def write_atomic(self, name: str, data: bytes, *, overwrite_old: bool = False, sync_dir: bool = True) -> bool:
        """Replace *name* with *data*: temp file, fsync, rename, fsync(dir).

        :param sync_dir: False leaves the directory's fsync to the caller (one :meth:`fsync`
            after many replaces), who must make it before anything names the new file.

        :param overwrite_old: also overwrite the content of the file replaced (a key file):
            it is opened (checked) before the rename and, once the rename is durable and no
            name links it any more, zeroed and truncated through that descriptor.  A rename
            leaves the old inode's blocks as they were; this is the only way to reach them
            without a window in which *name* is missing or half-written.  Best effort on the
            medium (docs/secure-deletion.md), and never a reason to fail a replace that is done.
        :returns: whether an old file's content was overwritten.
        """
        old = -1
        if overwrite_old:
            # Missing, or not a file we may write (a link, a mode of 0400, another owner): the
            # replace goes ahead as a plain rename over it, with nothing overwritten.
            with contextlib.suppress(FileNotFoundError, StorageError, UnsafePermissions):
                old = self._open_checked(name, os.O_WRONLY)
        try:
            self._write_atomic(name, data, sync_dir=sync_dir)
            if old < 0:
                return False
            try:
                st = os.fstat(old)
                if st.st_nlink != 0:  # still reachable by a name: not ours to overwrite
                    return False
                zero_and_truncate(old, st.st_size)
            except OSError:
                return False
            return True
        finally:
            if old >= 0:
                os.close(old)

    def _new_temp(self) -> tuple[str, int]:
        """A new empty temp file, owner-only, under a name the sweep knows (rule 8), and its
        open descriptor."""
        tmp = f"{TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | O_CLOEXEC, FILE_MODE, dir_fd=self.fd
            )
        except OSError as exc:
            raise storage_error(exc, "create a file in", str(self.path)) from exc
        return tmp, fd

    def _write_atomic(self, name: str, data: bytes, *, sync_dir: bool = True) -> None:
        tmp, fd = self._new_temp()
        opened = True
        try:
            try:
                os.fchmod(fd, FILE_MODE)
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            opened = False
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise storage_error(exc, "write", self._path(name), opened=opened) from exc
        if sync_dir:
            self.fsync()

    def write_unsynced(self, data: bytes) -> tuple[str, int]:
        """A new temp file holding *data*, not fsynced yet, and its open descriptor: the first
        half of a replace (rule 3) whose fsync and rename the caller makes later, many at once
        (:meth:`fsync_all`, :meth:`rename_in`), or whose file it removes (:meth:`drop_temp`).
        A writer killed between leaves a temp file, swept like any other (rule 8)."""
        tmp, fd = self._new_temp()
        try:
            os.fchmod(fd, FILE_MODE)
            write_all(fd, data)
        except OSError as exc:
            self.drop_temp(tmp, fd)
            raise storage_error(exc, "write", self._path(tmp), opened=True) from exc
        return tmp, fd

    def fsync_all(self, fds: list[int]) -> None:
        """fsync every file of *fds*, from threads: a journal commit then serves many files,
        where one fsync after another waits for one commit each (docs/design.md, "Pull").

        :raises StorageError: an fsync failed (the first one, once all ended).
        """
        if len(fds) <= 1:
            for fd in fds:
                self._fsync_file(fd)
            return
        threads = min(_SYNC_THREADS, len(fds))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sessionseal-fsync") as pool:
            for f in [pool.submit(self._fsync_file, fd) for fd in fds]:
                f.result()

    def _fsync_file(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, "sync a file in", str(self.path), opened=True) from exc

    def rename_in(self, tmp: str, name: str) -> None:
        """Give the temp file *tmp* (:meth:`write_unsynced`, fsynced and closed) its name
        *name*; the caller fsyncs the directory before anything names the new file.  On failure
        the temp file is removed."""
        try:
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise storage_error(exc, "write", self._path(name)) from exc

    def drop_temp(self, tmp: str, fd: int = -1) -> None:
        """Close *fd* (if open) and remove the temp file *tmp* (if named), best effort (a
        leftover is swept)."""
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)

    def append(self, name: str, data: bytes, *, sync: bool = True) -> None:
        """Append *data* to an existing checked file with ``O_APPEND`` and fsync it (unless
        *sync* is false: for caches whose readers verify what they read)."""
        fd = self._open_checked(name, os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, data)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, "append to", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def unlink(self, name: str, *, missing_ok: bool = True) -> None:
        """Remove *name* (never following links) and make the removal durable."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise
            return
        except OSError as exc:
            raise storage_error(exc, "remove", self._path(name)) from exc
        self.fsync()

    def shred(self, name: str) -> bool:
        """Move *name* aside, overwrite it with zeros, fsync, truncate, fsync, then unlink it.

        The name goes first (a durable rename to a temp name): a process killed midway leaves
        a temp file for :meth:`sweep_temp`, never a zeroed file under a live name that would
        read as damage.  Best effort on the medium only (docs/secure-deletion.md): journaling,
        copy-on-write file systems and flash translation layers may keep the old blocks.  The
        guarantee is crypto-erase, done before this.  A file moved aside that could not be
        overwritten is unlinked all the same before the error is raised (a dead writer's temp
        file is left for the next sweep).  Returns False when it was already gone.
        """
        try:
            # Checked like every open: never through a link, a FIFO, a device or a hard link.
            fd = self._open_checked(name, os.O_WRONLY)
        except FileNotFoundError:
            return False
        aside = name
        if not name.startswith(TMP_PREFIX):
            aside = f"{TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
            try:
                os.rename(name, aside, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except BaseException as exc:
                os.close(fd)
                if isinstance(exc, OSError):
                    raise storage_error(exc, "remove", self._path(name)) from exc
                raise
        try:
            if aside != name:
                self.fsync()
            zero_and_truncate(fd, os.fstat(fd).st_size)
        except BaseException as exc:
            os.close(fd)
            if aside != name:
                # Removed all the same: a temp file of this process is not swept while it lives.
                with contextlib.suppress(OSError):
                    os.unlink(aside, dir_fd=self.fd)
            if isinstance(exc, OSError) and not isinstance(exc, StorageError | UnsafePermissions):
                raise storage_error(exc, "overwrite", self._path(name), opened=True) from exc
            raise
        os.close(fd)
        self.unlink(aside)
        return True

    def sweep_temp(self) -> list[str]:
        """Overwrite and remove temp files whose writer is dead; return their names.

        A writer killed between creating its temp file and renaming it leaves the file
        behind.  It may hold key material (a key file being rewritten by a rotation), so it is
        shredded, not just unlinked.  A temp file of a live process, or of one we cannot tell
        about, is left alone.
        """
        swept = []
        for name in self.names():
            if temp_writer(name) != "exited":
                continue
            with contextlib.suppress(UnsafePermissions, StorageError, FileNotFoundError):
                if self.shred(name):
                    swept.append(name)
        return swept

    def fsync(self) -> None:
        """Make renames and unlinks in this directory durable."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise storage_error(exc, "sync directory", str(self.path), opened=True) from exc

    def names(self) -> list[str]:
        """Entries of the directory (names only; nothing is followed)."""
        try:
            return os.listdir(self.fd)
        except OSError as exc:
            raise storage_error(exc, "list", str(self.path)) from exc
