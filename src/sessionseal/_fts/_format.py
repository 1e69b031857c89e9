"""Byte layouts of the full-text index's payloads (docs/spec/fts-v1.md), keys, and bucket choice.

Every integer is unsigned big-endian, as in container-v1. Payloads are parsed only after their
frame authenticated; a payload that still does not parse is reported as the same opaque
:class:`~sessionseal.errors.IntegrityError` (a bug or a forgery: never a wrong answer).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Final
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
_TERM_TF_MASK: Final = struct.Struct(">IB")
_DIR_TAIL: Final = struct.Struct(">II")
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


def bucket_count(n_terms: int, per_bucket: int = TERMS_PER_BUCKET) -> int:
    """The smallest power of two with at most about *per_bucket* terms per bucket."""
    n = 1
    while n * per_bucket < n_terms:
        n *= 2
    return n


def u32_array(values: Iterable[int]) -> bytes:
    a = array("I", values)
    if a.itemsize != 4:  # pragma: no cover - every CPython platform we support has a 4-byte "I"
        raise RuntimeError("array 'I' is not 4 bytes here")
    if _SWAP:
        a.byteswap()
    return a.tobytes()


def read_u32_array(data: bytes | memoryview, n: int) -> list[int]:
    a = array("I")
    a.frombytes(data[: 4 * n])
    if _SWAP:
        a.byteswap()
    return a.tolist()


@dataclass(frozen=True, slots=True)
class Posting:
    """One term in one session: how often, and in which fields (a mask of TITLE..TOOL)."""

    tf: int
    mask: int


def _check(ok: bool) -> None:
    if not ok:
        raise IntegrityError(INTEGRITY)


def _read_term(view: memoryview, at: int) -> tuple[str, int]:
    n = view[at]
    _check(0 < n <= 64 and at + 1 + n <= len(view))
    return bytes(view[at + 1 : at + 1 + n]).decode(), at + 1 + n


def _term_bytes(term: str) -> bytes:
    raw = term.encode()
    if not 0 < len(raw) <= 64:
        raise ValueError("terms are 1 to 64 UTF-8 bytes")
    return bytes((len(raw),)) + raw


# -- FTS_BUCKET ---------------------------------------------------------------------------------


def encode_bucket(rows: Sequence[tuple[str, Sequence[int], Sequence[int], Sequence[int]]]) -> bytes:
    """A bucket: ``u32 count``, the directory, then each term's postings (docs/spec/fts-v1.md).

    *rows* are ``(term, ordinals ascending, tfs, masks)``, sorted by the term's UTF-8 bytes.
    """
    directory = [_U32.pack(len(rows))]
    blocks: list[bytes] = []
    offset = 0
    for term, ords, tfs, masks in rows:
        deltas = [ords[0]] + [b - a for a, b in pairwise(ords)]
        block = u32_array(deltas) + u32_array(tfs) + bytes(masks)
        directory.append(_term_bytes(term) + _DIR_TAIL.pack(len(ords), offset))
        blocks.append(block)
        offset += len(block)
    return b"".join(directory + blocks)


def bucket_directory(data: bytes) -> tuple[dict[str, tuple[int, int]], int]:
    """Parse a bucket's directory: ``{term: (df, offset)}`` and where the postings start."""
    try:
        view = memoryview(data)
        (count,) = _U32.unpack_from(view, 0)
        at = 4
        out: dict[str, tuple[int, int]] = {}
        for _ in range(count):
            term, at = _read_term(view, at)
            df, off = _DIR_TAIL.unpack_from(view, at)
            at += 8
            _check(df > 0 and term not in out)
            out[term] = (df, off)
        return out, at
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


def bucket_postings(data: bytes, base: int, df: int, offset: int, n_docs: int) -> list[tuple[int, Posting]]:
    """One term's postings in a bucket: ``(ordinal, Posting)``, ordinals checked against *n_docs*."""
    start = base + offset
    end = start + 9 * df
    _check(df > 0 and end <= len(data))
    view = memoryview(data)
    deltas = read_u32_array(view[start:], df)
    tfs = read_u32_array(view[start + 4 * df :], df)
    masks = bytes(view[start + 8 * df : end])
    # Ordinals strictly rise and stay in the doc table; tfs and masks are never zero.
    _check(min(deltas[1:], default=1) > 0 and min(tfs) > 0 and min(masks) > 0 and max(masks) <= ALL_FIELDS)
    ords = list(accumulate(deltas))
    _check(ords[-1] < n_docs)
    return [(d, Posting(tf, m)) for d, tf, m in zip(ords, tfs, masks, strict=True)]


# -- FTS_PREFIX ---------------------------------------------------------------------------------


def encode_prefix(terms: Sequence[tuple[str, int]]) -> bytes:
    """A prefix bucket: ``u32 count`` then ``(term, u32 df)`` sorted by the term's UTF-8 bytes."""
    return b"".join([_U32.pack(len(terms))] + [_term_bytes(t) + _U32.pack(df) for t, df in terms])


def decode_prefix(data: bytes) -> list[tuple[str, int]]:
    try:
        view = memoryview(data)
        (count,) = _U32.unpack_from(view, 0)
        at, out = 4, []
        for _ in range(count):
            term, at = _read_term(view, at)
            (df,) = _U32.unpack_from(view, at)
            at += 4
            out.append((term, df))
        _check(at == len(view))
        return out
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc


# -- FTS_HEAD -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocEntry:
    """A session as one segment or delta record holds it."""

    session_id: UUID
    generation: int
    lengths: tuple[int, int, int, int]  # words per field: title, user, assistant, tool output


@dataclass(frozen=True, slots=True)
class Head:
    docs: list[DocEntry]
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
        at = 5
        docs = []
        for _ in range(n):
            sid, gen, *lengths = _DOC.unpack_from(view, at)
            docs.append(DocEntry(UUID(bytes=sid), gen, (lengths[0], lengths[1], lengths[2], lengths[3])))
            at += _DOC.size
        nb, npf = struct.unpack_from(">II", view, at)
        at += 8
        _check(nb >= 1 and npf >= 1 and len(view) == at + _WHERE.size * (nb + npf))
        where = [_WHERE.unpack_from(view, at + _WHERE.size * i) for i in range(nb + npf)]
        _check(len({d.session_id for d in docs}) == len(docs))
        return Head(docs, [(o, s) for o, s in where[:nb]], [(o, s) for o, s in where[nb:]])
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


def encode_delta(rec: DeltaRecord) -> bytes:
    d = rec.doc
    head = _DELTA_HEAD.pack(FTS_VERSION, d.session_id.bytes, d.generation, *d.lengths, *rec.stamp, len(rec.terms))
    body = [_term_bytes(t) + _TERM_TF_MASK.pack(p.tf, p.mask) for t, p in sorted(rec.terms.items(), key=_utf8)]
    return head + b"".join(body)


def _utf8(item: tuple[str, Posting]) -> bytes:
    return item[0].encode()


def decode_delta(data: bytes) -> DeltaRecord:
    try:
        view = memoryview(data)
        version, sid, gen, l0, l1, l2, l3, ino, size, mtime, n = _DELTA_HEAD.unpack_from(view, 0)
        _check(version == FTS_VERSION)
        at = _DELTA_HEAD.size
        terms: dict[str, Posting] = {}
        for _ in range(n):
            term, at = _read_term(view, at)
            tf, mask = _TERM_TF_MASK.unpack_from(view, at)
            at += _TERM_TF_MASK.size
            _check(tf > 0 and 0 < mask <= ALL_FIELDS and term not in terms)
            terms[term] = Posting(tf, mask)
        _check(at == len(view))
        return DeltaRecord(DocEntry(UUID(bytes=sid), gen, (l0, l1, l2, l3)), (ino, size, mtime), terms)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(INTEGRITY) from exc
