"""The kill point the sync kill tests' child processes set (tests/integration/test_sync_kill.py
and its neighbours): a method wrapped so that the process SIGKILLs itself right after its n-th
call returns, a real kill at a real point of the code, never an exception it could clean up."""

from __future__ import annotations

import os
import signal
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
