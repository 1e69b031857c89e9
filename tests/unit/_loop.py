"""Proof that an ``AsyncVault`` call leaves the event loop free, without counting loop turns
(a count depends on machine speed: a loaded machine gave 7 where a test wanted 20)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

#: Seconds a gated call waits for the loop: far longer than any loop turn; reached only when
#: the loop is blocked, i.e. the call ran on it.
_PATIENCE = 30.0


def gate(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], calls: list[str]) -> Callable[..., Any]:
    """*fn*, run only after the event loop has run a callback scheduled from inside the call.

    If the call ran on the loop's thread, or blocked it, that callback could not run and the
    call fails after :data:`_PATIENCE` seconds; a call in a worker thread goes on at once.
    """
    loop_thread = threading.get_ident()

    @functools.wraps(fn)
    def gated(*args: Any, **kwargs: Any) -> Any:
        assert threading.get_ident() != loop_thread, f"{fn.__name__} ran on the event loop's thread"
        turned = threading.Event()
        loop.call_soon_threadsafe(turned.set)
        assert turned.wait(_PATIENCE), f"the event loop did not run while {fn.__name__} worked"
        calls.append(fn.__name__)
        return fn(*args, **kwargs)

    return gated
