"""What a full-text compaction and an erasure's rewrite merge, and the segments they write
(docs/spec/fts-v1.md, "Compaction", "Rotation and erasure"); ``_fulltext.FullText`` commits them.

A compaction costs what the delta log holds, plus the tier merges it is due: it folds the log's
records into new segments of their own and pulls no segment for the sessions they name (a
session's pieces at its current generation may be spread over several segments, and add up
at query time: "Generations"). Until 2026-12 it pulled every segment holding a session at the
generation of one of the log's records, so that a session sat in one segment per generation:
appends to random sessions of the 1 GB benchmark vault pulled all 18 segments, and each fold
was a rebuild (84 s of CPU under the vault lock, inside one append; docs/design.md).
An erasure still rewrites every segment that holds a piece of an erased session.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence

from .. import _container, _crypto
from .._fs import Dir
from .._fts import DeltaRecord, SegmentBuilder, merge_columns
from ..errors import SessionSealError
from ._ftsfiles import SegmentInfo, open_segment

__all__ = ["count_frames", "fold", "full_tier", "seal_segments", "tier", "without", "write_sealed"]


def tier(words: int, *, base: int, fanout: int, cap: int) -> int:
    """A segment's tier: 0 under *base* words, then one more per factor of *fanout*, up to *cap*."""
    t, bound = 0, base
    while words >= bound and bound < cap:
        t, bound = t + 1, bound * fanout
    return t


def full_tier(segments: Sequence[SegmentInfo], *, base: int, fanout: int, cap: int) -> set[uuid.UUID]:
    """The segments to merge: of the lowest tier that has *fanout* of them (none: empty), the
    smallest, as many as hold *cap* words together (at least two). A segment of more than
    half *cap* words never merges again.

    The cap bounds what one merge costs, and so the append that runs it: eight segments just
    under half the cap made one merge of four times the cap (44 million words: a minute of
    CPU, longer than a capture hook may run), where two or three of them make one segment."""
    tiers: dict[int, list[SegmentInfo]] = {}
    for s in segments:
        if s.words < cap // 2:
            tiers.setdefault(tier(s.words, base=base, fanout=fanout, cap=cap), []).append(s)
    for t in sorted(tiers):
        if len(tiers[t]) >= fanout:
            picked: set[uuid.UUID] = set()
            words = 0
            for s in sorted(tiers[t], key=lambda s: s.words):
                if len(picked) >= 2 and words + s.words > cap:
                    break
                picked.add(s.id)
                words += s.words
            return picked
    return set()


def fold(
    fts: Dir,
    vault_id: uuid.UUID,
    pulled: Sequence[SegmentInfo],
    records: Sequence[DeltaRecord],
    current: Mapping[uuid.UUID, tuple[int, ...]],
    *,
    max_words: int,
) -> list[SegmentBuilder]:
    """The postings of the *pulled* segments and the log's *records* merged (a session's pieces
    at one generation summed), less every session whose pieces here are older than its
    *current* generation (held by a segment not pulled: they are ignored, and dropped here), as
    builders of segments of at most *max_words* words."""
    readers = []
    try:
        for s in pulled:
            readers.append(open_segment(fts, vault_id, s))
        return merge_columns(readers, records, floor=current, max_words=max_words)
    finally:
        for r in readers:
            r.close()


def seal_segments(vault_id: uuid.UUID, builders: Sequence[SegmentBuilder]) -> list[tuple[SegmentInfo, bytes]]:
    """Each of *builders* sealed as a new segment under a fresh key, in memory: its entry in a
    manifest, and its bytes (:func:`write_sealed` writes them)."""
    out: list[tuple[SegmentInfo, bytes]] = []
    for b in builders:
        words = sum(sum(e.lengths) for e in b.entries)
        info = SegmentInfo(uuid.uuid4(), _crypto.new_key(), [e.session_id for e in b.entries], words, 0)
        data = b.build(vault_id, info.id, info.key)
        info.size = len(data)
        out.append((info, data))
    return out


def write_sealed(fts: Dir, sealed: Sequence[tuple[SegmentInfo, bytes]]) -> list[SegmentInfo]:
    """Sealed segments written, each atomically; if one fails, those written before it are
    removed (no manifest names them, and their keys were only in this process's memory)."""
    out: list[SegmentInfo] = []
    try:
        for info, data in sealed:
            fts.write_atomic(info.name, data)
            out.append(info)
    except BaseException:
        for info in out:
            with contextlib.suppress(SessionSealError, OSError):
                fts.shred(info.name)
        raise
    return out


def without(
    fts: Dir,
    vault_id: uuid.UUID,
    segments: Sequence[SegmentInfo],
    erased: frozenset[uuid.UUID],
    write: Callable[[Sequence[SegmentBuilder]], list[SegmentInfo]],
    *,
    max_words: int,
) -> tuple[list[SegmentInfo], list[SegmentInfo]]:
    """*segments* with every one holding a piece of an *erased* session rewritten without it
    (by *write*), and the ones so replaced. Every segment is looked at: a session's pieces
    may be spread over several."""
    kept: list[SegmentInfo] = []
    replaced: list[SegmentInfo] = []
    for s in segments:
        if not erased & set(s.sessions):
            kept.append(s)
            continue
        with open_segment(fts, vault_id, s) as r:
            builders = merge_columns([r], [], drop=erased, max_words=max_words)
        kept += write(builders)
        replaced.append(s)
    return kept, replaced


def count_frames(data: bytes) -> int:
    """A delta log's frames, counted by their length fields (nothing is decrypted)."""
    n, pos = 0, _container.HEADER_SIZE
    while pos + 4 <= len(data):
        pos += 4 + int.from_bytes(data[pos : pos + 4], "big")
        n += 1
    return n
