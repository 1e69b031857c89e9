"""Byte layouts of the full-text index's payloads (docs/spec/fts-v1.md), keys, and bucket choice.

Every integer is unsigned big-endian, as in container-v1. Payloads are parsed only after their
frame authenticated; a payload that still does not parse is reported as the same opaque
:class:`~sessionseal.errors.IntegrityError` (a bug or a forgery: never a wrong answer).
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise, repeat
from typing import Any, Final, NamedTuple, overload
from uuid import UUID

from .. import _crypto
from ..errors import IntegrityError

#: The payload format of FTS_HEAD and FTS_DELTA (their first byte).
FTS_VERSION: Final = 1
LABEL_SEAL: Final = b"sessionseal v1 fts seal"
LABEL_TERMS: Final = b"sessionseal v1 fts terms"
#: Buckets hold about this many terms: a lookup parses one small directory (docs/design.md).
TERMS_PER_BUCKET: Final = 250
#: The first characters of a term that choose its prefix bucket; shorter prefixes are refused.
PREFIX_CHARS: Final = 3
#: The fields of a session, as bits of a field mask.
TITLE: Final = 1
USER: Final = 2
ASSISTANT: Final = 4
TOOL: Final = 8
FIELDS: Final = (TITLE, USER, ASSISTANT, TOOL)
ALL_FIELDS: Final = 15

INTEGRITY: Final = "the full-text index failed its integrity check (modified, truncated, or moved); rebuild it"

_U32: Final = struct.Struct(">I")
_DOC: Final = struct.Struct(">16sQIIII")
_WHERE: Final = struct.Struct(">QI")
_DELTA_HEAD: Final = struct.Struct(">B16sQIIIIQQQI")
_SWAP: Final = sys.byteorder == "little"


@dataclass(frozen=True, slots=True)
class SubKeys:
    """The keys HKDF derives from one segment or delta-log key (docs/spec/fts-v1.md, "Keys")."""

    seal: bytes  # the container's kek: wraps the file's DEK
    terms: bytes  # the HMAC key that places terms and prefixes in buckets

    @classmethod
    def of(cls, key: bytes) -> SubKeys:
        if len(key) != _crypto.KEY_SIZE:
            raise ValueError("index keys are 32 bytes")
        return cls(_crypto.derive_key(key, LABEL_SEAL), _crypto.derive_key(key, LABEL_TERMS))


def slot(terms_key: bytes, domain: int, text: str, n: int) -> int:
    """``HMAC-SHA256(terms key, domain || UTF-8(text))[0:8] mod n`` (domain 0: term, 1: prefix)."""
    mac = _crypto.hmac_sha256(terms_key, bytes((domain,)) + text.encode())
    return int.from_bytes(mac[:8], "big") % n


def slots(terms_key: bytes, domain: int, texts: Sequence[str], n: int) -> list[int]:
    """:func:`slot` of each of *texts* (an index build: one HMAC per distinct term)."""
    prefix = bytes((domain,))
    macs = _crypto.hmac_sha256_many(terms_key, [prefix + t.encode() for t in texts])
    return [int.from_bytes(m[:8], "big") % n for m in macs]


def bucket_count(n_terms: int, per_bucket: int = TERMS_PER_BUCKET) -> int:
    """The smallest power of two with at most about *per_bucket* terms per bucket."""
    n = 1
    while n * per_bucket < n_terms:
        n *= 2
    return n


_TYPECODE: Final = {1: "B", 2: "H", 4: "I"}


def width(values: Sequence[int]) -> int:
    """The narrowest of 1, 2 or 4 bytes that holds every value."""
    top = max(values, default=0)
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def pack_ints(values: Sequence[int], size: int) -> bytes:
    """*values* as big-endian unsigned integers of *size* bytes (1, 2 or 4), at C speed."""
    a = array(_TYPECODE[size], values)
    if a.itemsize != size:  # pragma: no cover - CPython's "B", "H", "I" are 1, 2, 4 bytes everywhere we run
        raise RuntimeError("unexpected array item size")
    if _SWAP and size > 1:
        a.byteswap()
    return a.tobytes()


def unpack_ints(data: bytes | memoryview, n: int, size: int) -> list[int]:
    _check(len(data) >= n * size)
    a = array(_TYPECODE[size])
    a.frombytes(data[: n * size])
    if _SWAP and size > 1:
        a.byteswap()
    return a.tolist()


class Posting(NamedTuple):
    """One term in one session: how often, and in which fields (a mask of TITLE..TOOL).

    A named tuple: an index build makes one per (term, session), and a tuple is built fastest.
    """

    tf: int
    mask: int


def _check(ok: bool) -> None:
    if not ok:
        raise IntegrityError(INTEGRITY)


def _term_list(terms: Sequence[str]) -> bytes:
    """``u32 length || the terms joined by 0x0A``: a term never holds 0x0A (only word
    characters: rule 2), and a reader splits the list at C speed."""
    raw = "\n".join(terms).encode()
    if any(not 0 < len(t.encode()) <= 64 or "\n" in t for t in terms):
        raise ValueError("terms are 1 to 64 UTF-8 bytes without a newline")
    return _U32.pack(len(raw)) + raw


def _read_term_list(view: memoryview, at: int, count: int) -> tuple[list[str], int]:
    (size,) = _U32.unpack_from(view, at)
    end = at + 4 + size
    _check(end <= len(view))
    terms = bytes(view[at + 4 : end]).decode().split("\n") if count else []
    _check(len(terms) == count and (size == 0) == (count == 0))
    return terms, end


# -- FTS_BUCKET ---------------------------------------------------------------------------------


def encode_bucket(rows: Sequence[tuple[str, Sequence[int], Sequence[int], Sequence[int]]]) -> bytes:
    """A bucket, in columns (docs/spec/fts-v1.md, "Segment"): the terms, their dfs, then every
    posting's ordinal delta, term frequency and field mask, term after term.

    *rows* are ``(term, ordinals ascending, tfs, masks)``, sorted by the term's UTF-8 bytes.
    """
    deltas: list[int] = []
    tfs: list[int] = []
    masks: list[int] = []
    for _term, ords, tf, mask in rows:
        deltas.append(ords[0])
        deltas.extend(b - a for a, b in pairwise(ords))
        tfs.extend(tf)
        masks.extend(mask)
    wd, wt = width(deltas), width(tfs)
    parts = [_U32.pack(len(rows)), _term_list([r[0] for r in rows])]
    parts += [pack_ints([len(r[1]) for r in rows], 4), bytes((wd, wt))]
    parts += [pack_ints(deltas, wd), pack_ints(tfs, wt), bytes(masks)]
    return b"".join(parts)


def encode_bucket_columns(
    terms: Sequence[bytes], dfs: Sequence[int], deltas: Sequence[int], tfs: Sequence[int], masks: bytes
) -> bytes:
    """:func:`encode_bucket` from its columns: the terms' UTF-8 (sorted, checked by the caller),
    their dfs, and every posting's ordinal delta, term frequency and field mask, term after term."""
    raw = b"\n".join(terms)
    wd, wt = width(deltas), width(tfs)
    parts = [_U32.pack(len(terms)), _U32.pack(len(raw)), raw, pack_ints(dfs, 4), bytes((wd, wt))]
    parts += [pack_ints(deltas, wd), pack_ints(tfs, wt), masks]
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class BucketView:
    """A bucket's parsed directory: where each term's postings are in the three columns."""

    index: dict[str, int]  # term -> its rank in the bucket
    dfs: list[int]
    starts: list[int]  # the rank's first posting, counted over the bucket's postings
    wd: int
    wt: int
    deltas_at: int
    tfs_at: int
    masks_at: int


def bucket_view(data: bytes) -> BucketView:
    """Parse a bucket's directory; check that its columns fill the payload exactly."""
    try:
        view = memoryview(data)
        (count,) = _U32.unpack_from(view, 0)
        terms, at = _read_term_list(view, 4, count)
        index = dict(zip(terms, range(count), strict=True))
        _check(len(index) == count)
        dfs = unpack_ints(view[at:], count, 4)
        at += 4 * count
        wd, wt = view[at], view[at + 1]
        _check(wd in _TYPECODE and wt in _TYPECODE and min(dfs, default=1) > 0)
        starts = [0, *accumulate(dfs)]
        total = starts[-1]
        deltas_at = at + 2
        tfs_at = deltas_at + wd * total
        masks_at = tfs_at + wt * total
        _check(masks_at + total == len(view))
        return BucketView(index, dfs, starts, wd, wt, deltas_at, tfs_at, masks_at)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


def bucket_postings(data: bytes, bv: BucketView, rank: int, n_docs: int) -> list[tuple[int, Posting]]:
    """The postings of the term of *rank*: ``(ordinal, Posting)``, ordinals checked against *n_docs*."""
    return _postings(data, bv.dfs[rank], bv.starts[rank], (bv.wd, bv.wt, bv.deltas_at, bv.tfs_at, bv.masks_at), n_docs)


def _postings(
    data: bytes, df: int, s: int, cols: tuple[int, int, int, int, int], n_docs: int
) -> list[tuple[int, Posting]]:
    wd, wt, deltas_at, tfs_at, masks_at = cols
    view = memoryview(data)
    deltas = unpack_ints(view[deltas_at + s * wd :], df, wd)
    tfs = unpack_ints(view[tfs_at + s * wt :], df, wt)
    masks = bytes(view[masks_at + s : masks_at + s + df])
    # Ordinals strictly rise and stay in the doc table; tfs and masks are never zero.
    _check(min(deltas[1:], default=1) > 0 and min(tfs) > 0 and min(masks) > 0 and max(masks) <= ALL_FIELDS)
    ords = list(accumulate(deltas))
    _check(ords[-1] < n_docs)
    # tuple.__new__: a Posting without the Python step of its generated __new__ (a common
    # word has thousands of postings per segment).
    return list(zip(ords, map(tuple.__new__, repeat(Posting), zip(tfs, masks, strict=True)), strict=True))


def bucket_lookup(data: bytes, term: str, n_docs: int) -> list[tuple[int, Posting]]:
    """:func:`bucket_postings` of *term* in the bucket *data* ([] if it lacks it), without
    parsing its directory into a table: a query looks up one or a few terms of a bucket's
    hundreds, and the table of them cost more than the bucket's decryption. The term's rank is
    where its line is among the bucket's term lines (a substring search and a count of the
    newlines before it, at C speed).

    Checked as :func:`bucket_view` checks a bucket, but for the order and distinctness of the
    other terms (which this answer does not read): the term lines number ``c``, the term is on
    one line only, the dfs are positive and the columns fill the payload exactly.
    """
    try:
        count, size = struct.unpack_from(">II", data, 0)
        at = 8 + size
        _check(at <= len(data) and (size == 0) == (count == 0))
        lines = b"\n" + data[8:at] + b"\n"
        _check(count == 0 or lines.count(b"\n") == count + 1)
        line = b"\n" + term.encode() + b"\n"
        found = lines.find(line) if count else -1  # an empty bucket's lines are b"\n\n"
        _check(found < 0 or lines.find(line, found + 1) < 0)
        dfs = unpack_ints(memoryview(data)[at:], count, 4)
        at += 4 * count
        wd, wt = data[at], data[at + 1]
        _check(wd in _TYPECODE and wt in _TYPECODE and min(dfs, default=1) > 0)
        total = sum(dfs)
        deltas_at = at + 2
        tfs_at = deltas_at + wd * total
        masks_at = tfs_at + wt * total
        _check(masks_at + total == len(data))
        if found < 0:
            return []
        rank = lines.count(b"\n", 0, found)  # the lines before the term's
        return _postings(data, dfs[rank], sum(dfs[:rank]), (wd, wt, deltas_at, tfs_at, masks_at), n_docs)
    except (struct.error, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


# -- FTS_PREFIX ---------------------------------------------------------------------------------


def encode_prefix(terms: Sequence[tuple[str, int]]) -> bytes:
    """A prefix bucket: ``u32 count``, the term list (sorted), then their dfs."""
    return _U32.pack(len(terms)) + _term_list([t for t, _df in terms]) + pack_ints([df for _t, df in terms], 4)


def decode_prefix(data: bytes) -> list[tuple[str, int]]:
    try:
        view = memoryview(data)
        (count,) = _U32.unpack_from(view, 0)
        terms, at = _read_term_list(view, 4, count)
        _check(len(view) == at + 4 * count)
        return list(zip(terms, unpack_ints(view[at:], count, 4), strict=True))
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


def prefix_run(data: bytes, prefix: str) -> list[tuple[str, int]]:
    """The rows of the prefix bucket *data* whose term starts with *prefix*, with their dfs
    (:func:`decode_prefix`'s, in order), without decoding its other terms: a prefix query
    wants a few of a bucket's thousand (decoding all of the 18 buckets a query opens cost more
    than reading them). The terms are sorted by UTF-8, so those that start with *prefix* are
    the lines from the first that does; its rank is the count of newlines before it.

    Checked as :func:`decode_prefix` checks a bucket, but for the other terms' UTF-8 (which
    this answer does not read): the term lines number ``c`` and the dfs fill the payload."""
    try:
        count, size = struct.unpack_from(">II", data, 0)
        at = 8 + size
        _check(len(data) == at + 4 * count and (size == 0) == (count == 0))
        lines = b"\n" + data[8:at] + b"\n"
        _check(count == 0 or lines.count(b"\n") == count + 1)
        head = b"\n" + prefix.encode()
        start = lines.find(head) if count else -1
        if start < 0:
            return []
        rank = lines.count(b"\n", 0, start)
        out: list[tuple[str, int]] = []
        while lines.startswith(head, start):
            end = lines.index(b"\n", start + 1)
            (df,) = _U32.unpack_from(data, at + 4 * (rank + len(out)))
            out.append((lines[start + 1 : end].decode(), df))
            start = end
        return out
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


# -- FTS_HEAD -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocEntry:
    """A session as one segment or delta record holds it."""

    session_id: UUID
    generation: int
    lengths: tuple[int, int, int, int]  # words per field: title, user, assistant, tool output


class DocTable(Sequence[DocEntry]):
    """A segment's doc table, decoded lazily: its columns (16-byte ids, generations, total
    lengths) are unpacked at C speed, and a :class:`DocEntry` (with its ``UUID``) is made only
    for an entry read. A cold query opens every segment and reads a handful of entries: making
    a ``UUID`` per session per segment was most of its cost (issue 23)."""

    __slots__ = ("_rows", "gens", "ids", "lengths")

    def __init__(self, rows: Sequence[tuple[bytes, int, int, int, int, int]]) -> None:
        self._rows = rows
        cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) or [()] * 6
        #: The raw session ids (16 bytes each) and generations, in ordinal order.
        self.ids: tuple[bytes, ...] = cols[0]
        self.gens: tuple[int, ...] = cols[1]
        #: Each entry's words in all fields (BM25's document length).
        self.lengths: list[int] = list(map(sum, zip(cols[2], cols[3], cols[4], cols[5], strict=True)))

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> DocEntry: ...
    @overload
    def __getitem__(self, i: slice) -> list[DocEntry]: ...
    def __getitem__(self, i: int | slice) -> DocEntry | list[DocEntry]:
        if isinstance(i, slice):
            return [_entry(r) for r in self._rows[i]]
        return _entry(self._rows[i])

    def __iter__(self) -> map[DocEntry]:  # an Iterator
        return map(_entry, self._rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DocTable):
            return self._rows == other._rows
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def _entry(row: tuple[bytes, int, int, int, int, int]) -> DocEntry:
    sid, gen, a, b, c, d = row
    return DocEntry(UUID(bytes=sid), gen, (a, b, c, d))


@dataclass(frozen=True, slots=True)
class Head:
    docs: Sequence[DocEntry]  # a DocTable when decoded
    buckets: list[tuple[int, int]]  # (offset of the frame in the file, its size), bucket order
    prefixes: list[tuple[int, int]]


def encode_head(head: Head) -> bytes:
    parts = [bytes((FTS_VERSION,)), _U32.pack(len(head.docs))]
    parts += [_DOC.pack(d.session_id.bytes, d.generation, *d.lengths) for d in head.docs]
    parts += [_U32.pack(len(head.buckets)), _U32.pack(len(head.prefixes))]
    parts += [_WHERE.pack(*w) for w in head.buckets + head.prefixes]
    return b"".join(parts)


def decode_head(data: bytes) -> Head:
    try:
        view = memoryview(data)
        _check(view[0] == FTS_VERSION)
        (n,) = _U32.unpack_from(view, 1)
        at = 5 + _DOC.size * n
        _check(len(view) >= at + 8)
        # iter_unpack: a cold query decodes every segment's doc table, so it runs at C speed.
        docs = DocTable(list(_DOC.iter_unpack(view[5:at])))
        nb, npf = struct.unpack_from(">II", view, at)
        at += 8
        _check(nb >= 1 and npf >= 1 and len(view) == at + _WHERE.size * (nb + npf))
        where: list[tuple[int, int]] = list(_WHERE.iter_unpack(view[at:]))
        _check(len(set(docs.ids)) == len(docs))
        return Head(docs, where[:nb], where[nb:])
    except (struct.error, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


# -- FTS_DELTA ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeltaRecord:
    """One write's postings for one session (docs/spec/fts-v1.md, "Delta log").

    *stamp* is the session file's ``(inode, size, mtime_ns)`` after the write, for the caller
    to compare with the file (the index is never trusted over the session files).
    """

    doc: DocEntry
    stamp: tuple[int, int, int]
    terms: dict[str, Posting]

    def posting(self, term: str) -> Posting | None:
        return self.terms.get(term)

    def may_hold(self, text: str) -> bool:
        """Whether a term may hold *text* (always: every term is parsed; as :class:`LazyDeltaRecord`)."""
        return True

    def starting(self, prefix: str) -> list[str]:
        """The terms that start with *prefix* (as :class:`LazyDeltaRecord`)."""
        return [t for t in self.terms if t.startswith(prefix)]

    def prefixed(self, prefix: str) -> dict[str, Posting]:
        """The terms that start with *prefix* and their postings (as :class:`LazyDeltaRecord`)."""
        return {t: p for t, p in self.terms.items() if t.startswith(prefix)}


def encode_delta(rec: DeltaRecord) -> bytes:
    return encode_delta_columns(rec.doc, rec.stamp, [t.encode() for t in rec.terms], *_columns(rec.terms))


def _columns(terms: dict[str, Posting]) -> tuple[list[int], bytes]:
    return [p.tf for p in terms.values()], bytes(p.mask for p in terms.values())


#: struct codes of one ``(term8, u32 tf, u8 mask)`` entry by the term's length: a record is
#: packed and parsed by one struct call over a format made of these (C speed, no step per term).
_ENTRY_PACK: Final = ["", *(f"B{n}sIB" for n in range(1, 65))]
_ENTRY_UNPACK: Final = ["", *(f"x{n}sIB" for n in range(1, 65))]
#: Zero or more whole entries (a length byte of 1 to 64, the term's bytes, tf, mask): a match
#: from the first entry to a position says that an entry starts there (one way only: each
#: entry's first byte picks its alternative).
_ENTRIES: Final = re.compile(
    b"(?s)(?:" + b"|".join(re.escape(bytes((n,))) + b".{%d}" % (n + 5) for n in range(1, 65)) + b")*"
)
_TF_MASK: Final = struct.Struct(">IB")


def encode_delta_columns(
    doc: DocEntry, stamp: tuple[int, int, int], terms: Sequence[bytes], tfs: Sequence[int], masks: bytes
) -> bytes:
    """:func:`encode_delta` from columns: the terms' UTF-8 (distinct, any order), their counts
    and field masks in the same order. The save of a big session encodes its 200,000 terms
    without a Python step per term: sorted by index, then one ``struct.pack`` (the same bytes
    as the per-term encoder: tests/unit/test_fts_perf.py)."""
    n = len(terms)
    head = _DELTA_HEAD.pack(FTS_VERSION, doc.session_id.bytes, doc.generation, *doc.lengths, *stamp, n)
    if not n:
        return head
    lens = bytes(map(len, terms))  # a term over 255 bytes raises here, under 1 below
    if not (min(lens) > 0 and max(lens) <= 64):
        raise ValueError("terms are 1 to 64 UTF-8 bytes")
    order = sorted(range(n), key=terms.__getitem__)  # by UTF-8 bytes, as the spec sorts
    sorted_lens = bytes(map(lens.__getitem__, order))
    args: list[object] = [None] * (4 * n)
    args[0::4] = sorted_lens
    args[1::4] = map(terms.__getitem__, order)
    args[2::4] = map(tfs.__getitem__, order)
    args[3::4] = map(masks.__getitem__, order)
    return head + struct.pack(">" + "".join(map(_ENTRY_PACK.__getitem__, sorted_lens)), *args)


def delta_head(data: bytes) -> tuple[UUID, int]:
    """``(session id, generation)`` of an FTS_DELTA payload, its terms left unparsed."""
    try:
        version, sid, gen = struct.unpack_from(">B16sQ", data, 0)
    except struct.error as exc:
        raise IntegrityError(INTEGRITY) from exc
    _check(version == FTS_VERSION)
    return UUID(bytes=sid), gen


def delta_stamp(data: bytes) -> tuple[UUID, int, tuple[int, int, int]]:
    """A record's session id, generation and stamp, without its terms (a writer's check)."""
    sid, gen, stamp = delta_stamp_raw(data)
    return UUID(bytes=sid), gen, stamp


def delta_stamp_raw(data: bytes) -> tuple[bytes, int, tuple[int, int, int]]:
    """:func:`delta_stamp` with the session id as its 16 bytes (no ``UUID`` made per record)."""
    try:
        version, sid, gen, _l0, _l1, _l2, _l3, ino, size, mtime, _n = _DELTA_HEAD.unpack_from(data, 0)
    except struct.error as exc:
        raise IntegrityError(INTEGRITY) from exc
    _check(version == FTS_VERSION)
    return sid, gen, (ino, size, mtime)


def decode_delta(data: bytes) -> DeltaRecord:
    try:
        version, sid, gen, l0, l1, l2, l3, ino, size, mtime, n = _DELTA_HEAD.unpack_from(data, 0)
        _check(version == FTS_VERSION)
        # The entries' lengths by one walk (the only step per term), then one struct call
        # parses them all (C speed): 20 times faster than a parse per term for a big record.
        at, end = _DELTA_HEAD.size, len(data)
        _check(n * 7 <= end - at)  # before the allocation: an entry is at least 7 bytes
        lens = bytearray(n)
        for i in range(n):  # past the end: IndexError, an integrity failure below
            lens[i] = k = data[at]
            at += k + 6
        _check(at == end and (n == 0 or (min(lens) > 0 and max(lens) <= 64)))
        flat = struct.unpack_from(">" + "".join(map(_ENTRY_UNPACK.__getitem__, lens)), data, _DELTA_HEAD.size)
        tfs, masks = flat[1::3], bytes(flat[2::3])
        names = list(map(bytes.decode, flat[0::3]))
        _check(n == 0 or (min(tfs) > 0 and min(masks) > 0 and max(masks) <= ALL_FIELDS))
        # tuple.__new__: a Posting without the Python step of its generated __new__.
        terms = dict(zip(names, map(tuple.__new__, repeat(Posting), zip(tfs, masks, strict=True)), strict=True))
        _check(len(terms) == n)
        return DeltaRecord(DocEntry(UUID(bytes=sid), gen, (l0, l1, l2, l3)), (ino, size, mtime), terms)
    except (struct.error, UnicodeDecodeError, IndexError, TypeError) as exc:
        raise IntegrityError(INTEGRITY) from exc


def _finds(data: bytes, needle: bytes, at: int) -> Iterator[int]:
    """Where *needle* is in *data* from *at* on, ascending (overlapping ones too)."""
    at = data.find(needle, at)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


class LazyDeltaRecord:
    """A delta record for a query: its head parsed, its terms at the first lookup that may find
    one. A term is its UTF-8 bytes in the payload, so a lookup whose bytes the payload lacks
    (most of them: a query looks up a few words in thousands of one-turn records) costs one
    C-speed substring test, not a parse (docs/design.md, "The cost of the index").

    The terms parse as :func:`decode_delta` parses them: an authentic payload that does not
    parse raises :class:`IntegrityError` at that lookup (a bug or a forgery: never an answer).
    """

    __slots__ = ("_payload", "_terms", "_walked", "doc", "stamp")

    def __init__(self, payload: bytes) -> None:
        try:
            version, sid, gen, l0, l1, l2, l3, ino, size, mtime, _n = _DELTA_HEAD.unpack_from(payload, 0)
        except struct.error as exc:
            raise IntegrityError(INTEGRITY) from exc
        _check(version == FTS_VERSION)
        self.doc = DocEntry(UUID(bytes=sid), gen, (l0, l1, l2, l3))
        self.stamp: tuple[int, int, int] = (ino, size, mtime)
        self._payload = payload
        self._terms: dict[str, Posting] | None = None
        self._walked = False

    @property
    def terms(self) -> dict[str, Posting]:
        if self._terms is None:
            self._terms = decode_delta(self._payload).terms
        return self._terms

    def posting(self, term: str) -> Posting | None:
        """*term*'s posting in this record, if any. Without decoding the record's terms: a
        record of a whole session holds tens of thousands, a query looks up a few, and a
        common word is in every such record (a delta log of 19 of them cost a query 130 ms).
        The entries are walked by a regular expression instead (C speed; an entry's first
        byte says its length), once per record, which checks that they tile the payload
        exactly; the term's entry is where its length byte and bytes start an entry.

        Checked as :func:`decode_delta` checks a record, but for what this answer does not
        read: the other entries' counts, masks, UTF-8 and distinctness, and their number
        (a merge and ``verify`` decode it all); the term is in one entry at most."""
        if self._terms is not None:
            return self._terms.get(term)
        raw = term.encode()
        needle = bytes((len(raw),)) + raw if 0 < len(raw) <= 64 else b""
        data = self._payload
        if not needle or needle not in data:
            return None
        found: Posting | None = None
        try:  # an entry found before the walk reached the end may be cut short: refused
            for at in self._entry_starts(_finds(data, needle, _DELTA_HEAD.size)):
                _check(found is None)
                tf, mask = _TF_MASK.unpack_from(data, at + len(needle))
                _check(tf > 0 and 0 < mask <= ALL_FIELDS)
                found = Posting(tf, mask)
        except struct.error as exc:
            raise IntegrityError(INTEGRITY) from exc
        return found

    def may_hold(self, text: str) -> bool:
        """False only if no term of the record holds *text* (a term or a prefix of one)."""
        return self._terms is not None or text.encode() in self._payload

    def starting(self, prefix: str) -> list[str]:
        """The terms that start with *prefix* (a prefix query's expansion): :meth:`prefixed`'s."""
        return list(self.prefixed(prefix))

    def prefixed(self, prefix: str) -> dict[str, Posting]:
        """The terms that start with *prefix* and their postings, found as :meth:`posting`
        finds one (the entries whose length byte, at least the prefix's, and bytes start an
        entry; the others not decoded), by one walk of the entries: a prefix query's terms
        and their postings together (a lookup of each term after the expansion walked a big
        record once more per term). Checked as :meth:`posting` checks its entry, and the
        terms are distinct."""
        if self._terms is not None:
            return {t: p for t, p in self._terms.items() if t.startswith(prefix)}
        raw = prefix.encode()
        data = self._payload
        if not 0 < len(raw) <= 64 or raw not in data:
            return {}
        out: dict[str, Posting] = {}
        # Every place a length byte may stand before the prefix, overlapping ones too (a digit
        # is also a length byte); each kept only where an entry starts. The prefix's bytes are
        # found at C speed and the byte before tested: a pattern of a class and a look-ahead
        # is tried at every position (a 1.1 MB record: 11.5 ms of CPU that way, 0.5 ms this).
        found = _finds(data, raw, _DELTA_HEAD.size + 1)
        for at in self._entry_starts(p - 1 for p in found if 0 < data[p - 1] <= 64):
            n = data[at]
            if n >= len(raw):
                try:
                    term = data[at + 1 : at + 1 + n].decode()
                    tf, mask = _TF_MASK.unpack_from(data, at + 1 + n)
                except (UnicodeDecodeError, struct.error) as exc:
                    raise IntegrityError(INTEGRITY) from exc
                _check(tf > 0 and 0 < mask <= ALL_FIELDS and term not in out)
                out[term] = Posting(tf, mask)
        return out

    def _entry_starts(self, places: Iterable[int]) -> Iterator[int]:
        """The ones of *places* (ascending) where an entry starts. The entries are walked from
        the last start found, never again from the first: a record's walk costs one pass
        whatever the places (false ones, such as a digit before the text, are many in a big
        record: a walk from the first entry for each took seconds at 250,000 terms). The
        record's first walk goes on to its end, which checks that the entries tile the payload:
        once per record, and the walk to the places is not made twice. A caller reads the
        generator to its end before it answers (the check is at the end)."""
        data, base = self._payload, _DELTA_HEAD.size
        for at in places:
            if at < base:
                continue
            m = _ENTRIES.match(data, base, at)  # the whole entries from *base* that end by *at*
            if m is None:  # pragma: no cover - zero entries always match
                raise IntegrityError(INTEGRITY)
            base = m.end()
            if base == at:
                yield at
        if not self._walked:  # from an entry's start: the rest must be whole entries
            _check(_ENTRIES.fullmatch(data, base) is not None)
            self._walked = True
