"""An on-disk cache for the sanitizer's start-up work: the parsed rule catalogue and the
compiled Hyperscan database, so each ``sessionseal sanitize`` process need not redo them.

Entries live in a ``sanitizer`` folder of ``$SESSIONSEAL_CACHE_DIR`` (set it empty to turn
the cache off), else of the user cache dir (``$XDG_CACHE_HOME/sessionseal``, by default
``~/.cache/sessionseal``; ``~/Library/Caches/sessionseal`` on macOS).

The folder is reached once, component by component from ``/``, each directory opened
``O_DIRECTORY | O_NOFOLLOW`` relative to the one above and checked with ``fstat`` by the
vault's ancestor rule (:mod:`.._ancestors`: ours or root's, and not writable by others
unless sticky); a symlink on the way is followed only when it is ours or root's.  Where
another user could rename or replace something on the way (an ``XDG_CACHE_HOME`` on a
shared tmpfs, a cache dir in someone else's directory), the cache is simply off: that user
could otherwise swap the folder for a link between a check and a use, and have this
process write into, or trim, a directory of its owner's.  The folder itself must be ours
with no group or other permissions (it is created so), and everything after the walk is
done relative to its descriptor: opens, the rename, the listing and the unlinks, which
touch only names of the form of an entry (``<name>-<40 hex digits>``) or of this module's
temporary files.  An entry must be a regular file owned by this user, readable by no one
else.  It is named after a hash of everything it was built from (its inputs and the
library versions) and starts with a SHA-256 of its content.  Whatever is missing, foreign,
too open, truncated or unreadable is ignored and rebuilt; writes are atomic (a temporary
file, then a rename).  The cache holds rule data and compiled patterns only: never text,
never a secret.  POSIX only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
from typing import Final

from .._ancestors import ancestor_fault

__all__ = ["cache_dir", "load", "store"]

_MAGIC: Final = b"sessionseal-cache-1\n"
_DIGEST: Final = 32
#: Entries kept per folder; the oldest beyond this are removed when a new one is written.
_KEEP: Final = 16
_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
#: The only names this module ever removes: entries, and its own temporary files.
_ENTRY: Final = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{40}")
_TEMP: Final = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{40}\.([0-9]{1,10})\.tmp")
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Directories above the folder need only be searchable (a 0711 home): Linux's O_PATH opens
#: them so; elsewhere they must be readable too, or the cache is off.
_PASS_FLAGS: Final = (getattr(os, "O_PATH", 0) or os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Symlinks followed on the way to the folder, at most (as the kernel's own limit).
_MAX_LINKS: Final = 40


def cache_dir() -> str | None:
    """The folder of the sanitizer's cache entries, or None when caching is off or unsupported."""
    if os.name != "posix" or not hasattr(os, "getuid"):
        return None
    root = os.environ.get("SESSIONSEAL_CACHE_DIR")
    if root is None:
        home = os.path.expanduser("~")
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        if sys.platform == "darwin":
            base = os.path.join(home, "Library", "Caches")
        elif not os.path.isabs(base):
            base = os.path.join(home, ".cache")
        root = os.path.join(base, "sessionseal")
    if not root or not os.path.isabs(root):  # off, or no home directory to put it in
        return None
    return os.path.join(root, "sanitizer")


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _entry(name: str, key: bytes) -> str:
    return f"{name}-{hashlib.sha256(key).hexdigest()[:40]}"


def _open_folder(*, create: bool) -> int | None:
    """A descriptor of the cache folder, or None when the cache is off, missing (unless
    *create*), or anything on the way to it could be changed by another user."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return _walk(folder, create=create)
    except OSError:
        return None


def _walk(path: str, *, create: bool) -> int | None:  # noqa: PLR0911 - every refusal returns on its own
    """Open the directory *path* (absolute) from ``/`` down, never through a directory or a
    link another user could change; create what is missing (0700) when *create*."""
    parts = [p for p in path.split("/") if p and p != "."]
    parts.reverse()  # a stack: the next component last
    fd = os.open("/", _PASS_FLAGS)
    links = 0
    try:
        if ancestor_fault(os.fstat(fd)) is not None:
            return None
        while parts:
            name = parts.pop()
            flags = _PASS_FLAGS if parts else _DIR_FLAGS  # the folder itself is listed
            try:
                nfd = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)  # the umask can only narrow it
                nfd = os.open(name, flags, dir_fd=fd)
            except OSError:
                # A symlink (ELOOP or ENOTDIR under O_NOFOLLOW) above the folder is followed only
                # when it is ours or root's: nobody else can have put it in a directory that passed
                # the check (nor, in a sticky one, replace it).  The folder itself is never a link.
                if not parts or links >= _MAX_LINKS:
                    return None
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()):
                    return None
                links += 1
                target = os.readlink(name, dir_fd=fd)
                parts.extend(reversed([p for p in target.split("/") if p and p != "."]))
                if target.startswith("/"):
                    os.close(fd)
                    fd = -1
                    fd = os.open("/", _PASS_FLAGS)
                continue
            os.close(fd)
            fd = nfd
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode) or ancestor_fault(st) is not None:
                return None
        if not _private(os.fstat(fd)):
            return None
        found, fd = fd, -1
        return found
    finally:
        if fd >= 0:
            os.close(fd)


def load(name: str, key: bytes) -> bytes | None:
    """The content stored under *name* for *key*, or None (never an error)."""
    folder = _open_folder(create=False)
    if folder is None:
        return None
    try:
        return _load_at(folder, _entry(name, key))
    except OSError:
        return None
    finally:
        os.close(folder)


def _load_at(folder: int, entry: str) -> bytes | None:
    # O_NONBLOCK: a FIFO in an entry's place must not hang the reader.
    fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _private(st):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
    finally:
        os.close(fd)
    head = len(_MAGIC) + _DIGEST
    if len(raw) < head or not raw.startswith(_MAGIC):
        return None
    data = raw[head:]
    if hashlib.sha256(data).digest() != raw[len(_MAGIC) : head]:
        return None
    return data


def store(name: str, key: bytes, data: bytes) -> None:
    """Keep *data* under *name* for *key*, if the cache folder is usable (never an error)."""
    if not _NAME.fullmatch(name):
        return
    folder = _open_folder(create=True)
    if folder is None:
        return
    try:
        _store_at(folder, _entry(name, key), data)
    except OSError:
        pass
    finally:
        os.close(folder)


def _store_at(folder: int, entry: str, data: bytes) -> None:
    """Write *entry* in the folder open as *folder* (a temporary file, then a rename), and trim."""
    tmp = f"{entry}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
    renamed = False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + hashlib.sha256(data).digest() + data)
        os.replace(tmp, entry, src_dir_fd=folder, dst_dir_fd=folder)
        renamed = True
        _trim(folder)
    finally:
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)


def _trim(folder: int) -> None:
    """Remove the oldest entries beyond :data:`_KEEP` (rule sets and library versions change),
    and temporary files of writers that have exited.  Nothing else is ever removed."""
    me = os.geteuid()
    entries: list[tuple[int, str]] = []
    with os.scandir(folder) as it:
        for e in it:
            if not e.is_file(follow_symlinks=False):
                continue
            if _ENTRY.fullmatch(e.name):
                st = e.stat(follow_symlinks=False)
                if st.st_uid == me:
                    entries.append((st.st_mtime_ns, e.name))
            elif (m := _TEMP.fullmatch(e.name)) and not _alive(int(m[1])):
                with contextlib.suppress(OSError):
                    os.unlink(e.name, dir_fd=folder)
    entries.sort()
    for _, name in entries[: max(0, len(entries) - _KEEP)]:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's, or unknowable: leave its file alone
    return True
