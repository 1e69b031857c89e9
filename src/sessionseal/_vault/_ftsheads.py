"""An append's check against the delta log, and the log's heads checkpoint (docs/spec/fts-v1.md,
"Writers" and "Heads checkpoint").

An append indexes its turn alone only if the index holds the session as its file was before
the append: the generation and the stamp's size folded from the manifest and the delta log's
records (what the file holds; its inode and mtime are a copy's own). A
fresh process (every ``sessionseal append``) has no memory of the log, and folding its up to
2,000 records cost 150-200 ms: O(log), where the issue asks O(turn). So the fold is kept on
disk, sealed: ``fts/<log id>.heads`` holds, per session, the fold of the log's first ``c``
records, with the log's header and the GCM tag of record ``c - 1``. A reader takes it only
while that tag is still at that offset of that log (the log is append-only under its name), and
folds the records after it; a missing, damaged, stale or rolled-back checkpoint is never an
answer: the log is folded from its first record, as before, and the writer replaces the
checkpoint. An older checkpoint of the same log is still a true fold of the log's first ``c``
records, so a rolled-back one costs records read, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
import sys
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .. import _container, _crypto
from .._container import FrameType, Kind
from .._fs import Dir
from .._fts import DeltaRecord, append_frame, delta_frame, delta_frames, frame_head, open_delta_header
from ..errors import IntegrityError, SessionSealError
from ._ftsfiles import Manifest, Stamp

__all__ = ["EVERY", "LogHeads", "check_heads", "open_heads", "seal_heads"]

Stamp4 = tuple[int, int, int, int]
#: The checkpoint's kek: ``HKDF-SHA256(the delta key, info = this)``.
LABEL_HEADS: Final = b"sessionseal v1 fts heads"
VERSION: Final = 1
#: A writer that holds the whole fold rewrites the checkpoint once this many records follow
#: the one it knows on disk: a fresh process then reads at most this many records.
EVERY = 32
#: version, the log's header, records covered (c), where record c - 1 ends, its tag, sessions.
_HEAD: Final = struct.Struct(f">B{_container.HEADER_SIZE}sIQ16sI")
#: A frame ends with its GCM tag: 16 random-looking bytes that name it.
TAG: Final = 16
_ID: Final = 16
_SWAP: Final = sys.byteorder == "little"
_MAX_HEADS: Final = 64 << 20
INTEGRITY: Final = "the full-text index's heads checkpoint failed its integrity check"


@dataclass(frozen=True)
class Heads:
    """A checkpoint's content: the fold of the log's first *count* records, which end at *end*
    with the GCM tag *tail*, per session id's 16 bytes."""

    log_header: bytes
    count: int
    end: int
    tail: bytes
    fold: dict[bytes, Stamp4]


def encode_heads(h: Heads) -> bytes:
    """The payload (before the container's encoding byte): ids sorted, then their stamps."""
    ids = sorted(h.fold)
    vals = array("Q")
    for sid in ids:
        vals.extend(h.fold[sid])
    if _SWAP:
        vals.byteswap()
    return _HEAD.pack(VERSION, h.log_header, h.count, h.end, h.tail, len(ids)) + b"".join(ids) + vals.tobytes()


def decode_heads(raw: bytes) -> Heads:
    """:raises ValueError: anything out of place (reported as an integrity failure)."""
    version, log_header, count, end, tail, n = _HEAD.unpack_from(raw, 0)
    at = _HEAD.size
    if version != VERSION or count < 1 or end < _container.HEADER_SIZE + TAG or at + n * (_ID + 32) != len(raw):
        raise ValueError("heads")
    ids = [raw[at + i * _ID : at + (i + 1) * _ID] for i in range(n)]
    if any(a >= b for a, b in itertools.pairwise(ids)):
        raise ValueError("heads order")
    vals = array("Q")
    vals.frombytes(raw[at + n * _ID :])
    if _SWAP:
        vals.byteswap()
    fold = {sid: (vals[4 * i], vals[4 * i + 1], vals[4 * i + 2], vals[4 * i + 3]) for i, sid in enumerate(ids)}
    return Heads(log_header, count, end, tail, fold)


def seal_heads(
    vault_id: uuid.UUID,
    log_id: uuid.UUID,
    log_key: bytes,
    h: Heads,
    *,
    compress: bool = True,
    dek: bytes | None = None,
    nonces: list[bytes] | None = None,
) -> bytes:
    """The checkpoint file: a container of kind 10 (the delta log's) whose object id is the
    log's id (a log's is zero), generation *count*, one BODY frame (*dek*, *nonces*: vectors)."""
    return _container.seal(
        kind=Kind.FTS_DELTA,
        vault_id=vault_id,
        object_id=log_id,
        generation=h.count,
        kek=_crypto.derive_key(log_key, LABEL_HEADS),
        kek_epoch=0,
        frames=[(FrameType.BODY, _container.encode_payload(encode_heads(h), compress=compress))],
        dek=dek,
        nonces=iter(nonces) if nonces is not None else None,
    )


def open_heads(data: bytes, vault_id: uuid.UUID, log_id: uuid.UUID, log_key: bytes) -> Heads:
    """:raises IntegrityError: not this log's checkpoint, or any byte changed."""
    try:
        header = _container.parse_unverified_header(data)
        if (
            header.kind != Kind.FTS_DELTA
            or header.vault_id != vault_id
            or header.object_id != log_id
            or log_id.int == 0
            or header.kek_epoch != 0
        ):
            raise IntegrityError(INTEGRITY)
        _dek, frames = _container.open_frames(data, header, _crypto.derive_key(log_key, LABEL_HEADS))
        if len(frames) != 1 or frames[0].type != FrameType.BODY:
            raise IntegrityError(INTEGRITY)
        h = decode_heads(_container.decode_payload(frames[0].data))
        if h.count != header.generation:
            raise IntegrityError(INTEGRITY)
        return h
    except (ValueError, struct.error, IndexError):
        raise IntegrityError(INTEGRITY) from None


def _load(fts: Dir, man: Manifest, vault_id: uuid.UUID, log_header: bytes, *, fd: int, size: int) -> Heads | None:
    """The log's checkpoint if it vouches for the log on *fd* as it is: same header, and record
    ``count - 1``'s tag still where it ended. None otherwise (the caller folds from record 0)."""
    try:
        h = open_heads(fts.read(man.heads_name, max_size=_MAX_HEADS), vault_id, man.delta_id, man.delta_key)
    except (FileNotFoundError, SessionSealError, OSError):
        return None
    if h.log_header != log_header or h.end > size or os.pread(fd, TAG, h.end - TAG) != h.tail:
        return None
    return h


@dataclass
class _Remembered:
    """What a process last knew of one delta log: every whole frame up to *end* (*count* of
    them, the last ending in *tail*, its GCM tag), folded per session (the view's rule), and
    the records the checkpoint on disk covers as it last knew (*saved*)."""

    ident: tuple[str, bytes, int, int, bytes]  # name, key, st_dev, st_ino, header
    header: _container.Header
    dek: bytes
    count: int
    end: int
    tail: bytes
    fold: dict[bytes, Stamp4]  # by the session id's 16 bytes
    saved: int

    def add(self, sid: bytes, generation: int, stamp: Stamp) -> None:
        have = self.fold.get(sid)
        if have is None or generation >= have[0]:
            self.fold[sid] = (generation, *stamp)


class LogHeads:
    """An append's check against the delta log (docs/spec/fts-v1.md, "Writers"), without
    decrypting every record's head: the index must hold the session as its file was before the
    append, the generation and the stamp's size folded from the manifest and the log's records.

    A process remembers the fold of the log's records as last read, with the log's identity
    (name, key, device, inode, header) and the tag of the last frame it read: the log is
    append-only under its name (a compaction or rotation writes a new one), so while that frame
    is still at that offset, only the frames after it are new. Without that memory (a fresh
    process, another log), it starts from the log's checkpoint (or record 0 without a valid one)
    and reads the records after it back from the last one until one of the session's (a
    session's generations only rise, so its last record is the fold's); when the checkpoint is
    :data:`EVERY` records behind, or the session is not among those records, they are folded
    whole, remembered, and a checkpoint that is due is written."""

    def __init__(self) -> None:
        self._mem: _Remembered | None = None
        #: The log's whole records after the last append (a compaction's trigger: no second read).
        self.frames = 0

    def forget(self) -> None:
        self._mem = None

    def append(
        self,
        fts: Dir,
        fd: int,
        man: Manifest,
        vault_id: uuid.UUID,
        record: bytes,
        *,
        head: tuple[uuid.UUID, int, Stamp],
        after: tuple[int, int] | None,
    ) -> int | None:
        """Append *record* (whose session, generation and stamp are *head*) to the log open on
        *fd* if the index holds its session at *after*, (generation, size) (None: always);
        return the log's new size, or None (nothing written: the index missed a write of the
        session). The stamp's inode and mtime are not compared: a session file keeps its
        generation and grows only at its committed end until it is rewritten, so the two name
        what the index saw, in a copy of the vault's files too."""
        self._mem, mem = None, self._mem  # remembered again only once this append is done
        st = os.fstat(fd)
        ident = (man.delta_name, man.delta_key, st.st_dev, st.st_ino)
        sid = head[0].bytes
        last: Stamp4 | None = None
        if mem is not None and _still(mem, fd, ident, st.st_size):
            base = mem.end
            view = memoryview(_pread(fd, st.st_size - base, base))
            for s, e in delta_frames(view, pos=0):
                mem.add(*frame_head(view[s:e], mem.header, mem.dek, mem.count))
                mem.count, mem.end, mem.tail = mem.count + 1, base + e, bytes(view[e - TAG : e])
            last = mem.fold.get(sid)
            header, dek, count, end = mem.header, mem.dek, mem.count, mem.end
        else:
            header, dek = open_delta_header(_pread(fd, _container.HEADER_SIZE, 0), vault_id, man.delta_key)
            ck = _load(fts, man, vault_id, header.raw, fd=fd, size=st.st_size)
            start = ck.end if ck is not None else _container.HEADER_SIZE
            view = memoryview(_pread(fd, st.st_size - start, start))
            whole = delta_frames(view, pos=0)
            first = ck.count if ck is not None else 0
            count, end = first + len(whole), start + (whole[-1][1] if whole else 0)
            mem = None
            if after is not None or len(whole) >= EVERY:  # a save checks nothing, unless one is due
                tail = bytes(view[whole[-1][1] - TAG : whole[-1][1]]) if whole else None
                tail = tail or (ck.tail if ck is not None else header.raw[-TAG:])
                seed = _Remembered((*ident, header.raw), header, dek, first, start, tail, {}, first)
                if ck is not None:
                    seed.fold = dict(ck.fold)
                last, mem = _scan(view, whole, seed, sid=sid, fold=after is None or len(whole) >= EVERY)
                if mem is not None:
                    mem.count, mem.end = count, end
        base_stamp = man.stamps.get(head[0])
        have = last if last is not None and (base_stamp is None or last[0] >= base_stamp[0]) else base_stamp
        if after is not None and (have is None or (have[0], have[2]) != after):
            if mem is not None:
                self._mem = mem
            return None
        frame = delta_frame(header.raw, dek, count, record, compress=True)
        size = append_frame(fd, end, frame)
        self.frames = count + 1
        if mem is not None:
            mem.add(sid, head[1], head[2])
            mem.count, mem.end, mem.tail = count + 1, size, frame[-TAG:]
            if mem.count - mem.saved >= EVERY:
                # A cache of a cache: a failure costs the next fresh process records read.
                with contextlib.suppress(SessionSealError, OSError):
                    fts.write_atomic(
                        man.heads_name,
                        seal_heads(vault_id, man.delta_id, man.delta_key, _heads_of(mem)),
                    )
                    mem.saved = mem.count
            self._mem = mem
        return size


def _heads_of(mem: _Remembered) -> Heads:
    return Heads(mem.header.raw, mem.count, mem.end, mem.tail, mem.fold)


def _scan(
    view: memoryview, whole: list[tuple[int, int]], mem: _Remembered, *, sid: bytes, fold: bool
) -> tuple[Stamp4 | None, _Remembered | None]:
    """The session's last record among *whole* (the records after *mem*'s, read back from the
    last), or, with *fold* or if none is the session's, every record of *whole* folded into
    *mem* (returned: the caller remembers it)."""
    first = mem.count
    read: dict[int, tuple[bytes, int, Stamp]] = {}
    if not fold:
        for i in range(len(whole) - 1, -1, -1):
            read[i] = frame_head(view[whole[i][0] : whole[i][1]], mem.header, mem.dek, first + i)
            if read[i][0] == sid:
                return (read[i][1], *read[i][2]), None
    for i, (s, e) in enumerate(whole):
        mem.add(*(read.get(i) or frame_head(view[s:e], mem.header, mem.dek, first + i)))
    return mem.fold.get(sid), mem


def _still(mem: _Remembered, fd: int, ident: tuple[str, bytes, int, int], size: int) -> bool:
    """Whether the log on *fd* is still the one *mem* read, with every frame it read."""
    if mem.ident[:4] != ident or size < mem.end:
        return False
    return _pread(fd, _container.HEADER_SIZE, 0) == mem.ident[4] and _pread(fd, TAG, mem.end - TAG) == mem.tail


def _pread(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise IntegrityError(INTEGRITY)
    return data


def check_heads(
    fts: Dir, man: Manifest, vault_id: uuid.UUID, log: bytes, records: Sequence[DeltaRecord] | None
) -> tuple[str, str] | None:
    """``verify``'s finding on the log's checkpoint, as (code, message), or None: none, or one
    that vouches for the log *log* as it is; with *records* (``--read-data``: the log's, read)
    its content is checked against the fold of the records it covers."""
    try:
        h = open_heads(fts.read(man.heads_name, max_size=_MAX_HEADS), vault_id, man.delta_id, man.delta_key)
    except FileNotFoundError:
        return None
    except (SessionSealError, OSError):
        return "fts-damaged", INTEGRITY + "; the next append replaces it"
    if h.log_header != log[: _container.HEADER_SIZE] or h.end > len(log) or log[h.end - TAG : h.end] != h.tail:
        return "fts-heads-stale", "a heads checkpoint of another state of the delta log; the next append replaces it"
    folded: dict[bytes, Stamp4] = {}
    for r in records[: h.count] if records is not None else ():
        have = folded.get(r.doc.session_id.bytes)
        if have is None or r.doc.generation >= have[0]:
            folded[r.doc.session_id.bytes] = (r.doc.generation, *r.stamp)
    if records is not None and (len(records) < h.count or folded != h.fold):
        return "fts-damaged", INTEGRITY + "; the next append replaces it"
    return None
