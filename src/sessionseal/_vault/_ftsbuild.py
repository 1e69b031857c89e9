"""The segments of a ``reindex`` (docs/spec/fts-v1.md, "Reindex"; docs/design.md, "Build speed").

The session files are read and decrypted in this process, on :data:`READ_THREADS` threads, at
most :data:`READ_AHEAD` sessions ahead of the build (a vault's sessions are never all in memory:
one can hold 20 MB of text). In this process (a vault smaller than :data:`WORKERS_FROM` bytes
of session files, or a machine of fewer than 3 CPUs: starting workers, or sharing two cores,
costs more than they save) the reading threads also tokenize each session, and one more
thread inverts, places, seals and writes each full segment while the next one is read
(:func:`.._fts.overlapped`): the accelerator's scans and AES-GCM, zstd and the file writes run
without the GIL, so two cores overlap. Elsewhere the sanitized text goes to
:func:`.._fts.segments`, which tokenizes and inverts it on spawned worker processes that never
receive a key; each segment's postings come back and are placed, sealed under a fresh key and
written here, as they come: the keyed steps stay in this process.
Nothing is committed here: the caller writes the manifest naming these segments.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import orjson

from .. import _crypto
from .._fs import Dir
from .._fts import SEGMENT_TEXT, Doc, Inverted, PackedDoc, doc_fields, overlapped, pack, segments
from .._index import stamp_of
from ..errors import SessionSealError
from ._context import VaultContext
from ._ftsfiles import SegmentInfo, Stamp

__all__ = ["READ_AHEAD", "SEGMENT_TEXT", "WORKERS_FROM", "build_segments", "spawn_safe", "workers_for"]

#: Threads that read and decrypt session files (AES-GCM and zstd release the GIL), and in this
#: process tokenize them too (the accelerator's scans release it).
READ_THREADS: Final = 2
#: Sessions read ahead of the build at most (memory: a few sessions' text, not the vault's).
READ_AHEAD: Final = 4
#: Bytes of session files from which the build uses worker processes (measured: docs/design.md).
WORKERS_FROM: Final = 16 << 20

#: ``SessionStore.read_file``: a session file's id, version, stored document and stamp.
ReadFile = Callable[[str], tuple[uuid.UUID, tuple[int, int], bytes, Stamp]]

_T = TypeVar("_T")


def workers_for(ctx: VaultContext, names: Sequence[str]) -> int:
    """Worker processes for a build of *names*: 0 (this process) for a small vault, on fewer
    than 3 CPUs (the workers and the parent then share the cores, and lost to one process at
    every size measured: docs/design.md, "Build speed"), or in a program whose main module a
    spawned worker would run again; else ``min(2, CPUs - 1)`` (the parent keeps a core)."""
    cpus = os.cpu_count() or 1
    if cpus < 3 or not spawn_safe():
        return 0
    total = 0
    for fname in names:
        with contextlib.suppress(OSError):
            total += os.stat(fname, dir_fd=ctx.sessions.fd, follow_symlinks=False).st_size
        if total >= WORKERS_FROM:
            return min(2, cpus - 1)
    return 0


def spawn_safe() -> bool:
    """Whether a ``spawn`` worker can start without running this program's main code again.

    A spawned interpreter imports the parent's ``__main__`` (as ``__mp_main__``) before any
    task: harmless for the ``sessionseal`` command, ``python -m`` a package, ``-c`` or an
    interactive session, but a program without an ``if __name__ == "__main__"`` guard would run
    again in each worker (and each would fail to start its own, for ever). That cannot be seen
    from here, so an embedding program's reindex runs in its own process."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return bool(name == "__main__" or name.endswith(".__main__"))  # multiprocessing skips those
    path = getattr(main, "__file__", None)
    return path is None or os.path.basename(path) == "sessionseal"


def build_segments(
    ctx: VaultContext,
    fts: Dir,
    names: Sequence[str],
    read: ReadFile,
    progress: Callable[[int, int], None] | None,
    *,
    generation: Callable[[int, int], int],
    workers: int | None = None,
) -> tuple[list[SegmentInfo], dict[uuid.UUID, tuple[int, int, int, int]]]:
    """Write the segments of *names*' sessions into *fts* (not named by any manifest yet);
    returns them and, per session indexed, ``(generation, *stamp)``. A session file gone,
    unreadable, or written while it was read is left out (streamed by search until its next
    write). *generation* turns a file's version into its index generation. *progress* is called
    with (bytes done, bytes) of the session files, as each is analyzed or left out."""
    if workers is None:
        workers = workers_for(ctx, names)
    source = _Source(ctx, names, read, progress, generation)

    def seal(inverted: Inverted) -> SegmentInfo:
        info = SegmentInfo(uuid.uuid4(), _crypto.new_key(), [e.session_id for e in inverted.entries], 0, 0)
        info.words = sum(sum(e.lengths) for e in inverted.entries)
        data = inverted.build(ctx.vault_id, info.id, info.key)
        del inverted
        fts.write_atomic(info.name, data)
        info.size = len(data)
        return info

    def analyzed(n: int, _chars: int) -> None:
        source.analyzed(n)

    if workers > 1:
        with contextlib.closing(
            segments(source.docs(), workers=workers, max_text=SEGMENT_TEXT, progress=analyzed)
        ) as inverted:
            return [seal(inv) for inv in inverted], source.stamps
    with contextlib.closing(overlapped(source.packed(), seal, max_text=SEGMENT_TEXT, progress=analyzed)) as sealed:
        return list(sealed), source.stamps


class _Source:
    """The session files as index documents, read a few ahead; counts what is done."""

    def __init__(
        self,
        ctx: VaultContext,
        names: Sequence[str],
        read: ReadFile,
        progress: Callable[[int, int], None] | None,
        generation: Callable[[int, int], int],
    ) -> None:
        self._ctx, self._names, self._read, self._progress = ctx, names, read, progress
        self._generation = generation
        self.stamps: dict[uuid.UUID, tuple[int, int, int, int]] = {}
        self._analyzed = 0
        # Progress counts bytes of session files, not sessions: one 20 MB session among a
        # thousand small ones takes most of the time (each file's size as listed).
        self._sizes = [_size(ctx, n) for n in names] if progress is not None else [0] * len(names)
        self._total = sum(self._sizes)
        self._yielded = [0]  # bytes of the sessions handed to the build, cumulated, in order
        self._skipped = 0  # bytes of the sessions left out

    def analyzed(self, n: int) -> None:
        """*n* sessions analyzed so far (of those handed on, in order: never backwards): with
        those left out, the bytes done."""
        self._analyzed = n
        if self._progress is not None:
            self._progress(self._yielded[n] + self._skipped, self._total)

    def docs(self) -> Iterator[Doc]:
        """The sessions' :class:`Doc` s, in order (for worker processes)."""
        return self._in_order(lambda doc: doc)

    def packed(self) -> Iterator[PackedDoc]:
        """The sessions tokenized (:func:`pack`) on the reading threads, in order."""
        return self._in_order(pack)

    def _in_order(self, finish: Callable[[Doc], _T]) -> Iterator[_T]:
        """Each session read, parsed and given to *finish* on the reading threads; yielded in
        the order of the names (the segments do not depend on the threads' timing)."""
        with concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="reindex") as pool:
            pending: collections.deque[concurrent.futures.Future[tuple[Any, ...] | None]] = collections.deque()
            names, sizes = iter(self._names), iter(self._sizes)
            try:
                while True:
                    while len(pending) < READ_AHEAD and (fname := next(names, None)) is not None:
                        pending.append(pool.submit(self._read_one, fname, finish))
                    if not pending:
                        return
                    got, size = pending.popleft().result(), next(sizes)
                    if got is None:
                        self._skipped += size
                        self.analyzed(self._analyzed)
                        continue
                    self._yielded.append(self._yielded[-1] + size)
                    sid, generation, stamp, item = got
                    self.stamps[sid] = (generation, *stamp)
                    yield item
                    del got, item
            finally:
                for f in pending:
                    f.cancel()

    def _read_one(self, fname: str, finish: Callable[[Doc], _T]) -> tuple[uuid.UUID, int, Stamp, _T] | None:
        """A session file's id, index generation, stamp and *finish* of its fields; None when it
        is gone, unreadable (verify's), or written while it was read (its stamp changed: behind
        in the new index)."""
        try:
            sid, version, body, stamp = self._read(fname)
            doc = orjson.loads(body)
        except (FileNotFoundError, SessionSealError, OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(doc, dict) or stamp != _stamp_now(self._ctx, fname):
            return None
        del body
        generation = self._generation(*version)
        return sid, generation, stamp, finish(Doc(sid, generation, doc_fields(doc)))


def _size(ctx: VaultContext, fname: str) -> int:
    try:
        return os.stat(fname, dir_fd=ctx.sessions.fd, follow_symlinks=False).st_size
    except OSError:
        return 0


def _stamp_now(ctx: VaultContext, fname: str) -> Stamp | None:
    try:
        return stamp_of(os.stat(fname, dir_fd=ctx.sessions.fd, follow_symlinks=False))
    except OSError:
        return None
