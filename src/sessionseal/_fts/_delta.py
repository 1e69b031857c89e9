"""The delta log: sealed records appended by each write (docs/spec/fts-v1.md, "Delta log").

A container-v1 container of kind FTS_DELTA (object id zero) whose frames are FTS_DELTA records,
appended under the container's own DEK. An append costs one sealed frame and one ``fsync``,
whatever the size of the index: O(turn). The caller holds the vault lock around an append and
compacts the log into a segment (:func:`~sessionseal._fts._segment.merge`) when it grows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal, overload
from uuid import UUID

from .. import _container, _crypto
from .._container import FrameType, Kind
from .._fswrite import write_all
from .._gc import collector_paused
from ..errors import IntegrityError
from . import _format as F
from ._format import DeltaRecord, LazyDeltaRecord

__all__ = [
    "append_delta",
    "append_frame",
    "delta_frame",
    "delta_frames",
    "delta_stamps",
    "frame_head",
    "new_delta",
    "open_delta_header",
    "read_delta",
    "read_delta_current",
    "rewrite_delta",
]

_ZERO: Final = UUID(int=0)
#: A record must be whole before its frame is read: a frame longer than this is damage.
_MAX_RECORD: Final = 1 << 30


def new_delta(
    vault_id: UUID, key: bytes, generation: int, *, dek: bytes | None = None, nonce: bytes | None = None
) -> bytes:
    """The bytes of an empty delta log under *key* (the caller writes them atomically)."""
    return _container.seal(
        kind=Kind.FTS_DELTA,
        vault_id=vault_id,
        object_id=_ZERO,
        generation=generation,
        kek=F.SubKeys.of(key).seal,
        kek_epoch=0,
        frames=[],
        dek=dek,
        nonces=iter([nonce]) if nonce is not None else None,
    )


def _open_header(data: bytes, vault_id: UUID, key: bytes) -> tuple[_container.Header, bytes]:
    header = _container.parse_unverified_header(data)
    if header.kind != Kind.FTS_DELTA or header.vault_id != vault_id or header.object_id != _ZERO:
        raise IntegrityError(F.INTEGRITY)
    if header.kek_epoch != 0:
        raise IntegrityError(F.INTEGRITY)
    return header, _crypto.unwrap_key(F.SubKeys.of(key).seal, header.wrapped_dek, header.wrap_aad)


def open_delta_header(data: bytes, vault_id: UUID, key: bytes) -> tuple[_container.Header, bytes]:
    """A delta log's header (its first :data:`~sessionseal._container.HEADER_SIZE` bytes at
    least) and its DEK. :raises IntegrityError: not this vault's log, or not under *key*."""
    return _open_header(data, vault_id, key)


def delta_frames(data: bytes | memoryview, *, pos: int = _container.HEADER_SIZE) -> list[tuple[int, int]]:
    """``(start, end)`` of each whole frame from *pos* (a frame's start), by the length fields
    alone: nothing is decrypted; a torn last frame is left out."""
    return list(_frames(data, torn_tail_ok=True, pos=pos))


def frame_head(
    frame: bytes | memoryview, header: _container.Header, dek: bytes, index: int
) -> tuple[bytes, int, tuple[int, int, int]]:
    """The session id (its 16 bytes), generation and stamp of record *index*, given its whole
    frame's bytes (authenticated; its terms are not parsed)."""
    frames, at = _container.open_frames_at(frame, header, dek, 0, index)
    if len(frames) != 1 or at != len(frame) or frames[0].type != FrameType.FTS_DELTA:
        raise IntegrityError(F.INTEGRITY)
    return F.delta_stamp_raw(_container.decode_payload(frames[0].data))


def _frames(
    data: bytes | memoryview, *, torn_tail_ok: bool, pos: int = _container.HEADER_SIZE
) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each whole frame; a torn last frame ends the walk if allowed."""
    while pos < len(data):
        if len(data) - pos < 5:
            if torn_tail_ok:
                return
            raise IntegrityError(F.INTEGRITY)
        length = int.from_bytes(data[pos : pos + 4], "big")
        if length > _MAX_RECORD:
            raise IntegrityError(F.INTEGRITY)
        end = pos + 4 + length
        if end > len(data):
            if torn_tail_ok:
                return
            raise IntegrityError(F.INTEGRITY)
        yield pos, end
        pos = end


def read_delta(data: bytes, vault_id: UUID, key: bytes, *, torn_tail_ok: bool = False) -> list[DeltaRecord]:
    """Every record of a delta log's bytes, in order.

    With *torn_tail_ok* (queries), an incomplete last frame is ignored: a write killed before
    its ``fsync`` ended; the session it describes is then behind the file's stamp. ``verify``
    reads strictly. A complete frame that fails authentication always raises.

    :raises IntegrityError: wrong key, wrong vault, any modified byte.
    """
    with collector_paused():
        return [F.decode_delta(p) for p in _payloads(data, vault_id, key, torn_tail_ok=torn_tail_ok)]


@overload
def read_delta_current(
    data: bytes, vault_id: UUID, key: bytes, *, lazy: Literal[False] = False
) -> tuple[list[DeltaRecord], set[tuple[UUID, int]]]: ...
@overload
def read_delta_current(
    data: bytes, vault_id: UUID, key: bytes, *, lazy: Literal[True]
) -> tuple[list[LazyDeltaRecord], set[tuple[UUID, int]]]: ...
def read_delta_current(
    data: bytes, vault_id: UUID, key: bytes, *, lazy: bool = False
) -> tuple[list[DeltaRecord], set[tuple[UUID, int]]] | tuple[list[LazyDeltaRecord], set[tuple[UUID, int]]]:
    """What a query and a compaction need of a delta log (a torn last frame ignored): its
    records, in order, less those a record of the same session at a higher generation in the
    same log replaces, and ``(session, generation)`` of every record.

    Every frame is authenticated, but a replaced record's terms are not parsed: the generation
    rule ignores them, and the saves of a big session fill a log with such records (a 10 MB
    session's has 200,000 terms). ``verify`` parses every record (:func:`read_delta`).
    With *lazy* (a query), the records kept are :class:`~._format.LazyDeltaRecord` s: their
    terms are parsed at the first lookup that may find one.
    """
    payloads = list(_payloads(data, vault_id, key, torn_tail_ok=True))
    heads = [F.delta_head(p) for p in payloads]
    top: dict[UUID, int] = {}
    for sid, gen in heads:
        top[sid] = max(gen, top.get(sid, gen))
    kept = [p for p, (sid, gen) in zip(payloads, heads, strict=True) if gen == top[sid]]
    if lazy:
        return [LazyDeltaRecord(p) for p in kept], set(heads)
    with collector_paused():
        return [F.decode_delta(p) for p in kept], set(heads)


def _payloads(data: bytes, vault_id: UUID, key: bytes, *, torn_tail_ok: bool) -> Iterator[bytes]:
    """Each whole frame's FTS_DELTA payload, authenticated and decompressed, in order."""
    header, dek = _open_header(data, vault_id, key)
    for index, (start, end) in enumerate(_frames(data, torn_tail_ok=torn_tail_ok)):
        frames, at = _container.open_frames_at(data[start:end], header, dek, 0, index)
        if len(frames) != 1 or at != end - start or frames[0].type != FrameType.FTS_DELTA:
            raise IntegrityError(F.INTEGRITY)
        yield _container.decode_payload(frames[0].data)


def delta_stamps(data: bytes, vault_id: UUID, key: bytes) -> list[tuple[UUID, int, tuple[int, int, int]]]:
    """Each record's session id, generation and stamp, in order, a torn last frame left out
    (every frame authenticated; the terms are not parsed): what a writer checks its session's
    state in the index against."""
    header, dek = _open_header(data, vault_id, key)
    view = memoryview(data)
    heads = [frame_head(view[s:e], header, dek, i) for i, (s, e) in enumerate(_frames(data, torn_tail_ok=True))]
    return [(UUID(bytes=sid), gen, stamp) for sid, gen, stamp in heads]


def delta_frame(
    header_raw: bytes,
    dek: bytes,
    index: int,
    record: DeltaRecord | bytes,
    *,
    compress: bool,
    nonce: bytes | None = None,
) -> bytes:
    """One sealed FTS_DELTA frame: record *index* of the log whose header is *header_raw*
    (*record* may be given encoded already: :func:`~._format.encode_delta_columns`)."""
    raw = record if isinstance(record, bytes) else F.encode_delta(record)
    payload = _container.encode_payload(raw, compress=compress)
    return _container.seal_frame(dek, header_raw, index, FrameType.FTS_DELTA, payload, nonce=nonce)


def append_delta(
    path: Path | int, vault_id: UUID, key: bytes, record: DeltaRecord | bytes, *, compress: bool = True
) -> int:
    """Append *record* (a record, or one encoded already: :func:`~._format.encode_delta_columns`)
    to the delta log at *path* (or on a descriptor open for reading and writing, which stays the
    caller's) and ``fsync`` it; return the log's new size.

    The caller holds the vault lock. A torn frame a killed writer left is cut off first, so the
    new record follows the last whole one and a reader never sees it after garbage.
    """
    fd = path if isinstance(path, int) else os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        data = _read_fd(fd)
        header, dek = _open_header(data, vault_id, key)
        whole = list(_frames(data, torn_tail_ok=True))
        count, end = len(whole), (whole[-1][1] if whole else _container.HEADER_SIZE)
        return append_frame(fd, end, delta_frame(header.raw, dek, count, record, compress=compress))
    finally:
        if not isinstance(path, int):
            os.close(fd)


def append_frame(fd: int, end: int, frame: bytes) -> int:
    """Write a sealed *frame* (:func:`delta_frame`, numbered after the last whole frame) at
    *end*, where that frame ends, cutting off whatever a killed writer left after it, and
    ``fsync``; return the log's new size. The caller holds the vault lock."""
    os.ftruncate(fd, end)
    os.lseek(fd, end, os.SEEK_SET)
    write_all(fd, frame)
    os.fsync(fd)
    return end + len(frame)


def rewrite_delta(
    data: bytes,
    vault_id: UUID,
    key: bytes,
    *,
    new_key: bytes,
    generation: int,
    drop: frozenset[UUID],
    compress: bool = True,
) -> bytes:
    """A new delta log, under *new_key*, holding the records of *data* but *drop*'s sessions.

    The erasing rotation's step for the delta log (docs/spec/fts-v1.md, "Generations"): the
    caller writes the bytes atomically, records *new_key* in the new manifest, and only then
    lets the old key go. A torn last record is left behind: its session is behind its stamp.
    """
    dek = _crypto.new_key()
    out = [new_delta(vault_id, new_key, generation, dek=dek)]
    header = out[0][: _container.HEADER_SIZE]
    kept = [r for r in read_delta(data, vault_id, key, torn_tail_ok=True) if r.doc.session_id not in drop]
    out += [delta_frame(header, dek, i, r, compress=compress) for i, r in enumerate(kept)]
    return b"".join(out)


def _read_fd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    if len(data) != size:
        raise IntegrityError(F.INTEGRITY)
    return data
