"""An index build on several processes: :func:`analyze_many` and :func:`segments`.

The parent reads the sessions (it holds the keys and decrypts, at C speed) and hands each
session's stored text to a pool of worker processes, which tokenize it (:func:`pack`, the
Python-speed part) and send back its packed postings. What crosses, and what does not:

- Workers are started with the ``spawn`` method, never ``fork``: a forked child would be a copy
  of the parent's memory, keys and decrypted sessions included. A spawned one is a fresh
  interpreter that receives, through a pipe, multiprocessing's preparation data (``sys.path``,
  the working directory, the main module's path) and then only pickled :class:`Doc` s (a
  session id, its generation, its sanitized text) and returns :class:`PackedDoc` s. No key, no
  key store, no vault object is ever pickled to a worker.
- Nothing touches the disk: the text goes through the pool's pipes, in memory.
- A worker hardens itself (:func:`~sessionseal._harden.harden_process`: no core dump, its
  ``/proc`` files closed to other processes, as the parent's) and drops the secret environment
  variables it inherited (``spawn`` passes the parent's environment; the ``sessionseal``
  command removed them from its own at start).
- Memory is bounded: at most ``in_flight`` sessions (default twice the workers) are in the
  pipes or waiting to be consumed, in order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.pool import AsyncResult
from typing import Final

from .. import _harden
from ._analyze import Doc, PackedDoc, pack
from ._build import SegmentBuilder

__all__ = ["SEGMENT_TEXT", "analyze_many", "segments"]

#: A segment holds about this much original text (characters), which bounds an erase's rewrite
#: (docs/design.md, "The format (d), to implement").
SEGMENT_TEXT: Final = 64_000_000


def _worker_start() -> None:
    _harden.harden_process()
    _harden.take_secret_env()


def analyze_many(
    docs: Iterable[Doc], *, workers: int, in_flight: int | None = None
) -> Generator[PackedDoc, None, None]:
    """:func:`pack` of each of *docs*, in order, on *workers* processes (0 or 1: in this one).

    The same as ``map(pack, docs)``, byte for byte (terms in the same order too). *docs* is consumed lazily: at most
    *in_flight* sessions are out at once. Closing the iterator early stops the workers.
    """
    if workers <= 1:
        yield from map(pack, docs)
        return
    limit = max(1, in_flight if in_flight is not None else 2 * workers)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_start) as pool:
        pending: deque[AsyncResult[PackedDoc]] = deque()
        for doc in docs:
            pending.append(pool.apply_async(pack, (doc,)))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def segments(
    docs: Iterable[Doc],
    *,
    workers: int,
    max_text: int = SEGMENT_TEXT,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[SegmentBuilder]:
    """*docs* analyzed on *workers* processes, gathered into segments of at most *max_text*
    characters of text each (a session larger than that makes a segment of its own).

    Yields each filled :class:`SegmentBuilder`; the caller seals it with ``.build(vault_id,
    segment_id, key)`` under a fresh key and writes it. *progress* is called after each session
    with the sessions and characters analyzed so far. Each session at most once.
    """
    builder = SegmentBuilder()
    chars = 0
    for done, packed in enumerate(analyze_many(docs, workers=workers), 1):
        if len(builder) and builder.size + packed.size > max_text:
            yield builder
            builder = SegmentBuilder()
        builder.add(packed)
        chars += packed.size
        if progress is not None:
            progress(done, chars)
    if len(builder):
        yield builder
