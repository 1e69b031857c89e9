"""Whether any process has a file open for writing (Linux), before an imported original is removed.

An agent that keeps its transcript open (Codex holds its rollout open for the whole session)
is still writing it, however long it has been quiet.  Two ways to tell, the first preferred:

* **A read lease** (``fcntl(F_SETLEASE, F_RDLCK)``).  The kernel grants it only when no open
  file description of the inode, in any process of any user or namespace, has it open for
  writing (its write count is zero), and refuses with ``EAGAIN`` otherwise.  It is complete
  and costs two system calls.  The lease is released at once: it is a question, not a lock.
  A writer that opens the file in the instant the lease is held waits for that instant, and
  the kernel signals the lease holder; the signal is set to ``SIGURG``, which is ignored
  unless a program asks for it, so that the default ``SIGIO`` cannot end the process.
* **A scan of /proc** where leases are unavailable (a file system without them, such as NFS
  or FUSE, or ``fs.leases-enable = 0``): every ``/proc/PID/fd/N`` that is the same inode,
  and its ``fdinfo`` flags.  A process whose descriptors cannot be read (another user's; one
  of ours that is not dumpable: ssh-agent, gpg-agent, a sessionseal run) makes the answer
  *unknown* when it runs as us, or when the file is writable by others than us: the caller
  keeps the file then.

Other systems have neither; the caller relies on its other checks there (docs/importing.md).
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Final

__all__ = ["SUPPORTED", "open_for_writing"]

#: Whether this platform can tell at all.
SUPPORTED: Final = sys.platform.startswith("linux")
_PROC: Final = "/proc"


def open_for_writing(fd: int, st: os.stat_result) -> bool | None:
    """Whether some process has the file of *fd* (a read-only descriptor of ours; *st* its
    fstat) open for writing: True, False, or None when that cannot be told."""
    if not SUPPORTED:
        return None
    lease = _lease_probe(fd)
    return lease if lease is not None else scan_proc(st)


def _lease_probe(fd: int) -> bool | None:
    import fcntl
    import signal

    try:
        # Before the lease: a break in the instant it is held must not deliver SIGIO.
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return True  # the inode's write count is not zero
        return None  # EINVAL (no leases here), EACCES, ENOLCK...: ask /proc
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def scan_proc(st: os.stat_result) -> bool | None:
    """The /proc answer for the inode of *st* (also used when leases are unavailable)."""
    me = os.geteuid()
    others_may_write = bool(st.st_mode & 0o022)
    unknown = False
    try:
        pids = [p for p in os.listdir(_PROC) if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = f"{_PROC}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # it exited
        except OSError:
            unknown = unknown or others_may_write or _runs_as(pid, me) is not False
            continue
        for name in fds:
            try:
                target = os.stat(f"{fd_dir}/{name}")
            except OSError:
                continue  # closed meanwhile, or a descriptor that cannot be followed
            if (target.st_dev, target.st_ino) != (st.st_dev, st.st_ino):
                continue
            flags = _fd_flags(pid, name)
            if flags is None:
                unknown = True
            elif flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                return True
    return None if unknown else False


def _runs_as(pid: str, uid: int) -> bool | None:
    """Whether process *pid* has *uid* among its user ids (status is readable by all, even
    for a process whose other entries are root's because it is not dumpable)."""
    try:
        with open(f"{_PROC}/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return uid in {int(v) for v in line.split()[1:]}
    except FileNotFoundError:
        return False  # it exited
    except (OSError, ValueError):
        return None
    return None


def _fd_flags(pid: str, fd: str) -> int | None:
    try:
        with open(f"{_PROC}/{pid}/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8)
    except FileNotFoundError:
        return os.O_RDONLY  # closed meanwhile: not a writer
    except (OSError, ValueError, IndexError):
        return None
    return None
