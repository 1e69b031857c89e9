"""A merge of segments and delta records at C speed per posting (docs/spec/fts-v1.md,
"Generations", "Compaction").

:func:`~._segment.merge` answers the same postings as :class:`~._analyze.Analyzed` s: a dict
per session and a ``Posting`` per (term, session), then a segment builder turns them back into
columns. That cost about 8 us a posting (a segment of the 1 GB benchmark vault, 850,000
postings: 6.5 s of CPU), so a tier merge of eight segments of a million words each took longer
than a capture hook may run. Here each segment's buckets are read as columns
(:meth:`~._segment.SegmentReader.columns`), their ordinals mapped to the new segments' with one
lookup a posting, and handed to :class:`~._build.SegmentBuilder` s as rows, which sum a
session's pieces of one term (:meth:`~._build.SegmentBuilder.add_rows`).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from itertools import chain, compress, repeat
from operator import eq
from uuid import UUID

from ._build import SegmentBuilder
from ._format import DeltaRecord, DocEntry
from ._segment import SegmentReader

__all__ = ["merge_columns"]


def merge_columns(
    segments: Sequence[SegmentReader],
    records: Sequence[DeltaRecord],
    *,
    drop: frozenset[UUID] = frozenset(),
    floor: Mapping[UUID, tuple[int, ...]] | None = None,
    max_words: int,
) -> list[SegmentBuilder]:
    """:func:`~._segment.merge` of *segments* and *records* less *drop*, and less every
    session whose current generation among them is below its *floor* (``floor[sid][0]``: a
    newer generation is held elsewhere), as builders of new segments of at most *max_words*
    words each (a session is never split), none if nothing is left."""
    cur: dict[bytes, DocEntry] = {}
    for seg in segments:
        for d in seg.docs:
            _see(cur, d)
    for rec in records:
        _see(cur, rec.doc)
    floor = floor or {}
    kept = [e for e in cur.values() if e.session_id not in drop and e.generation >= floor.get(e.session_id, (0,))[0]]
    builders, where = _plan(kept, max_words)
    for seg in segments:
        _add_segment(seg, cur, where, builders)
    for rec in records:
        raw = rec.doc.session_id.bytes
        w = where.get(raw) if cur[raw].generation == rec.doc.generation else None
        if w is not None and rec.terms:
            ps = rec.terms.values()
            builders[w[0]].add_rows(
                [t.encode() for t in rec.terms], [w[1]] * len(ps), [p.tf for p in ps], bytes(p.mask for p in ps)
            )
    return builders


def _plan(kept: Sequence[DocEntry], max_words: int) -> tuple[list[SegmentBuilder], dict[bytes, tuple[int, int]]]:
    """Builders holding *kept* in order, a new one where the next session would pass
    *max_words*, and where each session went: raw id -> (builder, ordinal)."""
    builders: list[SegmentBuilder] = []
    where: dict[bytes, tuple[int, int]] = {}
    chunk: list[DocEntry] = []
    words = 0
    for e in [*kept, None]:
        n = sum(e.lengths) if e is not None else 0
        if chunk and (e is None or words + n > max_words):
            b = SegmentBuilder()
            b.add_entries(chunk)
            builders.append(b)
            chunk, words = [], 0
        if e is not None:
            where[e.session_id.bytes] = (len(builders), len(chunk))
            chunk.append(e)
            words += n
    return builders, where


def _add_segment(
    seg: SegmentReader, cur: dict[bytes, DocEntry], where: dict[bytes, tuple[int, int]], builders: list[SegmentBuilder]
) -> None:
    """*seg*'s postings of the sessions kept at their current generation, as rows of the
    builders they went to: one lookup a posting, at C speed."""
    to_builder, to_ordinal = array("i"), array("I")
    for raw, gen in zip(seg.docs.ids, seg.docs.gens, strict=True):
        w = where.get(raw) if cur[raw].generation == gen else None
        to_builder.append(-1 if w is None else w[0])
        to_ordinal.append(0 if w is None else w[1])
    for terms, dfs, ords, tfs, masks in seg.columns():
        row_terms = list(chain.from_iterable(map(repeat, terms, dfs)))
        row_builder = list(map(to_builder.__getitem__, ords))
        row_ordinal = list(map(to_ordinal.__getitem__, ords))
        for i, b in enumerate(builders):
            sel = list(map(eq, row_builder, repeat(i)))
            b.add_rows(
                list(compress(row_terms, sel)),
                list(compress(row_ordinal, sel)),
                list(compress(tfs, sel)),
                bytes(compress(masks, sel)),
            )


def _see(cur: dict[bytes, DocEntry], d: DocEntry) -> None:
    """A newer generation replaces; pieces of the same one add up (their lengths)."""
    raw = d.session_id.bytes
    have = cur.get(raw)
    if have is None or d.generation > have.generation:
        cur[raw] = d
    elif d.generation == have.generation:
        (a, b, c, e), (w, x, y, z) = have.lengths, d.lengths
        cur[raw] = DocEntry(d.session_id, d.generation, (a + w, b + x, c + y, e + z))
