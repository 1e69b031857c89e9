"""An index build on several processes (:func:`analyze_many`, :func:`segments`) or on threads
of this one (:func:`overlapped`).

The parent reads the sessions (it holds the keys and decrypts, at C speed) and hands each
session's stored text to a pool of worker processes, which tokenize it (:func:`pack`, the
Python-speed part) and send back its packed postings; a full segment's postings go back to a
worker to be grouped by term (:meth:`SegmentBuilder.invert`, per posting), and the parent
only places the distinct terms in buckets and seals (the keyed steps). What crosses, and what
does not:

- Workers are started with the ``spawn`` method, never ``fork``: a forked child would be a copy
  of the parent's memory, keys and decrypted sessions included. A spawned one is a fresh
  interpreter that receives, through a pipe, multiprocessing's preparation data (``sys.path``,
  the working directory, the main module's path) and then only pickled :class:`Doc` s (a
  session id, its generation, its sanitized text) and :class:`SegmentBuilder` s (postings),
  and returns :class:`PackedDoc` s and :class:`Inverted` s. No key, no key store, no vault
  object is ever pickled to a worker: bucket placement (HMAC under the segment's terms key)
  and sealing happen in the parent.
- Nothing touches the disk: the text goes through the pool's pipes, in memory.
- A worker hardens itself (:func:`~sessionseal._harden.harden_process`: no core dump, its
  ``/proc`` files closed to other processes, as the parent's) and drops the secret environment
  variables it inherited (``spawn`` passes the parent's environment; the ``sessionseal``
  command removed them from its own at start).
- Memory is bounded: at most ``in_flight`` sessions (default twice the workers) are in the
  pipes or waiting to be consumed, in order.

:func:`overlapped` is the one-process form for two cores (docs/design.md, "Build speed"): the
caller packs sessions on its reading threads (the accelerator's scans run without the GIL), and
one more thread inverts and seals each full segment while the next one is gathered. Threads
share the process: no key, text or posting leaves it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.pool
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.pool import AsyncResult
from typing import Final, TypeVar

from .. import _harden
from ._analyze import Doc, PackedDoc, pack
from ._build import Inverted, SegmentBuilder

__all__ = ["SEGMENT_TEXT", "analyze_many", "overlapped", "segments"]

T = TypeVar("T")

#: A segment holds about this much original text (characters), which bounds an erase's rewrite
#: (docs/design.md, "The format (d), as designed").
SEGMENT_TEXT: Final = 64_000_000


def _worker_start() -> None:
    _harden.harden_process()
    _harden.take_secret_env()


def analyze_many(
    docs: Iterable[Doc], *, workers: int, in_flight: int | None = None
) -> Generator[PackedDoc, None, None]:
    """:func:`pack` of each of *docs*, in order, on *workers* processes (0 or 1: in this one).

    The same as ``map(pack, docs)``, byte for byte (terms in the same order too). *docs* is
    consumed lazily: at most *in_flight* sessions are out at once. Closing the iterator early
    stops the workers.
    """
    if workers <= 1:
        yield from map(pack, docs)
        return
    with _pool(workers) as pool:
        yield from _in_order(pool, docs, in_flight if in_flight is not None else 2 * workers)


def segments(
    docs: Iterable[Doc],
    *,
    workers: int,
    max_text: int = SEGMENT_TEXT,
    progress: Callable[[int, int], None] | None = None,
) -> Generator[Inverted, None, None]:
    """*docs* analyzed and inverted on *workers* processes (0 or 1: in this one), gathered into
    segments of at most *max_text* characters of text each (a larger session makes a segment
    of its own).

    Yields each segment's :class:`Inverted` postings, in order; the caller seals each with
    ``.build(vault_id, segment_id, key)`` under a fresh key (the keyed steps stay in this
    process) and writes it. *progress* is called after each session with the sessions and
    characters analyzed so far. Each session at most once. A worker inverts a full segment
    while this process reads the next one's sessions; at most two segments are out at once.
    """
    if workers <= 1:
        for builder in _gather(map(pack, docs), max_text, progress):
            yield builder.invert()
        return
    with _pool(workers) as pool:
        inverting: deque[AsyncResult[Inverted]] = deque()
        for builder in _gather(_in_order(pool, docs, 2 * workers), max_text, progress):
            inverting.append(pool.apply_async(_invert, (builder,)))
            del builder
            while len(inverting) > 1 or inverting[0].ready():
                yield inverting.popleft().get()
                if not inverting:
                    break
        while inverting:
            yield inverting.popleft().get()


def overlapped(
    packed: Iterable[PackedDoc],
    seal: Callable[[Inverted], T],
    *,
    max_text: int = SEGMENT_TEXT,
    progress: Callable[[int, int], None] | None = None,
) -> Generator[T, None, None]:
    """*packed* gathered into segments as :func:`segments` gathers them (the same sessions in
    the same order, so the same segments), each inverted and given to *seal* on one more thread
    while this one gathers the next; yields what *seal* returns, in order.

    At most two segments are in memory: the one gathered and the one sealed (a full segment
    waits for the one before it). *progress* is called on this thread after each session, as
    :func:`segments` calls it. An error of *seal* is raised here, and closing the iterator
    early waits for a seal under way and starts no other.
    """
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fts-seal") as pool:
        sealing: concurrent.futures.Future[T] | None = None
        try:
            for builder in _gather(packed, max_text, progress):
                if sealing is not None:
                    yield sealing.result()
                # In a box the thread empties: the builder's columns go as soon as it is inverted
                # (the executor keeps a task's arguments until the task returns).
                sealing = pool.submit(_invert_seal, [builder], seal)
                del builder
            if sealing is not None:
                yield sealing.result()
                sealing = None
        finally:
            if sealing is not None:
                sealing.cancel()


def _invert_seal(box: list[SegmentBuilder], seal: Callable[[Inverted], T]) -> T:
    return seal(box.pop().invert())  # seal's argument alone holds the postings: it may drop them


def _pool(workers: int) -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_start)


def _in_order(pool: multiprocessing.pool.Pool, docs: Iterable[Doc], in_flight: int) -> Iterator[PackedDoc]:
    pending: deque[AsyncResult[PackedDoc]] = deque()
    for doc in docs:
        pending.append(pool.apply_async(pack, (doc,)))
        if len(pending) >= max(1, in_flight):
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _invert(builder: SegmentBuilder) -> Inverted:
    return builder.invert()


def _gather(
    packed: Iterable[PackedDoc], max_text: int, progress: Callable[[int, int], None] | None
) -> Iterator[SegmentBuilder]:
    builder = SegmentBuilder()
    chars = 0
    for done, doc in enumerate(packed, 1):
        if len(builder) and builder.size + doc.size > max_text:
            yield builder
            builder = SegmentBuilder()
        builder.add(doc)
        chars += doc.size
        if progress is not None:
            progress(done, chars)
    if len(builder):
        yield builder
