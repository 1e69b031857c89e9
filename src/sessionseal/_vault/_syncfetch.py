"""Parallel GETs for ``sync --pull`` (docs/sync.md, "Pull"): a pull reads one log entry
and one content object per change, each a small object, and a GET one at a time spends the pull
waiting on round trips (``rclone copy``, the baseline, keeps several transfers in flight).

Fetching is all this module does: what it returns is bytes as the server gave them, checked by
the caller exactly as a GET of its own would be (the log's MAC chain; an object's size, hash
before decryption, then its size before decompression).  The order in which changes are applied,
and so the pull cursor's crash-safety, do not depend on it: :class:`Prefetch` fetches ahead in
the order the caller will ask, and the caller asks in apply order.

A caller may also have each planned object's bytes worked on in the thread that fetched them
(*then*: a pull checks an object's hash, decrypts and decompresses it there, C code that releases
the GIL, so that the thread applying the changes does not): what it returns, or raises, is what
:meth:`Prefetch.take` gives.

Bounded: at most :data:`WORKERS` requests in flight, and no more than :data:`AHEAD` objects or
:data:`AHEAD_BYTES` (by the sizes their entries name) fetched and not yet taken, so a pull of
large sessions holds no more than that in memory besides the one it applies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .._s3 import S3Store

__all__ = ["AHEAD", "AHEAD_BYTES", "WORKERS", "Prefetch", "get_all"]

#: Requests in flight at once (rclone copy's default is 4 transfers and 8 checkers; boto3's
#: connection pool holds 10).
WORKERS: Final = 8
#: Objects fetched ahead of the one being applied, at most (two of a pull's batches: the next
#: batch's objects arrive while this one is written; with fewer, each batch waited for its
#: second half) ...
AHEAD: Final = 256
#: ... and their sizes together, at most (one larger object is still fetched alone).
AHEAD_BYTES: Final = 64 << 20


def get_all(s3: S3Store, keys: Iterable[str]) -> dict[str, bytes]:
    """Every object of *keys*, fetched :data:`WORKERS` at a time.

    :raises RemoteError: a GET failed (the first failure, once the others ended).
    """
    keys = list(dict.fromkeys(keys))
    if len(keys) <= 1:
        return {k: s3.get(k) for k in keys}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(keys)), thread_name_prefix="sessionseal-get") as pool:
        futures = [(k, pool.submit(s3.get, k)) for k in keys]
        try:
            return {k: f.result() for k, f in futures}
        except BaseException:
            for _, f in futures:
                f.cancel()
            raise


class Prefetch:
    """Objects fetched ahead, in the order the caller will :meth:`take` them.

    Use as a context manager: leaving it cancels what was not fetched yet and waits for the
    requests in flight (no thread outlives the pull).
    """

    def __init__(
        self, s3: S3Store, plan: Iterable[tuple[str, int]], *, then: Callable[[str, bytes], object] | None = None
    ) -> None:
        """*plan*: (key, expected size) in the order they will be taken; a size is only used
        to bound what is held ahead, never trusted.  *then*: called with each planned object's
        key and bytes in the thread that fetched them; :meth:`take` gives what it returns."""
        self._s3, self._then = s3, then
        self._plan: deque[tuple[str, int]] = deque(plan)
        self._ahead: deque[tuple[str, int, Future[object]]] = deque()
        self._bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="sessionseal-prefetch")

    def __enter__(self) -> Prefetch:
        self._fill()
        return self

    def __exit__(self, *exc: object) -> None:
        for _, _, f in self._ahead:
            f.cancel()
        self._ahead.clear()
        self._plan.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        while self._plan and len(self._ahead) < AHEAD:
            key, size = self._plan[0]
            size = max(size, 0)
            if self._ahead and self._bytes + size > AHEAD_BYTES:
                break
            self._plan.popleft()
            self._ahead.append((key, size, self._pool.submit(self._get, key)))
            self._bytes += size

    def _get(self, key: str) -> object:
        data = self._s3.get(key)
        return data if self._then is None else self._then(key, data)

    def take(self, key: str) -> object:
        """The object at *key*: the one fetched ahead (what *then* made of it, when given),
        else its bytes from a GET now (a key out of the plan, e.g. an older object a fork is
        rebuilt from).  Objects planned before *key* and not taken (a change the pull found
        already applied) are dropped.

        :raises RemoteError: its GET failed (or what *then* raised).
        """
        if not any(k == key for k, _, _ in self._ahead):
            return self._s3.get(key)
        while True:
            k, size, future = self._ahead.popleft()
            self._bytes -= size
            if k == key:
                break
            future.cancel()
        try:
            return future.result()
        finally:
            self._fill()
