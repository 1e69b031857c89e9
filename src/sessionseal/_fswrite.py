"""Files written and removed by path, outside a vault directory (an export, an imported
original), owner-only and atomic as :class:`sessionseal._fs.Dir` writes inside one; and the
low-level write, overwrite and fsync steps both share.  Re-exported by :mod:`sessionseal._fs`."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Final

from ._fscheck import DIR_MODE, FILE_MODE, O_CLOEXEC, check_owner_only, pid_alive, storage_error
from .errors import InvalidInput, StorageError, UnsafePermissions


def write_all(fd: int, data: bytes) -> None:
    # os.write may write less than asked (a signal, a pipe, a full quota's edge).
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def zero_and_truncate(fd: int, size: int) -> None:
    """Overwrite the first *size* bytes with zeros, fsync, truncate to nothing, fsync."""
    zeros = bytes(1 << 20)
    left = size
    while left > 0:
        left -= os.write(fd, zeros[: min(left, len(zeros))])
    os.fsync(fd)
    os.ftruncate(fd, 0)
    os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
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
    swept = list[str]()
    try:
        # One descriptor for the listing, the checks and the unlinks: a directory renamed or
        # swapped for another meanwhile cannot turn the sweep on files elsewhere.
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
    except OSError:
        return swept
    try:
        for name in os.listdir(dfd):
            pid = _export_temp_pid(name, path.name)
            if pid is None or pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if (
                    stat.S_ISREG(st.st_mode)
                    and stat.S_IMODE(st.st_mode) == FILE_MODE
                    and st.st_uid == os.geteuid()
                    and st.st_nlink == 1
                ):
                    os.unlink(name, dir_fd=dfd)
                    swept.append(name)
        if swept:
            with contextlib.suppress(OSError):
                os.fsync(dfd)
    finally:
        os.close(dfd)
    return swept


def _open_unnamed(dfd: int) -> int | None:
    """An unnamed file in the directory *dfd* (``O_TMPFILE``), or None where there is no such thing.

    It has no name until it is linked: a process killed while writing it leaves nothing
    behind.  Linking needs ``/proc/self/fd`` (``linkat(AT_SYMLINK_FOLLOW)``).
    """
    if not _O_TMPFILE or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(".", _O_TMPFILE | os.O_WRONLY | O_CLOEXEC, FILE_MODE, dir_fd=dfd)
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
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)
    except OSError as exc:
        raise storage_error(exc, "write", str(path)) from exc
    try:
        fd = _open_unnamed(dfd)
        if fd is None:
            _write_private_named(path, data, overwrite=overwrite)
            return
        _link_unnamed(dfd, fd, path, data, overwrite=overwrite)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, "write", str(path)) from exc
    finally:
        os.close(dfd)


def write_private_dir(path: Path, files: dict[str, bytes], *, overwrite: bool = False) -> None:
    """Write *files* (name -> bytes) into the directory *path* (an export of several pages),
    each as :func:`write_private_file` writes one: owner-only (0600), atomically.

    The directory is created owner-only (0700).  One that exists is written into only with
    *overwrite*, and only when it is a directory of ours that nobody else can enter (not a
    link): files of the same names are replaced, every other file is left as it is.

    :raises InvalidInput: *path* exists and *overwrite* is false, or it is not a directory.
    :raises UnsafePermissions: it is a link, someone else's, or open to others.
    :raises StorageError: it cannot be created or written.
    """
    try:
        os.mkdir(path, DIR_MODE)
        os.chmod(path, DIR_MODE, follow_symlinks=False)  # mkdir's mode went through the umask
    except FileExistsError:
        _check_existing_dir(path, overwrite=overwrite)
    except OSError as exc:
        raise storage_error(exc, "create directory", str(path)) from exc
    for name, data in files.items():
        write_private_file(path / name, data, overwrite=overwrite)


def _check_existing_dir(path: Path, *, overwrite: bool) -> None:
    if not overwrite:
        raise InvalidInput(f"{path} exists; choose another directory or allow overwriting (--force)")
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise storage_error(exc, "inspect", str(path)) from exc
    if not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        raise InvalidInput(f"{path} exists and is not a directory; an HTML export of several sessions is one")
    check_owner_only(st, str(path), is_dir=True)


def _link_unnamed(dfd: int, fd: int, path: Path, data: bytes, *, overwrite: bool) -> None:
    """Fill the unnamed file *fd*, then give it *path*'s name (in the directory *dfd*)."""
    tmp: str | None = None
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            write_all(fd, data)
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise storage_error(exc, "write", str(path)) from exc
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # the mode the sweep recognises, whatever the umask
            write_all(fd, data)
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
        raise storage_error(exc, "write", str(path)) from exc
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
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | O_CLOEXEC)
    except OSError as exc:
        raise storage_error(exc, "overwrite", str(path)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
            raise UnsafePermissions(f"{path} is not a regular file of yours with one link; it was left in place")
        if expect is not None and _file_stamp(st) != _file_stamp(expect):
            raise StorageError(f"{path} changed since it was checked; it was left in place")
        zero_and_truncate(fd, st.st_size)
        # Unlink only the file we overwrote: not one renamed into its place meanwhile.
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise UnsafePermissions(f"{path} was replaced while it was overwritten; it was left in place")
        os.unlink(path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if isinstance(exc, UnsafePermissions | StorageError):
            raise
        raise storage_error(exc, "overwrite", str(path)) from exc
    finally:
        os.close(fd)


def _file_stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
