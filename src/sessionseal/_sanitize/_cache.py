"""An on-disk cache for the sanitizer's start-up work: the parsed rule catalogue and the
compiled Hyperscan database, so each ``sessionseal sanitize`` process need not redo them.

Entries live in a ``sanitizer`` folder of ``$SESSIONSEAL_CACHE_DIR`` (set it empty to turn
the cache off), else of the user cache dir (``$XDG_CACHE_HOME/sessionseal``, by default
``~/.cache/sessionseal``; ``~/Library/Caches/sessionseal`` on macOS).  That folder must be a
real directory owned by this user with no group or other permissions (it is created so), and
an entry must be a regular file owned by this user, readable by no one else.  An entry is
named after a hash of everything it was built from (its inputs and the library versions)
and starts with a SHA-256 of its content.  Whatever is missing, foreign, too open,
truncated or unreadable is ignored and rebuilt; writes are atomic (a temporary file, then
a rename).  The cache holds rule data and compiled patterns only: never text, never a
secret.  POSIX only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from typing import Final

__all__ = ["cache_dir", "load", "store"]

_MAGIC: Final = b"sessionseal-cache-1\n"
_DIGEST: Final = 32
#: Entries kept per folder; the oldest beyond this are removed when a new one is written.
_KEEP: Final = 16


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
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def _entry(folder: str, name: str, key: bytes) -> str:
    return os.path.join(folder, f"{name}-{hashlib.sha256(key).hexdigest()[:40]}")


def load(name: str, key: bytes) -> bytes | None:  # noqa: PLR0911 - every check refuses on its own
    """The content stored under *name* for *key*, or None (never an error)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or not _private(st):
            return None
        fd = os.open(_entry(folder, name, key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _private(st):
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read()
        finally:
            os.close(fd)
    except OSError:
        return None
    head = len(_MAGIC) + _DIGEST
    if len(raw) < head or not raw.startswith(_MAGIC):
        return None
    data = raw[head:]
    if hashlib.sha256(data).digest() != raw[len(_MAGIC) : head]:
        return None
    return data


def store(name: str, key: bytes, data: bytes) -> None:
    """Keep *data* under *name* for *key*, if the cache folder is usable (never an error)."""
    folder = cache_dir()
    if folder is None:
        return
    tmp = None
    try:
        os.makedirs(os.path.dirname(folder), mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or not _private(st):
            return
        path = _entry(folder, name, key)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + hashlib.sha256(data).digest() + data)
        os.replace(tmp, path)
        tmp = None
        _trim(folder)
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _trim(folder: str) -> None:
    """Remove the oldest entries beyond :data:`_KEEP` (rule sets and library versions change)."""
    with os.scandir(folder) as it:
        entries = [e for e in it if e.is_file(follow_symlinks=False)]
    if len(entries) <= _KEEP:
        return
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns)
    for e in entries[: len(entries) - _KEEP]:
        with contextlib.suppress(OSError):
            os.unlink(e.path)
