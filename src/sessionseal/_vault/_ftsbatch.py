"""A pull's batch of new sessions, indexed as segments of its own (docs/spec/fts-v1.md,
"Writers"; docs/sync.md, "Pull"): :class:`BatchRun` packs each session's stored text and seals
the batch's postings as new segments (with its run's last ones, when they would fill a tier),
which ``FullText.saved_many`` writes and commits with one manifest, beside the delta log
(which it leaves as it is).

Until 2026-12 the batch was one delta record per session, appended at once; the batch's
records (a pull's 128 sessions hold megabytes of text) always passed the log's 128 KiB, so
the same call then folded the log: each record was encoded, sealed, written, fsynced, read
back, authenticated, decoded and merged with the pure-Python grouping a merge needs (rows of
many sessions in any order), only to build the segment that the batch's postings make as
they are. Here the sessions are added one after the other, so a build groups them by term
in one native call (``SegmentBuilder.invert``), and the bytes read back, the delta log's
fsync and its rewrite are gone: 1.1 to 0.45 ms of CPU a pulled session (docs/sync.md, "Pull").

What the index answers is the same: a session's postings at its current generation may sit in
any segment ("Generations"), and its stamp goes to the manifest as a fold would put it there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .._fts import Doc, PackedDoc, SegmentBuilder, doc_fields, pack
from ._ftscompact import seal_segments
from ._ftsfiles import SegmentInfo, Stamp, index_generation

__all__ = ["BatchRun", "batch_segments", "newer_stamps"]

#: A stamp in the manifest: (index generation, inode, size, mtime_ns).
Stamp4 = tuple[int, int, int, int]
#: What a batch gives the manifest: its segments sealed (info, bytes), and its sessions' stamps.
Sealed = list[tuple[SegmentInfo, bytes]]
Saved = Sequence[tuple[uuid.UUID, tuple[int, int], Any, Stamp]]


def _packed(saved: Saved) -> tuple[list[PackedDoc], dict[uuid.UUID, Stamp4]]:
    last: dict[uuid.UUID, tuple[int, Mapping[str, Any], Stamp]] = {}
    for sid, version, doc, stamp in saved:
        if isinstance(doc, Mapping):
            last[sid] = (index_generation(*version), doc, stamp)
    packed = [pack(Doc(sid, g, doc_fields(doc))) for sid, (g, doc, _stamp) in last.items()]
    return packed, {sid: (g, *stamp) for sid, (g, _doc, stamp) in last.items()}


def _sealed(vault_id: uuid.UUID, packed: Sequence[PackedDoc], max_words: int) -> Sealed:
    """*packed* sealed as segments of at most *max_words* words each (a session never split),
    added in order: each build groups its postings by term in one native call."""
    builders: list[SegmentBuilder] = []
    words = 0
    for p in packed:
        n = sum(p.entry.lengths)
        if not builders or (len(builders[-1]) and words + n > max_words):
            builders.append(SegmentBuilder())
            words = 0
        builders[-1].add(p)
        words += n
    return seal_segments(vault_id, builders)


def batch_segments(vault_id: uuid.UUID, saved: Saved, *, max_words: int) -> tuple[Sealed, dict[uuid.UUID, Stamp4]]:
    """*saved*'s sessions (id, (container generation, text revision), stored document, stamp)
    sealed as segments of at most *max_words* words each (in memory, each under a fresh key),
    and each session's stamp for the manifest. A session given twice is indexed at its last
    version; a document that is not an object is left out (behind in the index, as
    ``FullText.saved`` leaves it)."""
    packed, stamps = _packed(saved)
    return _sealed(vault_id, packed, max_words), stamps


class BatchRun:
    """The batches one after the other of a pull, and their tier merge made from memory.

    A pull of thousands of sessions writes a segment a batch of 128, and every
    ``fanout`` of them filled a tier, which a merge then read back (each segment decrypted,
    each term's bucket checked by its HMAC, the postings regrouped by the pure path): 0.6 ms
    of CPU a pulled session, more than the batches' own segments. The postings of this run's
    last segments are kept instead (packed: about 10 bytes a posting, at most ``fanout - 1``
    segments of at most ``max_words`` words together), and the batch that would make them
    ``fanout`` is written with them as one segment, which replaces them: the merge's result,
    built as a batch's is. It replaces them only if the manifest still names every one of
    them (a merge, a rotation or an erasure, a reindex may have replaced one: its sessions
    would then be counted twice); otherwise the batch is written alone and the run starts
    again from it."""

    def __init__(self) -> None:
        self._ids: list[uuid.UUID] = []
        self._packed: list[PackedDoc] = []
        self._words = 0
        self._next: tuple[list[PackedDoc], int] = ([], 0)
        self._still = self._merging = False

    def seal(
        self, vault_id: uuid.UUID, saved: Saved, *, max_words: int, fanout: int
    ) -> tuple[Sealed, Sealed | None, dict[uuid.UUID, Stamp4]]:
        """The batch's segments alone; with this run's kept segments as one, when the batch
        would make them *fanout* (None otherwise); the batch's stamps. Outside the vault lock."""
        packed, stamps = _packed(saved)
        words = sum(sum(p.entry.lengths) for p in packed)
        alone = _sealed(vault_id, packed, max_words)
        kept, kept_words = list(self._packed), self._words
        # A session of the run saved again (a segment holds each session once): no merge.
        apart = not {p.entry.session_id for p in kept} & stamps.keys()
        merged = None
        if self._ids and len(self._ids) + len(alone) >= fanout and kept_words + words <= max_words and apart:
            merged = _sealed(vault_id, kept + packed, max_words)
        self._next = (packed, words)
        return alone, merged, stamps

    def pick(
        self,
        segments: Sequence[SegmentInfo],
        stamps: Mapping[uuid.UUID, Stamp4],
        alone: Sealed,
        merged: Sealed | None,
        new: Mapping[uuid.UUID, Stamp4],
    ) -> tuple[list[SegmentInfo], Sealed, dict[uuid.UUID, Stamp4]]:
        """Under the vault lock, *segments* and *stamps* the manifest's, *new* the batch's
        stamps: the segments to replace (this run's kept ones, when every one is still
        there), what to write in their place, and the stamps to commit."""
        named = {s.id: s for s in segments}
        self._still = all(i in named for i in self._ids)
        self._merging = merged is not None and self._still
        current = newer_stamps(stamps, new)
        if merged is not None and self._still:
            return [named[i] for i in self._ids], merged, current
        return [], alone, current

    def written(self, new: Sequence[SegmentInfo], *, max_words: int) -> None:
        """After the commit of *new* (:meth:`pick`'s choice): a merge ends the run; a batch
        written alone joins it (or starts it again, when a kept segment is gone) while the
        run stays within *max_words* words."""
        packed, words = self._next
        self._next = ([], 0)
        if self._merging or not self._still or self._words + words > max_words:
            self._ids, self._packed, self._words = [], [], 0
        if not self._merging and self._words + words <= max_words:
            self._ids += [s.id for s in new]
            self._packed += packed
            self._words += words


def newer_stamps(stamps: Mapping[uuid.UUID, Stamp4], new: Mapping[uuid.UUID, Stamp4]) -> dict[uuid.UUID, Stamp4]:
    """*stamps* with *new*'s where at least as new (by generation): what a fold of records of
    them would leave (``_ftstable.fold_stamps``)."""
    out = dict(stamps)
    for sid, stamp in new.items():
        have = out.get(sid)
        if have is None or stamp[0] >= have[0]:
            out[sid] = stamp
    return out
