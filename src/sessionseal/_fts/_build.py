"""A segment's bytes from many sessions' packed postings, inverted with C-speed steps.

The postings of all the sessions are kept as flat columns (term, ordinal, tf, mask), one row
per (term, session): a list of the terms' UTF-8 (shared ``bytes`` objects) and packed arrays.
The build then ranks the distinct terms in their final order (bucket, then UTF-8), maps every
row to its term's rank, sorts the row numbers by rank (a stable sort keeps the ordinals
ascending within a term), and cuts each bucket's columns as slices. Every per-row step is a
``map``, a ``sort`` or an ``array`` constructor over C types; only the distinct terms get a
Python step (their HMAC, their prefix). The bytes are exactly those of
:func:`~sessionseal._fts._format.encode_bucket` and :func:`~sessionseal._fts._format.encode_prefix`
over the same postings (the spec's vectors check it).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from operator import add, eq, mul, not_, sub
from typing import Final
from uuid import UUID

from .. import _container, _crypto
from .._container import FrameType, Kind
from . import _format as F
from ._analyze import Analyzed, PackedDoc
from ._tokens import (
    NATIVE,
    bucket_order_native,
    gather_terms_native,
    invert_joined_native,
    invert_rows_native,
    prefix_lists_native,
)

__all__ = ["Inverted", "SegmentBuilder"]

_MAX_TERM: Final = 64
_GENERATION: Final = 1  # segments are never rewritten in place: a rewrite is a new segment
#: The word-like terms (docs/spec/fts-v1.md, "Segment"), found in the newline-joined term list:
#: ``_tokens.is_wordlike`` over each line.
_WORDLIKE_LINE: Final = re.compile(r"^[^\W\d_]\w{2,31}$", re.MULTILINE)


class SegmentBuilder:
    """Collects sessions (packed or analyzed) and seals them as one segment.

    Memory: about 17 bytes per posting plus the distinct terms, against about 150 for the
    analyzed form (a 64 MB-of-text segment: about 800,000 postings). With the accelerator, the
    packed sessions' terms stay as they came, joined by newlines (one ``bytes`` per session, not
    one of about 45 bytes per posting, which a GIL-held split made and freed on the build's
    thread); the other paths split them.
    """

    def __init__(self) -> None:
        self.entries: list[F.DocEntry] = []
        self.size = 0  # the sessions' text, in characters
        self._sids: set[UUID] = set()
        self._terms: list[bytes] = []
        self._joined: list[bytes] = []  # native, sessions added in order: their terms, joined
        self._ords = array("I")
        self._tfs = array("I")
        self._masks = bytearray()
        self._rows_sorted = True

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def postings(self) -> int:
        return len(self._tfs)

    def _split(self) -> list[bytes]:
        """The rows' terms one by one (the joined ones split, once)."""
        if self._joined:
            self._terms = [t for joined in self._joined if joined for t in joined.split(b"\n")] + self._terms
            self._joined = []
        return self._terms

    def add(self, doc: PackedDoc | Analyzed) -> None:
        """Add one session (each at most once) with the next ordinal."""
        if doc.entry.session_id in self._sids:
            raise ValueError("a segment holds each session once")
        self._sids.add(doc.entry.session_id)
        ordinal = len(self.entries)
        self.entries.append(doc.entry)
        if isinstance(doc, PackedDoc) and NATIVE and not self._terms:
            rows = doc.terms.count(b"\n") + 1 if doc.terms else 0
            if not rows == len(doc.tfs) == len(doc.masks):
                raise ValueError("a packed session's columns differ in length")
            if rows:
                self._joined.append(doc.terms)
            self.size += doc.size
            self._tfs += doc.tfs
            self._masks += doc.masks
            self._ords.extend(repeat(ordinal, rows))
            return
        if isinstance(doc, PackedDoc):
            terms, tfs, masks = doc.term_list(), doc.tfs, doc.masks
            self.size += doc.size
        else:
            terms = [t.encode() for t in doc.terms]
            tfs = array("I", (p.tf for p in doc.terms.values()))
            masks = bytes(p.mask for p in doc.terms.values())
        if not len(terms) == len(tfs) == len(masks):
            raise ValueError("a packed session's columns differ in length")
        self._split().extend(terms)
        self._tfs += tfs
        self._masks += masks
        self._ords.extend(repeat(ordinal, len(terms)))

    def add_entries(self, entries: Sequence[F.DocEntry]) -> None:
        """Add sessions (each at most once) with the next ordinals and no postings: a merge
        adds their postings after, in any order, with :meth:`add_rows`."""
        for e in entries:
            if e.session_id in self._sids:
                raise ValueError("a segment holds each session once")
            self._sids.add(e.session_id)
        self.entries += entries

    def add_rows(self, terms: Sequence[bytes], ords: Sequence[int], tfs: Sequence[int], masks: bytes) -> None:
        """Postings ``(term, ordinal, tf, mask)`` as columns, in any order: the pieces of one
        session's term (from several segments and records) are summed (tfs add, masks OR)."""
        if not len(terms) == len(ords) == len(tfs) == len(masks):
            raise ValueError("columns differ in length")
        if ords and max(ords) >= len(self.entries):
            raise ValueError("an ordinal without its session")
        self._split().extend(terms)
        self._ords.extend(ords)
        self._tfs.extend(tfs)
        self._masks += masks
        self._rows_sorted = False

    def invert(self) -> Inverted:
        """The postings grouped by term: the per-posting work of a build, which needs no key
        (an index build runs it on a worker process). With the compiled accelerator, sessions
        added one after the other are grouped by one native call (the same columns)."""
        if NATIVE and self._rows_sorted:
            return self._invert_native()
        return self._invert_pure()

    def _invert_native(self) -> Inverted:
        ords, tfs_raw, masks_raw = self._ords.tobytes(), self._tfs.tobytes(), bytes(self._masks)
        if self._terms:
            terms, dfs, deltas, tfs, masks = invert_rows_native(self._split(), ords, tfs_raw, masks_raw)
        else:
            terms, dfs, deltas, tfs, masks = invert_joined_native(self._joined, ords, tfs_raw, masks_raw)
        columns = [array("I"), array("I"), array("I")]
        for column, raw in zip(columns, (dfs, deltas, tfs), strict=True):
            column.frombytes(raw)
        return Inverted(list(self.entries), self.size, terms, columns[0], columns[1], columns[2], masks)

    def _invert_pure(self) -> Inverted:
        all_terms = self._split()
        distinct = list(dict.fromkeys(all_terms))
        _check_terms(distinct)
        distinct.sort()
        rank = dict(zip(distinct, range(len(distinct)), strict=True))
        rows = array("I", map(rank.__getitem__, all_terms))
        del rank
        all_tfs, all_masks = self._tfs, self._masks
        if self._rows_sorted:  # added session after session: ordinals ascend within a term
            order = sorted(range(len(rows)), key=rows.__getitem__)  # stable
            df_of = Counter(rows)
        else:
            all_tfs, all_masks = array("I", all_tfs), bytearray(all_masks)  # summed in place
            order = _merged(rows, self._ords, len(self.entries), all_tfs, all_masks)
            df_of = Counter(map(rows.__getitem__, order))
        dfs = array("I", map(df_of.__getitem__, range(len(distinct))))
        del df_of, rows
        ords = array("I", map(self._ords.__getitem__, order))
        tfs = array("I", map(all_tfs.__getitem__, order))
        masks = bytes(map(all_masks.__getitem__, order))
        del order
        deltas = _deltas(ords, [0, *accumulate(dfs)])
        return Inverted(list(self.entries), self.size, b"\n".join(distinct), dfs, deltas, tfs, masks)

    def build(
        self,
        vault_id: UUID,
        segment_id: UUID,
        key: bytes,
        *,
        compress: bool = True,
        dek: bytes | None = None,
        nonces: Iterator[bytes] | None = None,
    ) -> bytes:
        """The sealed segment's bytes (as :func:`~sessionseal._fts._segment.build_segment`)."""
        return self.invert().build(vault_id, segment_id, key, compress=compress, dek=dek, nonces=nonces)


@dataclass(frozen=True, slots=True)
class Inverted:
    """A segment's postings grouped by term, before the keyed steps (bucket placement, seal).

    ``terms`` are the distinct terms sorted by UTF-8 and joined by newlines; ``dfs`` their
    document frequencies; ``deltas``, ``tfs`` and ``masks`` every posting, term after term
    (ordinal deltas as the bucket format stores them). It pickles as a few flat buffers.
    """

    entries: list[F.DocEntry]
    size: int
    terms: bytes
    dfs: array[int]
    deltas: array[int]
    tfs: array[int]
    masks: bytes

    def __len__(self) -> int:
        return len(self.entries)

    def build(
        self,
        vault_id: UUID,
        segment_id: UUID,
        key: bytes,
        *,
        compress: bool = True,
        dek: bytes | None = None,
        nonces: Iterator[bytes] | None = None,
    ) -> bytes:
        """The sealed segment's bytes under *key* (each frame compressed if *compress*)."""
        keys = F.SubKeys.of(key)
        out_b, out_p = self._payloads(keys)
        payloads = [_container.encode_payload(p, compress=compress) for p in out_b + out_p]
        where, at = [], 0
        for p in payloads:
            size = _container.frame_size(len(p))
            where.append((at, size))
            at += size
        head = F.Head(list(self.entries), where[: len(out_b)], where[len(out_b) :])
        frames = [(FrameType.FTS_HEAD, _container.encode_payload(F.encode_head(head), compress=compress))]
        frames += [(FrameType.FTS_BUCKET, p) for p in payloads[: len(out_b)]]
        frames += [(FrameType.FTS_PREFIX, p) for p in payloads[len(out_b) :]]
        return _container.seal(
            kind=Kind.FTS_SEGMENT,
            vault_id=vault_id,
            object_id=segment_id,
            generation=_GENERATION,
            kek=keys.seal,
            kek_epoch=0,
            frames=frames,
            dek=dek,
            nonces=nonces,
        )

    def _gathered(self, moved: Sequence[int]) -> tuple[array[int], array[int], array[int], bytes]:
        """The dfs and the postings (deltas, tfs, masks) of the terms in the order *moved*."""
        starts = [0, *accumulate(self.dfs)]
        # An array, not a list: 4 bytes a posting instead of an int object and a pointer (45).
        rows = array(
            "I", chain.from_iterable(map(range, map(starts.__getitem__, moved), map(starts[1:].__getitem__, moved)))
        )
        dfs = array("I", map(self.dfs.__getitem__, moved))
        deltas = array("I", map(self.deltas.__getitem__, rows))
        tfs = array("I", map(self.tfs.__getitem__, rows))
        return dfs, deltas, tfs, bytes(map(self.masks.__getitem__, rows))

    def _gathered_native(self, moved: bytes) -> tuple[array[int], array[int], array[int], bytes]:
        dfs, deltas, tfs, masks = gather_terms_native(
            moved, self.dfs.tobytes(), self.deltas.tobytes(), self.tfs.tobytes(), self.masks
        )
        columns = [array("I"), array("I"), array("I")]
        for column, raw in zip(columns, (dfs, deltas, tfs), strict=True):
            column.frombytes(raw)
        return columns[0], columns[1], columns[2], masks

    def _payloads(self, keys: F.SubKeys) -> tuple[list[bytes], list[bytes]]:
        by_utf8 = self.terms.split(b"\n") if self.terms else []
        nb = F.bucket_count(len(by_utf8))
        # The terms in their final order, bucket then UTF-8 (a stable sort of the UTF-8 order),
        # and their postings moved with them: one step per term, then per posting at C speed.
        if NATIVE:  # the same order (a counting sort) and columns, by native calls
            order, counts = bucket_order_native(_macs(keys.terms, 0, by_utf8), nb)
            moved = array("I")
            moved.frombytes(order)
            per_bucket = array("I")
            per_bucket.frombytes(counts)
            dfs, deltas, tfs, masks = self._gathered_native(order)
            del order
        else:
            slots = _slots(keys.terms, 0, by_utf8, nb)
            moved = array("I", sorted(range(len(by_utf8)), key=slots.__getitem__))
            per_bucket = array("I", map(Counter(slots).__getitem__, range(nb)))
            dfs, deltas, tfs, masks = self._gathered(moved)
        ordered = list(map(by_utf8.__getitem__, moved))
        del moved
        starts = [0, *accumulate(dfs)]
        bucket_ends = list(accumulate(per_bucket))
        out_b, lo = [], 0
        for hi in bucket_ends:
            a, b = starts[lo], starts[hi]
            out_b.append(F.encode_bucket_columns(ordered[lo:hi], dfs[lo:hi], deltas[a:b], tfs[a:b], masks[a:b]))
            lo = hi
        if NATIVE:
            return out_b, _prefix_payloads_native(keys, self.terms, self.dfs, nb)
        return out_b, _prefix_payloads(keys, by_utf8, self.dfs, nb)


def _merged(rows: array[int], ords: array[int], n_docs: int, tfs: array[int], masks: bytearray) -> list[int]:
    """The row numbers in (term rank, ordinal) order, one per (term, session): the rows of a
    session's term after its first are summed into it (*tfs* and *masks* changed in place)
    and left out. Per row at C speed; only the repeated rows (a session's pieces) take a step."""
    keys = list(map(add, map(mul, rows, repeat(n_docs)), ords))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    by_key = list(map(keys.__getitem__, order))
    repeated = [False, *map(eq, by_key[1:], by_key[:-1])]
    if not any(repeated):
        return order
    head, last = 0, -2
    for j in compress(range(len(order)), repeated):
        if j != last + 1:  # the first repeat of its run: the row before it is the run's head
            head = order[j - 1]
        tfs[head] += tfs[order[j]]
        masks[head] |= masks[order[j]]
        last = j
    return list(compress(order, map(not_, repeated)))


def _check_terms(distinct: list[bytes]) -> None:
    if distinct and (min(map(len, distinct)) < 1 or max(map(len, distinct)) > _MAX_TERM or b"\n" in b"".join(distinct)):
        raise ValueError("terms are 1 to 64 UTF-8 bytes without a newline")


def _macs(terms_key: bytes, domain: int, texts: Sequence[bytes]) -> list[bytes]:
    """The HMACs behind :func:`~sessionseal._fts._format.slots` of UTF-8 texts."""
    prefix = bytes((domain,))
    return _crypto.hmac_sha256_many(terms_key, [prefix + t for t in texts])


def _slots(terms_key: bytes, domain: int, texts: Sequence[bytes], n: int) -> list[int]:
    """:func:`~sessionseal._fts._format.slots` of UTF-8 texts."""
    return [int.from_bytes(m[:8], "big") % n for m in _macs(terms_key, domain, texts)]


def _deltas(ords: array[int], starts: list[int]) -> array[int]:
    """Each posting's ordinal less the previous one of the same term (the first: its ordinal)."""
    if not ords:
        return array("I")
    signed = array("q", [ords[0]])
    signed.extend(map(sub, ords[1:], ords[:-1]))  # negative where a term starts: set below
    for s in starts[1:-1]:
        signed[s] = ords[s]
    return array("I", signed)


def _prefix_payloads(keys: F.SubKeys, ordered: list[bytes], dfs: array[int], nb: int) -> list[bytes]:
    npf = max(1, nb // 8)
    # One decode for every term; rank order is kept, so each word-like term's df is found by rank.
    text = b"\n".join(ordered).decode()
    df = dict(zip(text.split("\n") if ordered else [], dfs, strict=True))
    wordlike = _WORDLIKE_LINE.findall(text)
    heads = sorted({t[: F.PREFIX_CHARS] for t in wordlike})
    where = dict(zip(heads, F.slots(keys.terms, 1, heads, npf), strict=True))
    prefixes: list[list[str]] = [[] for _ in range(npf)]
    for term in wordlike:
        prefixes[where[term[: F.PREFIX_CHARS]]].append(term)
    out = []
    for terms in prefixes:
        terms.sort(key=str.encode)
        out.append(F.encode_prefix([(t, df[t]) for t in terms]))
    return out


def _prefix_payloads_native(keys: F.SubKeys, joined: bytes, dfs: array[int], nb: int) -> list[bytes]:
    """:func:`_prefix_payloads`'s bytes, the per-term steps native: the regex finds the
    word-like terms (Unicode classes) and Python keys their heads (one HMAC per head); the
    accelerator finds each term's df and head, groups the terms by bucket and encodes them."""
    npf = max(1, nb // 8)
    wordlike = _WORDLIKE_LINE.findall(joined.decode())
    heads = sorted({t[: F.PREFIX_CHARS] for t in wordlike})
    head_slots = array("I", F.slots(keys.terms, 1, heads, npf)).tobytes()
    return prefix_lists_native(
        joined, dfs.tobytes(), "\n".join(wordlike).encode(), "\n".join(heads).encode(), head_slots, npf=npf
    )
