"""Reading and changing the agents' settings files for ``hooks install|uninstall`` (docs/capture/hooks.md).

Every change is planned first (the file's bytes before and after: ``--dry-run`` shows the diff
and stops there), then made: a 0600 backup of the file as it was, next to it
(``<file>.sessionseal-backup-<UTC time>``; ``.absent`` when there was no file), then the new
content written atomically (a temp file fsynced and renamed over it).  A file that changed
between the read and the write is left as it is.

Uninstall is exact: when the file without sessionseal's hooks is the same JSON, keys in the
same order, as one of its backups (empty hook lists and objects aside), that backup's bytes are
written back (or the file is removed
when the backup says there was none), so a file nobody else changed since the install comes
back byte for byte.  Otherwise sessionseal's entries are taken out and the rest is kept.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sessionseal.errors import InvalidInput, StorageError

from . import _hooks

__all__ = ["Change", "apply", "backups", "plan_install", "plan_uninstall", "read"]

_BACKUP: Final = ".sessionseal-backup-"
_ABSENT: Final = ".absent"
#: Far more than any settings file holds; a bound on what a wrong file costs.
_LIMIT: Final = 16 << 20


@dataclass
class Change:
    """What a command does to one agent's settings file."""

    tool: str
    path: Path
    before: bytes | None  # None: no file
    after: bytes | None  # None: no file (uninstall removes one that install created)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        """A unified diff from the file as it is to the file as it would be."""
        a = [] if self.before is None else self.before.decode("utf-8").splitlines(keepends=True)
        b = [] if self.after is None else self.after.decode("utf-8").splitlines(keepends=True)
        name = str(self.path)
        lines = difflib.unified_diff(
            a, b, "/dev/null" if self.before is None else name, "/dev/null" if self.after is None else name
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def read(path: Path) -> bytes | None:
    """The file's bytes (through a link: a dotfiles manager's link is followed), None if absent."""
    try:
        with open(path, "rb") as f:
            data = f.read(_LIMIT + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _LIMIT:
        raise InvalidInput(f"{path} is over {_LIMIT >> 20} MiB; it is not a settings file, nothing was changed")
    return data


def plan_install(tool: str, command: Callable[[str], str]) -> Change:
    """The file with sessionseal's hooks for *tool* merged in (unchanged when they are there)."""
    path = _hooks.settings_path(tool)
    before = read(path)
    doc = _hooks.load(before, str(path))
    new = _hooks.install(doc, tool, command, str(path))
    after = before if before is not None and _hooks.same(new, doc) else _hooks.dump(new, before)
    return Change(tool, path, before, after)


def plan_uninstall(tool: str) -> Change:
    """The file without sessionseal's hooks: a backup's bytes when it is that backup's JSON."""
    path = _hooks.settings_path(tool)
    before = read(path)
    if before is None:
        return Change(tool, path, None, None)
    doc = _hooks.load(before, str(path))
    new = _hooks.uninstall(doc, str(path))
    if _hooks.same(new, doc):
        return Change(tool, path, before, before)
    bare = _hooks.bare(doc)
    for backup in backups(path):
        if backup.name.endswith(_ABSENT):
            if bare == {} and not path.is_symlink():
                return Change(tool, path, before, None)
            continue
        try:
            data = read(backup)
            if data is not None and _hooks.same(_hooks.bare(_hooks.load(data, str(backup))), bare):
                return Change(tool, path, before, data)
        except (InvalidInput, StorageError, UnicodeDecodeError):
            continue  # not a backup of ours after all, or unreadable: the next one
    return Change(tool, path, before, _hooks.dump(new, before))


def backups(path: Path) -> list[Path]:
    """The backups sessionseal made of *path*, newest first."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    prefix = path.name + _BACKUP
    return [path.parent / n for n in sorted((n for n in names if n.startswith(prefix)), reverse=True)]


def apply(change: Change) -> Path | None:
    """Make *change*: back the file up (0600, next to it), then write it atomically.  Returns
    the backup's path (None when nothing changed).

    :raises StorageError: the file changed since it was read, or cannot be written.
    """
    if not change.changed:
        return None
    # Through a link to the file it names, so that a dotfiles manager's link stays a link.
    target = Path(os.path.realpath(change.path)) if change.path.is_symlink() else change.path
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backup = change.path.parent / f"{change.path.name}{_BACKUP}{stamp}{_ABSENT if change.before is None else ''}"
    _write(backup, change.before or b"", replace=False)
    if read(change.path) != change.before:
        with contextlib.suppress(OSError):
            backup.unlink()
        raise StorageError(f"{change.path} changed while sessionseal was editing it; nothing was changed, run again")
    if change.after is None:
        try:
            target.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot remove {target}: {exc.strerror}") from None
    else:
        _write(target, change.after, replace=True)
    return backup


def _write(path: Path, data: bytes, *, replace: bool) -> None:
    """Write *path* owner-only (0600) and atomically: a temp file in its directory, fsynced,
    then renamed over it (*replace*) or linked to its name (which must not exist yet)."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path, follow_symlinks=False)
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
