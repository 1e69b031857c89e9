"""A pull's batch of new sessions, indexed as segments of its own (docs/spec/fts-v1.md,
"Writers"; docs/sync.md, "Pull"): :func:`batch_segments` packs each session's stored text and
seals the batch's postings as new segments, which ``FullText.saved_many`` writes and commits
with one manifest, beside the delta log (which it leaves as it is).

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

from .._fts import Doc, SegmentBuilder, doc_fields, pack
from ._ftscompact import seal_segments
from ._ftsfiles import SegmentInfo, Stamp, index_generation

__all__ = ["batch_segments", "newer_stamps"]

#: A stamp in the manifest: (index generation, inode, size, mtime_ns).
Stamp4 = tuple[int, int, int, int]


def batch_segments(
    vault_id: uuid.UUID,
    saved: Sequence[tuple[uuid.UUID, tuple[int, int], Any, Stamp]],
    *,
    max_words: int,
) -> tuple[list[tuple[SegmentInfo, bytes]], dict[uuid.UUID, Stamp4]]:
    """*saved*'s sessions (id, (container generation, text revision), stored document, stamp)
    sealed as segments of at most *max_words* words each (in memory, each under a fresh key),
    and each session's stamp for the manifest. A session given twice is indexed at its last
    version; a document that is not an object is left out (behind in the index, as
    ``FullText.saved`` leaves it)."""
    last: dict[uuid.UUID, tuple[int, Mapping[str, Any], Stamp]] = {}
    for sid, version, doc, stamp in saved:
        if isinstance(doc, Mapping):
            last[sid] = (index_generation(*version), doc, stamp)
    builders: list[SegmentBuilder] = []
    words = 0
    stamps: dict[uuid.UUID, Stamp4] = {}
    for sid, (g, doc, stamp) in last.items():
        packed = pack(Doc(sid, g, doc_fields(doc)))
        n = sum(packed.entry.lengths)
        if not builders or (len(builders[-1]) and words + n > max_words):
            builders.append(SegmentBuilder())
            words = 0
        builders[-1].add(packed)
        words += n
        stamps[sid] = (g, *stamp)
    return seal_segments(vault_id, [b for b in builders if len(b)]), stamps


def newer_stamps(stamps: Mapping[uuid.UUID, Stamp4], new: Mapping[uuid.UUID, Stamp4]) -> dict[uuid.UUID, Stamp4]:
    """*stamps* with *new*'s where at least as new (by generation): what a fold of records of
    them would leave (``_ftstable.fold_stamps``)."""
    out = dict(stamps)
    for sid, stamp in new.items():
        have = out.get(sid)
        if have is None or stamp[0] >= have[0]:
            out[sid] = stamp
    return out
