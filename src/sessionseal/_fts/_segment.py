"""Segments: immutable sealed files of postings (docs/spec/fts-v1.md, "Segment").

A segment is a container-v1 container of kind FTS_SEGMENT whose object id is the segment's id:
frame 0 is FTS_HEAD (its sessions and where the other frames are), then one FTS_BUCKET frame per
term bucket, then one FTS_PREFIX frame per prefix bucket. A reader decrypts the header frame
once, then one bucket per term it looks up, each read with one ``pread``.

The caller owns the keys: it draws a random 32-byte key per segment, keeps it in the index's
manifest, and erases the segment by forgetting that key (docs/secure-deletion.md).
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, chain, repeat
from operator import itemgetter, sub
from pathlib import Path
from typing import Final
from uuid import UUID

from .. import _container, _crypto
from .._container import FrameType, Kind
from ..errors import IntegrityError
from . import _format as F
from ._analyze import Analyzed, Doc, analyze
from ._build import SegmentBuilder
from ._format import DocEntry, Posting

__all__ = ["Analyzed", "Doc", "HeadCache", "SegmentReader", "analyze", "build_segment"]

#: The first read of a segment: its header and, usually, its whole FTS_HEAD frame.
_FIRST_READ: Final = 1 << 16
_GENERATION: Final = 1  # segments are never rewritten in place: a rewrite is a new segment


def build_segment(
    vault_id: UUID,
    segment_id: UUID,
    key: bytes,
    docs: Sequence[Analyzed],
    *,
    compress: bool = True,
    dek: bytes | None = None,
    nonces: Iterator[bytes] | None = None,
) -> bytes:
    """The bytes of a new segment holding *docs* (each session at most once), sealed under *key*.

    *dek* and *nonces* exist for the spec's test vectors only. The caller writes the bytes
    atomically (``_fswrite.write_private_file``) and records ``(segment_id, key)``. An index
    build adds :class:`PackedDoc` s to a :class:`SegmentBuilder` instead (the same bytes).
    """
    builder = SegmentBuilder()
    for doc in docs:
        builder.add(doc)
    return builder.build(vault_id, segment_id, key, compress=compress, dek=dek, nonces=nonces)


def _integrity() -> IntegrityError:
    return IntegrityError(F.INTEGRITY)


class SegmentReader:
    """An open segment: its sessions, and its postings one bucket at a time.

    Every byte used is authenticated first; anything else raises :class:`IntegrityError`.
    """

    def __init__(
        self, path: Path | int, vault_id: UUID, segment_id: UUID, key: bytes, *, heads: HeadCache | None = None
    ) -> None:
        """*path*: the segment file, or a descriptor open for reading, which the reader then owns
        (the vault opens its files through its own checks: no link followed, owner-only).
        *heads*: where a reader of the same file, opened before, left its authenticated head."""
        self.segment_id = segment_id
        self._keys = F.SubKeys.of(key)
        self._fd = path if isinstance(path, int) else os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self._size = os.fstat(self._fd).st_size
            seen = (
                heads.get(segment_id, key, self._size, os.pread(self._fd, _container.HEADER_SIZE, 0)) if heads else None
            )
            if seen is not None:
                self._header, self._dek, self.head, self._base = seen
            else:
                self._open_head(vault_id, segment_id)
                if heads is not None:
                    heads.put(segment_id, key, self._size, (self._header, self._dek, self.head, self._base))
        except BaseException:
            os.close(self._fd)
            raise
        assert isinstance(self.head.docs, F.DocTable)  # decode_head's
        self.docs: F.DocTable = self.head.docs
        self._dirs: dict[int, tuple[bytes, F.BucketView]] = {}
        self._data: dict[int, bytes] = {}  # the buckets a query read, authenticated

    def _open_head(self, vault_id: UUID, segment_id: UUID) -> None:
        first = os.pread(self._fd, _FIRST_READ, 0)
        header = _container.parse_unverified_header(first)
        if header.kind != Kind.FTS_SEGMENT or header.vault_id != vault_id or header.object_id != segment_id:
            raise _integrity()
        if header.generation != _GENERATION or header.kek_epoch != 0:
            raise _integrity()
        self._header = header
        self._dek = _crypto_unwrap(self._keys.seal, header)
        head_raw, end = self._frame_at(first, _container.HEADER_SIZE, 0, FrameType.FTS_HEAD)
        self.head = F.decode_head(head_raw)
        self._base = end
        self._check_layout()

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_layout(self) -> None:
        # The frames must tile the file exactly: no gap, overlap, or trailing byte.
        # At C speed: a cold query opens every segment, and a segment has hundreds of frames.
        where = self.head.buckets + self.head.prefixes
        offsets, sizes = list(map(itemgetter(0), where)), list(map(itemgetter(1), where))
        if min(sizes) < 33 or list(accumulate(sizes, initial=0))[:-1] != offsets:
            raise _integrity()
        if self._base + sum(sizes) != self._size:
            raise _integrity()

    def _frame_at(self, data: bytes, pos: int, index: int, frame_type: int) -> tuple[bytes, int]:
        """Authenticate the frame at *pos* of *data* (read from offset 0 or re-read)."""
        if len(data) < pos + 4:
            raise _integrity()
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 4 + length
        if end > self._size:
            raise _integrity()
        if end > len(data):
            data = data[:pos] + os.pread(self._fd, end - pos, pos)
            if len(data) != end:
                raise _integrity()
        return self._open_one(data[pos:end], index, frame_type), end

    def _open_one(self, frame: bytes, index: int, frame_type: int) -> bytes:
        frames, end = _container.open_frames_at(frame, self._header, self._dek, 0, index)
        if len(frames) != 1 or end != len(frame) or frames[0].type != frame_type:
            raise _integrity()
        return _container.decode_payload(frames[0].data)

    def _read(self, offset: int, size: int, index: int, frame_type: int) -> bytes:
        raw = os.pread(self._fd, size, self._base + offset)
        if len(raw) != size:
            raise _integrity()
        return self._open_one(raw, index, frame_type)

    def _bucket(self, i: int) -> tuple[bytes, F.BucketView]:
        got = self._dirs.get(i)
        if got is None:
            off, size = self.head.buckets[i]
            data = self._read(off, size, 1 + i, FrameType.FTS_BUCKET)
            got = self._dirs[i] = (data, F.bucket_view(data))
        return got

    def postings(self, term: str) -> list[tuple[int, Posting]]:
        """``(ordinal, Posting)`` of *term* in this segment (ordinals index :attr:`docs`). The
        bucket is authenticated when read, once per reader; its directory is not parsed into a
        table (:func:`F.bucket_lookup`)."""
        i = F.slot(self._keys.terms, 0, term, len(self.head.buckets))
        data = self._data.get(i)
        if data is None:
            off, size = self.head.buckets[i]
            data = self._data[i] = self._read(off, size, 1 + i, FrameType.FTS_BUCKET)
        return F.bucket_lookup(data, term, len(self.docs))

    def expand(self, prefix: str) -> list[tuple[str, int]]:
        """The word-like terms starting with *prefix* (3 characters or more), with their df."""
        npf = len(self.head.prefixes)
        i = F.slot(self._keys.terms, 1, prefix[: F.PREFIX_CHARS], npf)
        off, size = self.head.prefixes[i]
        # The rows are sorted by UTF-8: the terms starting with *prefix* are a run of them (a
        # bucket holds thousands; a query wants a few, and the others are not decoded).
        return F.prefix_run(self._read(off, size, 1 + len(self.head.buckets) + i, FrameType.FTS_PREFIX), prefix)

    def verify(self) -> None:
        """Authenticate every frame and parse its layout (``verify --read-data``).

        Each frame is opened under the segment's DEK (AES-GCM: a modified, missing, moved or
        trailing byte fails) and each bucket's term directory and each prefix bucket parsed.
        The postings are not decoded term by term, nor each term's bucket recomputed (an HMAC
        per term): an authentic frame holds what the writer wrote, so that would find only a
        writer's bug, at ten times the cost of reading the sessions (5.6 million HMACs on a
        1 GB vault); a merge (:meth:`read_all`) still checks both.

        :raises IntegrityError: any modified, missing, or trailing byte.
        """
        nb = len(self.head.buckets)
        for i in range(nb):
            self._bucket(i)
            self._dirs.clear()
        for j, (off, size) in enumerate(self.head.prefixes):
            F.decode_prefix(self._read(off, size, 1 + nb + j, FrameType.FTS_PREFIX))

    def columns(self) -> Iterator[tuple[list[bytes], list[int], list[int], list[int], bytes]]:
        """Every bucket's postings as columns: its terms' UTF-8, their dfs, and each posting's
        ordinal, tf and mask, term after term (a merge's input, decoded at C speed per bucket,
        not per term: :func:`~._merge.merge_columns`). Checked as :meth:`read_all` checks them:
        each term in its bucket, ordinals rising within a term and in the doc table, tfs and
        masks not zero, masks of the four fields."""
        nb, n_docs = len(self.head.buckets), len(self.docs)
        for i in range(nb):
            data, bv = self._bucket(i)
            self._dirs.clear()
            terms = list(bv.index)
            if F.slots(self._keys.terms, 0, terms, nb) != [i] * len(terms):
                raise _integrity()
            total = bv.starts[-1]
            deltas = F.unpack_ints(memoryview(data)[bv.deltas_at :], total, bv.wd)
            tfs = F.unpack_ints(memoryview(data)[bv.tfs_at :], total, bv.wt)
            masks = data[bv.masks_at : bv.masks_at + total]
            # A term's first delta is its first ordinal; the others are gaps, never zero.
            firsts = list(map(deltas.__getitem__, bv.starts[:-1]))
            if total and (min(tfs) < 1 or min(masks) < 1 or max(masks) > F.ALL_FIELDS):
                raise _integrity()
            if deltas.count(0) != firsts.count(0):
                raise _integrity()
            sums = list(accumulate(deltas, initial=0))
            base = chain.from_iterable(map(repeat, map(sums.__getitem__, bv.starts[:-1]), bv.dfs))
            ords = list(map(sub, sums[1:], base))
            if total and max(ords) >= n_docs:
                raise _integrity()
            yield [t.encode() for t in terms], bv.dfs, ords, tfs, masks

    def read_all(self) -> list[Analyzed]:
        """Every session's postings (for a merge or a rewrite without some sessions)."""
        out = [Analyzed(d, {}) for d in self.docs]
        for i in range(len(self.head.buckets)):
            data, bv = self._bucket(i)
            for term, rank in bv.index.items():
                if F.slot(self._keys.terms, 0, term, len(self.head.buckets)) != i:
                    raise _integrity()
                for ordinal, p in F.bucket_postings(data, bv, rank, len(self.docs)):
                    out[ordinal].terms[term] = p
        self._dirs.clear()
        return out


class HeadCache:
    """Authenticated segment heads, kept by a long-lived reader of an index (a vault's
    ``FullText``): a query opens every segment, and authenticating and decoding each head
    (its session table, its frame layout) was most of what opening one cost.

    A reader takes a head from here only for the same segment id, under the same key, from a
    file of the same size whose header is byte for byte the one the head was read under. The
    header holds the segment's data key wrapped under a random nonce, so an equal header means
    the same seal: every frame of the file is still authenticated under that key when it is
    read, and its head frame (frame 0, bound to the header) can only be the one already opened.
    Only the segments a caller still names are kept (:meth:`retain`); nothing is written.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[UUID, tuple[bytes, int, bytes, tuple[_container.Header, bytes, F.Head, int]]] = {}

    def get(
        self, segment_id: UUID, key: bytes, size: int, header: bytes
    ) -> tuple[_container.Header, bytes, F.Head, int] | None:
        with self._lock:
            got = self._by_id.get(segment_id)
        if got is None or got[1] != size or not hmac.compare_digest(got[2], key):
            return None
        return got[3] if hmac.compare_digest(got[0], header) else None

    def put(
        self, segment_id: UUID, key: bytes, size: int, opened: tuple[_container.Header, bytes, F.Head, int]
    ) -> None:
        with self._lock:
            self._by_id[segment_id] = (opened[0].raw, size, key, opened)

    def retain(self, segment_ids: Iterable[UUID]) -> None:
        """Forget every segment but *segment_ids* (a manifest's): an erased or merged segment's
        key and session table do not outlive the manifest that named it."""
        keep = set(segment_ids)
        with self._lock:
            for sid in self._by_id.keys() - keep:
                del self._by_id[sid]

    def __len__(self) -> int:
        return len(self._by_id)


def _crypto_unwrap(kek: bytes, header: _container.Header) -> bytes:
    return _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)


def merge(
    segments: Iterable[SegmentReader], records: Iterable[F.DeltaRecord], drop: frozenset[UUID] = frozenset()
) -> list[Analyzed]:
    """The current postings of every session in *segments* and *records*, less *drop*.

    Newer generations replace older ones; records of a session's current generation add to it
    (docs/spec/fts-v1.md, "Generations"). The result feeds :func:`build_segment`.
    """
    current: dict[UUID, Analyzed] = {}
    for seg in segments:
        for doc in seg.read_all():
            _fold(current, doc.entry, doc.terms)
    for rec in records:
        _fold(current, rec.doc, rec.terms)
    return [a for sid, a in current.items() if sid not in drop]


def _fold(current: dict[UUID, Analyzed], entry: DocEntry, terms: dict[str, Posting]) -> None:
    have = current.get(entry.session_id)
    if have is None or entry.generation > have.entry.generation:
        current[entry.session_id] = Analyzed(entry, dict(terms))
        return
    if entry.generation < have.entry.generation:
        return
    lengths = tuple(a + b for a, b in zip(have.entry.lengths, entry.lengths, strict=True))
    have.entry = DocEntry(entry.session_id, entry.generation, (lengths[0], lengths[1], lengths[2], lengths[3]))
    for term, p in terms.items():
        q = have.terms.get(term)
        have.terms[term] = p if q is None else Posting(q.tf + p.tf, q.mask | p.mask)
