"""The kill point the sync kill tests' child processes set (tests/integration/test_sync_kill.py
and its neighbours): a method wrapped so that the process SIGKILLs itself right after its n-th
call returns (or the first call whose arguments the test names), a real kill at a real point of
the code, never an exception it could clean up."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The repository's root: a child that imports this module runs there (``cwd=ROOT``).
ROOT: str = str(Path(__file__).resolve().parents[2])


def kill_after(owner: Any, name: str, n: int) -> None:
    """Replace *owner*'s attribute *name* (a function or method) with one that kills the process
    after the *n*-th call of it has returned."""
    original = getattr(owner, name)
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)


def kill_when(owner: Any, name: str, when: Callable[..., bool]) -> None:
    """Replace *owner*'s attribute *name* with one that kills the process after the first call
    of it, with arguments for which *when* is true, has returned: a point named by the state
    the call writes, where the number of calls before it is not fixed (a push that saves its
    cursor once more when a timestamp has settled, say)."""
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)
