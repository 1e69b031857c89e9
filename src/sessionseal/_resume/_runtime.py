"""The private homes a resume writes plaintext into, and their removal.

Each resume that runs the agent gets a fresh directory under the vault's own ``run/`` (0700,
in a 0700 vault: no world-listable name in /tmp), marked with a file that names the process
that made it.  When the agent exits the directory is shredded (every file overwritten, then
unlinked: the same best effort as the vault's own deletions, docs/secure-deletion.md).  A
resume that was killed leaves its directory behind; the next resume, or ``resume --cleanup``,
shreds it once its marker proves it is one of ours and its process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Final, Literal

from .._fs import shred_file
from .._fscheck import pid_alive, unsafe_reason
from ..errors import SessionSealError, StorageError, UnsafePermissions

#: The vault's directory of resume homes.
RUN_DIR: Final = "run"
#: The file that marks a home as made by sessionseal resume, and by which process.
MARKER: Final = ".sessionseal-resume"
#: Home directory names: this prefix, then mkdtemp's random part.
_PREFIX: Final = "resume-"


def run_dir(vault_path: Path) -> Path:
    """The vault's ``run/`` directory, created 0700; refused if it is not a private directory of ours."""
    path = Path(vault_path) / RUN_DIR
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise UnsafePermissions(f"{path} is not a private directory of yours (0700); nothing was written")
    return path


def new_home(run: Path, tool: str) -> Path:
    """A fresh private home under *run*, marked as this process's."""
    home = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=run))  # 0700, a name nobody else can take
    marker = {"pid": os.getpid(), "created": time.time(), "tool": tool}
    fd = os.open(home / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(marker, f)
    return home


def read_marker(home: Path) -> dict[str, Any]:
    """A home's marker; empty when it has none (then the home is not ours to remove)."""
    try:
        with (home / MARKER).open() as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def note(home: Path, **fields: Any) -> None:
    """Add *fields* to a home's marker (replaced whole: a reader sees the old or the new one)."""
    marker = {**read_marker(home), **fields}
    tmp = home / (MARKER + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(marker, f)
    os.replace(tmp, home / MARKER)


def _owner_pid(home: Path) -> int | None:
    pid = read_marker(home).get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def leftovers(run: Path) -> list[Path]:
    """Homes under *run* that killed resumes left: marked, and their process is gone."""
    out = []
    try:
        names = sorted(os.listdir(run))
    except FileNotFoundError:
        return []
    for name in names:
        home = run / name
        if not name.startswith(_PREFIX) or not home.is_dir() or home.is_symlink():
            continue
        pid = _owner_pid(home)
        if read_marker(home).get("abandoned") is True or (pid is not None and not pid_alive(pid)):
            out.append(home)
    return out


def home_status(home: Path) -> Literal["running", "leftover", "unproven"]:
    """What ``verify`` makes of a private directory under ``run/``: the home of a resume whose
    process is ``"running"``; a ``"leftover"`` that :func:`leftovers` (``resume --cleanup``)
    takes; or ``"unproven"``: no resume's name or marker, nothing proves it is one of ours."""
    try:
        marked = home.name.startswith(_PREFIX) and stat.S_ISREG(os.lstat(home / MARKER).st_mode)
    except OSError:
        marked = False
    pid = _owner_pid(home) if marked else None
    if marked and read_marker(home).get("abandoned") is True:
        return "leftover"
    if pid is None:
        return "unproven"
    return "running" if pid_alive(pid) else "leftover"


def survey(run: Path) -> tuple[int, list[tuple[Literal["error", "warning"], str, str, str]]]:
    """``verify``'s look at *run* (the vault's ``run/``, itself checked as a private directory):
    how many entries it holds, and a (severity, code, name, message) for each that is not the
    home of a running resume.  Nothing is followed, opened for writing or removed: a leftover
    is for ``resume --cleanup`` (it seals back what the agent added before it shreds), and
    anything unproven is the user's to judge."""
    problems: list[tuple[Literal["error", "warning"], str, str, str]] = []
    try:
        names = sorted(os.listdir(run))
    except OSError:
        return 0, problems
    for name in names:
        path = run / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # shredded while we looked: a resume that ended
        is_dir = stat.S_ISDIR(st.st_mode)
        reason = unsafe_reason(st, str(path), is_dir=is_dir)
        if reason is not None:
            problems.append(("error", "unsafe", name, reason))
            continue
        status = home_status(path) if is_dir else "unproven"
        if status == "leftover":
            what = "the home of a resume that was killed: it holds the resumed session in plaintext"
            problems.append(("warning", "resume-leftover", name, f"{what}; run 'sessionseal resume --cleanup'"))
        elif status == "unproven":
            what = "not a resume's home (no resume marker), so sessionseal never removes it"
            problems.append(("warning", "unknown-entry", name, f"{what}; it may hold plaintext: inspect and remove it"))
    return len(names), problems


def shred_tree(home: Path) -> list[str]:
    """Overwrite and unlink every file under *home*, then remove its directories; the marker
    goes last.  Symbolic links are unlinked, never followed.  Returns what could not be
    removed (paths relative to *home*; never content)."""
    failed: list[str] = []
    for top, dirs, files in os.walk(home, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = Path(top, name)
            if path == home / MARKER:
                continue
            try:
                if path.is_symlink() or not path.is_file():
                    path.unlink()
                else:
                    _shred(path)
            except (OSError, SessionSealError):
                failed.append(str(path.relative_to(home)))
        if Path(top) != home:
            with contextlib.suppress(OSError):
                os.rmdir(top)
    if not failed:
        with contextlib.suppress(FileNotFoundError):
            (home / MARKER).unlink()
        try:
            os.rmdir(home)
        except OSError:
            failed.append(".")
    return failed


def _shred(path: Path) -> None:
    try:
        shred_file(path)
    except UnsafePermissions:
        # A second hard link (the agent linked a file elsewhere): overwriting would destroy
        # the other name's data too, so this name is only unlinked.
        path.unlink()


def remove_run_dir(run: Path) -> None:
    """Remove ``run/`` once it is empty: an idle vault holds no such directory."""
    with contextlib.suppress(OSError):
        os.rmdir(run)


def check_removed(home: Path, failed: list[str]) -> None:
    """Raise when a home could not be removed whole: its plaintext is still on disk."""
    if failed:
        raise StorageError(
            f"{home}: {len(failed)} file(s) of the resumed session could not be removed; "
            "run 'sessionseal resume --cleanup' or remove the directory"
        )
