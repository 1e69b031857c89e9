"""Owner-only, no-follow, atomic file operations, and the only importer of ``filelock``.

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
import errno
import itertools
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Literal

import filelock

from ._ancestors import ancestor_fault
from .errors import InvalidInput, LockTimeout, StorageError, UnsafePermissions

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "Dir",
    "check_ancestors",
    "check_vault_dir",
    "lock",
    "shred_file",
    "sweep_export_temps",
    "temp_writer",
    "unreachable_reason",
    "unsafe_reason",
    "vault_exists",
    "write_private_file",
]

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
#: Temp files carry the writer's pid so a later open can tell a dead writer's leftovers.
TMP_PREFIX: Final = ".tmp-"
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


#: What to say about an OS error, by errno (the default: :data:`_OTHER`).
_ADVICE: Final = {
    errno.ENOSPC: "no space left to {what} {path}; free disk space and retry",
    errno.EDQUOT: "disk quota exceeded to {what} {path}; free space or raise the quota, and retry",
    errno.EROFS: "cannot {what} {path}: the file system is read-only; remount it read-write and retry",
    # On a descriptor opened and checked already: not the vault's modes or owner.
    errno.EACCES: "cannot {what} {path}: {reason} (refused by the file system, not by the file's mode: an "
    "immutable or append-only file, a network or FUSE mount?); check the file system and retry",
}
_OTHER: Final = "cannot {what} {path}: {reason}; check the disk and the file system (kernel log), then retry"


def _storage_error(exc: OSError, what: str, path: str, *, opened: bool = False) -> StorageError | UnsafePermissions:
    """The error to raise for *exc*: one line that names *path* and says what to do.

    :param opened: the call was on a descriptor already opened and checked (a write, an
        fsync, a truncate): a refusal there comes from the file system, not from the vault's
        modes or owner, which the open checked.
    """
    if exc.errno == errno.ELOOP:
        return UnsafePermissions(f"{path} is a symlink; sessionseal never follows links inside a vault")
    if exc.errno == errno.ENOTDIR:
        # O_DIRECTORY | O_NOFOLLOW on a symlink fails with ENOTDIR on Linux.
        return UnsafePermissions(f"{path} is not a directory (or is a symlink); sessionseal never follows links")
    code = errno.EACCES if exc.errno == errno.EPERM else (exc.errno or 0)
    if code == errno.EACCES and not opened:
        return UnsafePermissions(f"permission denied to {what} {path}; check that you own the vault")
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return StorageError(_ADVICE.get(code, _OTHER).format(what=what, path=path, reason=reason))


def unsafe_reason(  # noqa: PLR0911 - one return per reason
    st: os.stat_result, path: str, *, is_dir: bool, others_may_read: bool = False
) -> str | None:
    """Why an entry of a vault must not be trusted (a link, a device, another owner, a loose
    mode, a second link), as one line that says what to do; None when it is safe."""
    kind = "directory" if is_dir else "file"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symlink; sessionseal never follows links inside a vault"
    if is_dir and not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory; move it away or choose another --vault"
    if not is_dir and not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file; remove it (sessionseal never reads devices or FIFOs)"
    if st.st_uid != os.geteuid():
        return f"{kind} {path} is owned by uid {st.st_uid}, not by you; refusing to use it"
    if st.st_mode & (0o022 if others_may_read else 0o077):
        mode = stat.S_IMODE(st.st_mode)
        want = DIR_MODE if is_dir else FILE_MODE
        return (
            f"{kind} {path} has mode {mode:04o}, readable or writable by others; run 'chmod {want:o} {path}' "
            "if you trust its contents"
        )
    if not is_dir and st.st_nlink != 1:
        return f"{path} has {st.st_nlink} hard links; a vault file must have exactly one"
    return None


def _check_owner_only(st: os.stat_result, path: str, *, is_dir: bool, others_may_read: bool = False) -> None:
    reason = unsafe_reason(st, path, is_dir=is_dir, others_may_read=others_may_read)
    if reason is not None:
        raise UnsafePermissions(reason)


def check_vault_dir(path: Path) -> None:
    """Refuse a vault directory that is a symlink, not ours, or open to others."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise _storage_error(exc, "inspect", str(path)) from exc
    _check_owner_only(st, str(path), is_dir=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process, or unknowable: assume alive
    return True


def temp_writer(name: str) -> Literal["running", "exited"] | None:
    """Whether the writer of a temp file may still be ``"running"`` or has ``"exited"`` (the
    file is a leftover); None when *name* is not one of our temp files."""
    if not name.startswith(TMP_PREFIX):
        return None
    pid_text = name[len(TMP_PREFIX) :].split("-", 1)[0]
    return "running" if not pid_text.isdigit() or _alive(int(pid_text)) else "exited"


def check_ancestors(path: Path) -> None:
    """Refuse a vault whose parent directories let another user replace it.

    A parent that others can write (without the sticky bit) or that another non-root
    user owns could rename the vault away and put their own in its place.
    """
    for parent in path.parents:
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            continue  # 'init' creates it (0700, ours) under the ancestors checked here
        except PermissionError:
            raise UnsafePermissions(unreachable_reason(parent)) from None
        except OSError as exc:
            raise _storage_error(exc, "inspect", str(parent)) from exc
        fault = ancestor_fault(st)
        if fault == "owner":
            raise UnsafePermissions(
                f"{parent} (a parent of the vault) is owned by uid {st.st_uid}, who could replace the vault; "
                "choose a --vault under your home directory"
            )
        if fault == "writable":
            raise UnsafePermissions(
                f"{parent} (a parent of the vault) is world-writable without the sticky bit; "
                "choose a --vault under your home directory"
            )


def vault_exists(path: Path) -> bool:
    """Whether anything is at *path* (a link included, never followed); False when nothing is.

    :raises UnsafePermissions: a directory above *path* is closed to this user (another user's
        home, say): there may well be a vault there, so "no vault" would not be true.
    """
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise UnsafePermissions(unreachable_reason(path)) from None
    except OSError as exc:
        raise _storage_error(exc, "inspect", str(path)) from exc
    return True


def unreachable_reason(path: Path) -> str:
    """Why *path*, which the kernel refused to look up (EACCES), cannot be reached: which
    directory above it is closed to this user, and whose it is, as one line."""
    chain = [*reversed(path.parents), path]
    for above, below in itertools.pairwise(chain):
        try:
            os.lstat(below)
        except PermissionError:
            try:
                st = os.stat(above)
            except OSError:
                break
            if st.st_uid != os.geteuid():
                return (
                    f"cannot reach {path}: {above} belongs to uid {st.st_uid} and is closed to you (permission "
                    "denied); sessionseal opens only your own vault: check --vault, SESSIONSEAL_VAULT and HOME"
                )
            return (
                f"cannot reach {path}: {above} has mode {stat.S_IMODE(st.st_mode):04o}, which does not let you in "
                f"(permission denied); run 'chmod u+rwx {above}'"
            )
        except OSError:
            break
    return f"permission denied to inspect {path}; check that you own the vault"


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
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC
            self.fd = os.open(name, flags, dir_fd=parent.fd) if parent is not None else os.open(path, flags)
        except OSError as exc:
            raise _storage_error(exc, "open directory", str(path)) from exc
        try:
            if created:
                # mkdir's mode is filtered by the umask; set it exactly before anything is written.
                os.fchmod(self.fd, DIR_MODE)
            _check_owner_only(os.fstat(self.fd), str(path), is_dir=True, others_may_read=others_may_read)
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
            raise _storage_error(exc, "read", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def read_prefix(self, name: str, size: int) -> tuple[bytes, int]:
        """Read the first *size* bytes of a checked file; return them and the file size."""
        fd = self._open_checked(name, os.O_RDONLY)
        try:
            return os.pread(fd, size, 0), os.fstat(fd).st_size
        except OSError as exc:
            raise _storage_error(exc, "read", self._path(name), opened=True) from exc
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
            raise _storage_error(exc, "read", self._path(name), opened=True) from exc
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
                    raise _storage_error(exc, "read", self._path(name), opened=True) from exc

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
            raise _storage_error(exc, "append to", self._path(name), opened=True) from exc
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
            raise _storage_error(exc, "truncate", self._path(name), opened=True) from exc
        finally:
            os.close(fd)

    def _open_checked(self, name: str, flags: int) -> int:
        """Open a vault file that must be regular, owner-only and single-link.

        What is there is looked at (``lstat``) before it is opened: a device, a FIFO or a
        hard-linked file is refused without being opened (opening a device runs its driver;
        opening someone else's file for writing is not ours to do).  The ``fstat`` after the
        open checks again what was opened.  O_NONBLOCK and O_NOCTTY: a FIFO or a terminal
        swapped in between must neither hang the opener nor become its controlling terminal.
        :raises FileNotFoundError: the file does not exist (callers map it).
        """
        try:
            _check_owner_only(os.stat(name, dir_fd=self.fd, follow_symlinks=False), self._path(name), is_dir=False)
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _O_CLOEXEC, dir_fd=self.fd)
        except (FileNotFoundError, UnsafePermissions):
            raise
        except OSError as exc:
            raise _storage_error(exc, "open", self._path(name)) from exc
        try:
            _check_owner_only(os.fstat(fd), self._path(name), is_dir=False)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def check(self, name: str) -> None:
        """Refuse *name* unless it is a regular, owner-only, single-link file (or missing),
        without opening it."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _storage_error(exc, "inspect", self._path(name)) from exc
        _check_owner_only(st, self._path(name), is_dir=False)

    def identity(self, name: str) -> tuple[int, int, int, int] | None:
        """What *name* is now (device, inode, change time, size; never followed), or None when
        it is missing: a reader compares it before and after a read to tell a file replaced
        under it from a damaged one."""
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage_error(exc, "inspect", self._path(name)) from exc
        return st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size

    def exists(self, name: str) -> bool:
        """Whether *name* exists (as anything, links included, never followed)."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def write_atomic(self, name: str, data: bytes, *, overwrite_old: bool = False) -> bool:
        """Replace *name* with *data*: temp file, fsync, rename, fsync(dir).

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
            self._write_atomic(name, data)
            if old < 0:
                return False
            try:
                st = os.fstat(old)
                if st.st_nlink != 0:  # still reachable by a name: not ours to overwrite
                    return False
                _zero_and_truncate(old, st.st_size)
            except OSError:
                return False
            return True
        finally:
            if old >= 0:
                os.close(old)

    def _write_atomic(self, name: str, data: bytes) -> None:
        tmp = f"{TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _O_CLOEXEC, FILE_MODE, dir_fd=self.fd
            )
        except OSError as exc:
            raise _storage_error(exc, "create a file in", str(self.path)) from exc
        opened = True
        try:
            try:
                os.fchmod(fd, FILE_MODE)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            opened = False
            os.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.fd)
            raise _storage_error(exc, "write", self._path(name), opened=opened) from exc
        self.fsync()

    def append(self, name: str, data: bytes, *, sync: bool = True) -> None:
        """Append *data* to an existing checked file with ``O_APPEND`` and fsync it (unless
        *sync* is false: for caches whose readers verify what they read)."""
        fd = self._open_checked(name, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            raise _storage_error(exc, "append to", self._path(name), opened=True) from exc
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
            raise _storage_error(exc, "remove", self._path(name)) from exc
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
                    raise _storage_error(exc, "remove", self._path(name)) from exc
                raise
        try:
            if aside != name:
                self.fsync()
            _zero_and_truncate(fd, os.fstat(fd).st_size)
        except BaseException as exc:
            os.close(fd)
            if aside != name:
                # Removed all the same: a temp file of this process is not swept while it lives.
                with contextlib.suppress(OSError):
                    os.unlink(aside, dir_fd=self.fd)
            if isinstance(exc, OSError) and not isinstance(exc, StorageError | UnsafePermissions):
                raise _storage_error(exc, "overwrite", self._path(name), opened=True) from exc
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
            raise _storage_error(exc, "sync directory", str(self.path), opened=True) from exc

    def names(self) -> list[str]:
        """Entries of the directory (names only; nothing is followed)."""
        try:
            return os.listdir(self.fd)
        except OSError as exc:
            raise _storage_error(exc, "list", str(self.path)) from exc


def _write_all(fd: int, data: bytes) -> None:
    # os.write may write less than asked (a signal, a pipe, a full quota's edge).
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _zero_and_truncate(fd: int, size: int) -> None:
    """Overwrite the first *size* bytes with zeros, fsync, truncate to nothing, fsync."""
    zeros = bytes(1 << 20)
    left = size
    while left > 0:
        left -= os.write(fd, zeros[: min(left, len(zeros))])
    os.fsync(fd)
    os.ftruncate(fd, 0)
    os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


#: ``open(2)`` of an unnamed file in a directory (Linux 3.11+).  Not every file system has it.
_O_TMPFILE: Final = getattr(os, "O_TMPFILE", 0)
_NO_TMPFILE: Final = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)  # EISDIR: a kernel without it


def _export_temp_name(target: str) -> str:
    return f".{target}.tmp-{os.getpid()}-{os.urandom(6).hex()}"


def _export_temp_pid(name: str, target: str) -> int | None:
    """The writer's pid when *name* is what :func:`_export_temp_name` makes for *target*."""
    prefix = f".{target}.tmp-"
    if not name.startswith(prefix):
        return None
    pid, _, nonce = name[len(prefix) :].partition("-")
    if not (pid.isdigit() and len(nonce) == 12 and all(c in "0123456789abcdef" for c in nonce)):
        return None
    return int(pid)


def sweep_export_temps(path: Path) -> list[str]:
    """Remove what an export to *path* killed mid-write left beside it; return the names.

    Only a file that is provably such a leftover goes: its name is the temp name an export
    to this very target makes, its writer's pid is dead, and it is a regular file of ours,
    mode 0600, with one link (the mode and owner every export temp file gets).  Anything else,
    even with a matching name, is left alone.
    """
    directory, swept = path.parent, list[str]()
    try:
        names = os.listdir(directory)
    except OSError:
        return swept
    for name in names:
        pid = _export_temp_pid(name, path.name)
        if pid is None or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            st = os.lstat(directory / name)
            if (
                stat.S_ISREG(st.st_mode)
                and stat.S_IMODE(st.st_mode) == FILE_MODE
                and st.st_uid == os.geteuid()
                and st.st_nlink == 1
            ):
                os.unlink(directory / name)
                swept.append(name)
    if swept:
        with contextlib.suppress(OSError):
            _fsync_dir(directory)
    return swept


def _open_unnamed(dfd: int) -> int | None:
    """An unnamed file in the directory *dfd* (``O_TMPFILE``), or None where there is no such thing.

    It has no name until it is linked: a process killed while writing it leaves nothing
    behind.  Linking needs ``/proc/self/fd`` (``linkat(AT_SYMLINK_FOLLOW)``).
    """
    if not _O_TMPFILE or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(".", _O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, FILE_MODE, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write *data* to *path* (outside the vault: an export) owner-only (0600), atomically.

    The data goes to an unnamed file in the same directory (``O_TMPFILE``), is fsynced, then
    linked to *path* (which fails if *path* exists, so nothing is clobbered).  A process
    killed before that leaves no file at all.  With *overwrite*, the file is linked to a temp
    name and renamed over *path*: a kill in the microseconds between leaves a temp file.
    Where unnamed files are not available (macOS, some network and FUSE file systems) the
    data is written to a named temp file in the directory from the start.  Either way, each
    export first removes the temp files earlier exports to the same *path* left when killed
    (:func:`sweep_export_temps`).  The directory is fsynced; nothing is followed at a temp name.

    :raises InvalidInput: *path* exists and *overwrite* is false.
    :raises StorageError: the file cannot be written.
    """
    sweep_export_temps(path)
    try:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    except OSError as exc:
        raise _storage_error(exc, "write", str(path)) from exc
    try:
        fd = _open_unnamed(dfd)
        if fd is None:
            _write_private_named(path, data, overwrite=overwrite)
            return
        _link_unnamed(dfd, fd, path, data, overwrite=overwrite)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise _storage_error(exc, "write", str(path)) from exc
    finally:
        os.close(dfd)


def _link_unnamed(dfd: int, fd: int, path: Path, data: bytes, *, overwrite: bool) -> None:
    """Fill the unnamed file *fd*, then give it *path*'s name (in the directory *dfd*)."""
    tmp: str | None = None
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            _write_all(fd, data)
            os.fsync(fd)
            # dst_dir_fd makes this linkat(AT_SYMLINK_FOLLOW): the file behind the descriptor.
            if overwrite:
                tmp = _export_temp_name(path.name)
                os.link(f"/proc/self/fd/{fd}", tmp, dst_dir_fd=dfd, follow_symlinks=True)
            else:
                try:
                    os.link(f"/proc/self/fd/{fd}", path.name, dst_dir_fd=dfd, follow_symlinks=True)
                except FileExistsError:
                    raise InvalidInput(f"{path} exists; choose another file or allow overwriting (--force)") from None
        finally:
            os.close(fd)
        if tmp is not None:
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            tmp = None
        os.fsync(dfd)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)


def _write_private_named(path: Path, data: bytes, *, overwrite: bool) -> None:
    """:func:`write_private_file` through a named temp file (no ``O_TMPFILE`` here)."""
    directory = path.parent
    tmp = directory / _export_temp_name(path.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise _storage_error(exc, "write", str(path)) from exc
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # the mode the sweep recognises, whatever the umask
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path, follow_symlinks=False)
            except FileExistsError:
                raise InvalidInput(f"{path} exists; choose another file or allow overwriting (--force)") from None
            os.unlink(tmp)
        _fsync_dir(directory)
    except OSError as exc:
        raise _storage_error(exc, "write", str(path)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def shred_file(path: Path, *, expect: os.stat_result | None = None) -> None:
    """Overwrite a file outside the vault (an imported original) with zeros, fsync, truncate,
    fsync, unlink, fsync its directory: the same best effort as :meth:`Dir.shred`.

    Only a regular file with one link, owned by us, opened without following a link: a
    symlink, FIFO, device or hard link in its place is refused, never written through.
    With *expect* (the fstat its caller checked), only that file, of that size and time:
    one that changed since is left in place.

    :raises UnsafePermissions: not such a file.
    :raises StorageError: it could not be overwritten or removed.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise _storage_error(exc, "overwrite", str(path)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
            raise UnsafePermissions(f"{path} is not a regular file of yours with one link; it was left in place")
        if expect is not None and _file_stamp(st) != _file_stamp(expect):
            raise StorageError(f"{path} changed since it was checked; it was left in place")
        _zero_and_truncate(fd, st.st_size)
        # Unlink only the file we overwrote: not one renamed into its place meanwhile.
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafePermissions(f"{path} was replaced while it was overwritten; it was left in place")
        os.unlink(path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if isinstance(exc, UnsafePermissions | StorageError):
            raise
        raise _storage_error(exc, "overwrite", str(path)) from exc
    finally:
        os.close(fd)


def _file_stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _check_lock_file(path: Path) -> None:
    """Refuse a lock file that is a link, a FIFO, a device, hard-linked, not ours or open to others,
    before filelock opens it (it opens by path, following nothing but the last component's parents)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # filelock creates it, 0600, with O_EXCL | O_NOFOLLOW
    except OSError as exc:
        raise _storage_error(exc, "lock", str(path)) from exc
    _check_owner_only(st, str(path), is_dir=False)


def _holder_writer(path: Path) -> Callable[[int], None]:
    def write_holder(fd: int) -> None:
        # What was opened is checked again (it may have been swapped since _check_lock_file): the
        # pid is written only into a lock file of ours, never through a hard link or into a device.
        # A raise here makes filelock release the lock and re-raise.
        _check_owner_only(os.fstat(fd), str(path), is_dir=False)
        # Record the holder's pid in the lock file so a waiter that times out can name it.
        # filelock opens lock files without O_TRUNC (a loser must not wipe the holder's
        # record), so we overwrite in place.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)

    return write_holder


def _holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _O_CLOEXEC)
        try:
            pid = int(os.read(fd, 32).decode().strip() or "0")
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return "another process"
    if pid <= 0:
        return "another process"
    return f"pid {pid}" if _alive(pid) else f"pid {pid} (which has exited; retry)"


@contextlib.contextmanager
def lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* for the block.

    ``flock`` locks die with their process, so a killed holder never blocks anyone.

    :raises LockTimeout: not acquired within *timeout* seconds; names the holder's pid.
    """
    _check_lock_file(path)
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
        raise _storage_error(exc, "lock", str(path)) from exc
    try:
        yield
    finally:
        fl.release()
