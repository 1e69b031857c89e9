"""Keep what is in this process's memory off the disk and away from other processes.

A sessionseal process holds plaintext sessions, session keys, the vault secret and perhaps a
passphrase.  A core dump writes all of that to disk, where systemd-coredump and apport keep it
(issue #18).  As gpg-agent and ssh-agent do, :func:`harden_process` sets ``RLIMIT_CORE`` to 0
(soft and hard, so nothing later in the process raises it) and, on Linux, ``PR_SET_DUMPABLE``
to 0: the kernel then writes no core at all (whatever ``core_pattern`` pipes to), and the
process's ``/proc/PID/`` files that show memory or the environment (``mem``, ``maps``,
``environ``, ``fd``) are owned by root, so another process of the same user cannot read them
nor ptrace-attach (root still can).

The ``sessionseal`` command also takes ``SESSIONSEAL_PASSPHRASE`` and
``SESSIONSEAL_BUNDLE_PASSPHRASE`` out of its environment at start (:func:`take_secret_env`):
no child process (the sanitizer's workers, anything a later version runs) inherits them.
``unsetenv`` does not scrub the environment block the kernel copied at ``execve``, which
``/proc/PID/environ`` shows; ``PR_SET_DUMPABLE`` 0 is what keeps that file from other
processes of the user.
"""

from __future__ import annotations

import os
import sys
from typing import Final

__all__ = ["SECRET_ENV", "harden_process", "take_secret_env"]

#: The variables that may hold a secret; the command removes them from its environment at start.
SECRET_ENV: Final = ("SESSIONSEAL_PASSPHRASE", "SESSIONSEAL_BUNDLE_PASSPHRASE")
_PR_SET_DUMPABLE: Final = 4


def harden_process() -> bool:
    """Keep this process's memory out of core dumps and, on Linux, from other processes.

    Sets ``RLIMIT_CORE`` to 0 (soft and hard: it cannot be raised again, and child processes
    inherit it) and, on Linux, ``prctl(PR_SET_DUMPABLE, 0)`` (kept across ``fork``, reset by
    ``execve`` for the program it runs).  Call it once, early, in a program that embeds
    sessionseal; the ``sessionseal`` command calls it at start.  It never raises.

    :returns: whether every protection this platform offers is in place (Windows offers none
        of these: True).
    """
    ok = True
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: no core files of this kind
        resource = None  # type: ignore[assignment]
    if resource is not None:
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ValueError, OSError):  # pragma: no cover - lowering a limit is always allowed
            ok = False
    if sys.platform.startswith("linux"):
        ok = _not_dumpable() and ok
    return ok


def _not_dumpable() -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl (musl has it; static builds may not)
        return False


def take_secret_env() -> dict[str, str]:
    """Remove :data:`SECRET_ENV` from ``os.environ`` (and the C environment); return them.

    Only for a process that is the ``sessionseal`` command: a program that runs the command
    line in-process keeps its environment as it is.
    """
    taken = {}
    for name in SECRET_ENV:
        value = os.environ.pop(name, None)  # os.environ.pop calls unsetenv too
        if value is not None:
            taken[name] = value
    return taken


# Shown as sessionseal.harden_process in tracebacks and docs, where the public facade exports it.
harden_process.__module__ = "sessionseal"
