"""Checks of what a vault is made of and where it lives: owner-only modes, no links, safe
ancestors, temp files' writers; and the one-line errors OS failures become (docs/design.md,
"Vault tree").  Re-exported by :mod:`sessionseal._fs`."""

from __future__ import annotations

import errno
import itertools
import os
import stat
from pathlib import Path
from typing import Final, Literal

from ._ancestors import ancestor_fault
from .errors import StorageError, UnsafePermissions

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
#: Temp files carry the writer's pid so a later open can tell a dead writer's leftovers.
TMP_PREFIX: Final = ".tmp-"
O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


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


def storage_error(exc: OSError, what: str, path: str, *, opened: bool = False) -> StorageError | UnsafePermissions:
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


def check_owner_only(st: os.stat_result, path: str, *, is_dir: bool, others_may_read: bool = False) -> None:
    reason = unsafe_reason(st, path, is_dir=is_dir, others_may_read=others_may_read)
    if reason is not None:
        raise UnsafePermissions(reason)


def check_vault_dir(path: Path) -> None:
    """Refuse a vault directory that is a symlink, not ours, or open to others."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise storage_error(exc, "inspect", str(path)) from exc
    check_owner_only(st, str(path), is_dir=True)


def pid_alive(pid: int) -> bool:
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
    return "running" if not pid_text.isdigit() or pid_alive(int(pid_text)) else "exited"


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
            raise storage_error(exc, "inspect", str(parent)) from exc
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
        raise storage_error(exc, "inspect", str(path)) from exc
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
