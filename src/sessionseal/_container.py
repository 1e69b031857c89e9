"""The container: the one on-disk envelope of every encrypted vault file (docs/spec/container-v1.md).

    container = header || frame*
    header    = magic(8) || version(1) || kind(1) || flags(2) || vault_id(16) || object_id(16)
                || generation(8) || kek_epoch(4) || wrapped_dek(60)                       (116 bytes)
    frame     = length(4) || type(1) || nonce(12) || AES-256-GCM(dek, payload, aad) (length counts
                type || nonce || ciphertext)
    aad       = header || index(8) || type(1)
    payload   = encoding(1) || data      (0 raw, 1 zstd)

The data key (DEK) is fresh for every container written and is wrapped under a key
chosen by ``kind`` (a session key for sessions, the master key for the key table);
the first 56 header bytes are the wrap's associated data, and the whole header is
bound into every frame, so a file cannot be moved to another vault, id, kind or
generation, and frames cannot be reordered, dropped from the middle, or moved
between files without an :class:`IntegrityError`.

Parsing is split by trust state: :func:`parse_unverified_header` only checks the
layout; nothing from a frame is used before its tag verifies.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from . import _compress, _crypto
from .errors import IntegrityError, UnsupportedVersion

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "Frame",
    "FrameType",
    "Header",
    "Kind",
    "SessionLog",
    "SessionTail",
    "frame_size",
    "open_checkpoint",
    "open_frames",
    "open_frames_at",
    "open_session",
    "open_session_tail",
    "parse_unverified_header",
    "seal",
    "seal_frame",
    "session_group",
]

MAGIC: Final = b"\x89SSEAL\r\n"
#: The only container version this build writes and reads.
FORMAT_VERSION: Final = 1
_FIXED: Final = struct.Struct(">8sBBH16s16sQI")
HEADER_SIZE: Final = _FIXED.size + _crypto.WRAPPED_KEY_SIZE
_FRAME_PREFIX: Final = struct.Struct(">IB")
_AAD_TAIL: Final = struct.Struct(">QB")
#: type || nonce || tag: the smallest possible frame body.
_MIN_FRAME: Final = 1 + _crypto.NONCE_SIZE + _crypto.TAG_SIZE
_MAX_FRAME: Final = 1 + _crypto.NONCE_SIZE + _crypto.MAX_AEAD_INPUT + _crypto.TAG_SIZE

_INTEGRITY: Final = "a vault file failed its integrity check (modified, truncated, or moved); run 'sessionseal verify'"

ENCODING_RAW: Final = 0


class Kind:
    """Container kinds (header byte 9)."""

    SESSION: Final = 1
    KEY_TABLE: Final = 2
    INDEX: Final = 3  # the metadata index (index.sst)
    CONFIG: Final = 4  # the vault's encrypted configuration
    AUDIT_ANCHOR: Final = 5  # the audit log's anchor: last sequence number and MAC
    CHECKPOINT: Final = 6  # a named restore point of a session: META, BODY under the session's key
    BUNDLE: Final = 7  # an export bundle: META (manifest), BODY per session, under a passphrase key
    FTS_MANIFEST: Final = 8  # the full-text index's manifest (docs/spec/fts-v1.md)
    FTS_SEGMENT: Final = 9  # one immutable segment of the full-text index
    FTS_DELTA: Final = 10  # the full-text index's delta log
    ALL: Final = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10})


class FrameType:
    """Frame types (first byte of a frame body)."""

    META: Final = 1  # listing summary of a session (JSON)
    BODY: Final = 2  # the full session document (JSON)
    EVENTS: Final = 3  # session: appended events (messages, tool use, state), committed by a META
    TABLE_SNAPSHOT: Final = 4  # key table: vault secret and every session key
    TABLE_DELTA: Final = 5  # key table: one added or removed session key
    INDEX_SNAPSHOT: Final = 6  # metadata index: every session's summary and file stamp
    INDEX_DELTA: Final = 7  # metadata index: one summary put or dropped
    TABLE_STATE: Final = 8  # key table: the vault's anchored state (high-water marks), whole or changed
    FTS_HEAD: Final = 9  # fts segment: its sessions and where its buckets are
    FTS_BUCKET: Final = 10  # fts segment: the postings of a keyed-random set of terms
    FTS_PREFIX: Final = 11  # fts segment: the word-like terms of a keyed-random set of 3-character prefixes
    FTS_DELTA: Final = 12  # fts delta log: one write's postings for one session
    ALL: Final = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header.  ``raw`` is the exact bytes, used as associated data."""

    kind: int
    vault_id: UUID
    object_id: UUID
    generation: int
    kek_epoch: int
    wrapped_dek: bytes
    raw: bytes

    @property
    def wrap_aad(self) -> bytes:
        """The header fields the DEK wrap authenticates (everything before it)."""
        return self.raw[: _FIXED.size]


@dataclass(frozen=True, slots=True)
class Frame:
    """One authenticated, decrypted frame."""

    index: int
    type: int
    data: bytes


def _pack_header(kind: int, vault_id: UUID, object_id: UUID, generation: int, kek_epoch: int) -> bytes:
    return _FIXED.pack(MAGIC, FORMAT_VERSION, kind, 0, vault_id.bytes, object_id.bytes, generation, kek_epoch)


def parse_unverified_header(data: bytes | memoryview) -> Header:
    """Parse the fixed header without authenticating anything.

    :raises UnsupportedVersion: a newer container version (upgrade sessionseal).
    :raises IntegrityError: anything else that is not a well-formed v1 header.
    """
    if len(data) < HEADER_SIZE:
        raise IntegrityError(_INTEGRITY)
    magic, version, kind, flags, vid, oid, generation, epoch = _FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise IntegrityError(_INTEGRITY)
    if version != FORMAT_VERSION:
        if version > FORMAT_VERSION:
            raise UnsupportedVersion(
                f"a vault file has container format {version}, this sessionseal reads {FORMAT_VERSION}; "
                "upgrade sessionseal"
            )
        raise IntegrityError(_INTEGRITY)
    # Reject unknown kinds and flags: silently ignoring a flag of a newer writer could
    # misread its data (age: "anything after the version line may change").
    if kind not in Kind.ALL or flags != 0:
        raise IntegrityError(_INTEGRITY)
    raw = bytes(data[:HEADER_SIZE])
    return Header(kind, UUID(bytes=vid), UUID(bytes=oid), generation, epoch, raw[_FIXED.size :], raw)


def _aad(header_raw: bytes, index: int, frame_type: int) -> bytes:
    return header_raw + _AAD_TAIL.pack(index, frame_type)


def seal_frame(
    dek: bytes, header_raw: bytes, index: int, frame_type: int, payload: bytes, *, nonce: bytes | None = None
) -> bytes:
    """Encrypt one frame; *payload* already carries its encoding byte."""
    n, ct = _crypto.encrypt(dek, payload, _aad(header_raw, index, frame_type), nonce=nonce)
    return _FRAME_PREFIX.pack(1 + len(n) + len(ct), frame_type) + n + ct


def seal(
    *,
    kind: int,
    vault_id: UUID,
    object_id: UUID,
    generation: int,
    kek: bytes,
    kek_epoch: int,
    frames: Sequence[tuple[int, bytes]],
    dek: bytes | None = None,
    nonces: Iterator[bytes] | None = None,
) -> bytes:
    """Build a whole container: a fresh DEK wrapped under *kek*, then *frames* in order.

    *frames* are ``(type, payload)`` pairs, payloads carrying their encoding byte.
    *dek* and *nonces* exist for the spec's test vectors only.
    """
    if dek is None:
        dek = _crypto.new_key()
    fixed = _pack_header(kind, vault_id, object_id, generation, kek_epoch)
    wrapped = _crypto.wrap_key(kek, dek, fixed, nonce=next(nonces) if nonces else None)
    header_raw = fixed + wrapped
    parts = [header_raw]
    for index, (frame_type, payload) in enumerate(frames):
        parts.append(seal_frame(dek, header_raw, index, frame_type, payload, nonce=next(nonces) if nonces else None))
    return b"".join(parts)


def open_frames(
    data: bytes | memoryview,
    header: Header,
    kek: bytes,
    *,
    stop: Callable[[Frame], bool] | None = None,
    torn_tail_ok: bool = False,
) -> tuple[bytes, list[Frame]]:
    """Unwrap the DEK and authenticate and decrypt every frame after *header*.

    Returns ``(dek, frames)``.  Decryption stops early when *stop* returns true for a
    frame (a listing reads only the META frame); otherwise the data must end exactly
    after the last frame.

    :raises IntegrityError: wrong key, any modified, missing, or trailing byte.
    """
    dek = _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)
    frames, _ = open_frames_at(data, header, dek, HEADER_SIZE, 0, stop=stop, torn_tail_ok=torn_tail_ok)
    return dek, frames


def open_frames_at(
    data: bytes | memoryview,
    header: Header,
    dek: bytes,
    pos: int,
    first_index: int,
    *,
    stop: Callable[[Frame], bool] | None = None,
    torn_tail_ok: bool = False,
) -> tuple[list[Frame], int]:
    """Authenticate and decrypt the frames from offset *pos*, the first being frame number
    *first_index* of the container (a reader that has the frames before it: the key table
    refreshed after another process appended).  Returns the frames and where the last whole
    one ends.  A torn final frame is forgiven only with *torn_tail_ok* and after a whole one.

    :raises IntegrityError: wrong key, any modified, missing, or trailing byte.
    """
    view = memoryview(data)
    frames: list[Frame] = []
    while pos < len(view):
        if len(view) - pos < _FRAME_PREFIX.size:
            if torn_tail_ok and (frames or first_index):
                break
            raise IntegrityError(_INTEGRITY)
        length, frame_type = _FRAME_PREFIX.unpack_from(view, pos)
        # Check lengths before decrypting anything (age: mitigate partitioning oracles).
        if length < _MIN_FRAME or length > _MAX_FRAME or frame_type not in FrameType.ALL:
            raise IntegrityError(_INTEGRITY)
        end = pos + 4 + length
        if end > len(view):
            # An append still in flight (read without the writer's lock) ends short; only an
            # incomplete *final* frame is forgiven, and only where the caller allows it.
            if torn_tail_ok and (frames or first_index):
                break
            raise IntegrityError(_INTEGRITY)
        nonce = bytes(view[pos + 5 : pos + 5 + _crypto.NONCE_SIZE])
        ct = view[pos + 5 + _crypto.NONCE_SIZE : end]
        index = first_index + len(frames)
        plain = _crypto.decrypt(dek, nonce, bytes(ct), _aad(header.raw, index, frame_type))
        frame = Frame(index, frame_type, plain)
        frames.append(frame)
        pos = end
        if stop is not None and stop(frame):
            break
    return frames, pos


@dataclass(frozen=True, slots=True)
class SessionLog:
    """A session container as committed: ``META, BODY`` then ``(EVENTS, META)`` groups.

    ``frames`` holds the committed frames in order; ``end`` is the offset just after the
    last of them, where the next group is appended (anything after it is a torn append).
    """

    header: Header
    dek: bytes
    frames: list[Frame]
    end: int

    @property
    def meta(self) -> bytes:
        """The payload of the last META frame: the summary as of the last committed group."""
        return self.frames[-1].data if len(self.frames) > 2 else self.frames[0].data

    @property
    def body(self) -> bytes:
        """The payload of the BODY frame."""
        return self.frames[1].data

    @property
    def events(self) -> list[bytes]:
        """The payloads of the EVENTS frames, in order."""
        return [f.data for f in self.frames[2::2]]


def frame_size(payload_len: int) -> int:
    """Bytes a frame with a payload of *payload_len* bytes takes on disk."""
    return 4 + 1 + _crypto.NONCE_SIZE + payload_len + _crypto.TAG_SIZE


def _committed(types: Sequence[int]) -> int:
    """How many of the frames (by type, in order) a session log commits.

    ``META, BODY`` is the first version; each append adds ``EVENTS, META`` and is committed
    by its META.  A final EVENTS frame without its META is an append cut short by a crash:
    not committed.  Any other sequence is an integrity failure.
    """
    if len(types) < 2 or types[0] != FrameType.META or types[1] != FrameType.BODY:
        raise IntegrityError(_INTEGRITY)
    for i in range(2, len(types)):
        if types[i] != (FrameType.EVENTS if i % 2 == 0 else FrameType.META):
            raise IntegrityError(_INTEGRITY)
    return len(types) if len(types) % 2 == 0 else len(types) - 1


def _check_session_header(header: Header, vault_id: UUID, session_id: UUID | None) -> None:
    if header.kind != Kind.SESSION or header.vault_id != vault_id:
        raise IntegrityError(_INTEGRITY)
    if session_id is not None and header.object_id != session_id:
        raise IntegrityError(_INTEGRITY)


def open_session(
    data: bytes | memoryview, vault_id: UUID, session_id: UUID | None, key_for: Callable[[UUID], bytes]
) -> SessionLog:
    """Open a whole session container: kind, vault and id checked, every frame authenticated.

    *key_for* maps the (still unverified) session id of the header to its session key;
    a wrong id fails authentication because the header is the frames' associated data.
    An append cut short at the end (a torn frame, or EVENTS without its META) is ignored.

    :raises IntegrityError: anything but an authentic container of that session.
    """
    header = parse_unverified_header(data)
    _check_session_header(header, vault_id, session_id)
    dek, frames = open_frames(data, header, key_for(header.object_id), torn_tail_ok=True)
    frames = frames[: _committed([f.type for f in frames])]
    return SessionLog(header, dek, frames, HEADER_SIZE + sum(frame_size(len(f.data)) for f in frames))


def open_checkpoint(
    data: bytes | memoryview, vault_id: UUID, session_id: UUID, number: int, kek: bytes, *, meta_only: bool = False
) -> tuple[bytes, bytes | None]:
    """Open a checkpoint container: ``META, BODY`` of kind 6 whose object is the session and
    whose generation is the checkpoint's number.  Returns the META and BODY payloads (BODY
    is None with *meta_only*, which decrypts the META frame alone).

    The kind keeps a checkpoint from being read as a session (and the other way round);
    the number in the header keeps one checkpoint from being put in another's place.

    :raises IntegrityError: anything but an authentic checkpoint of that session and number.
    """
    header = parse_unverified_header(data)
    if header.kind != Kind.CHECKPOINT or header.vault_id != vault_id or header.object_id != session_id:
        raise IntegrityError(_INTEGRITY)
    if header.generation != number:
        raise IntegrityError(_INTEGRITY)
    _, frames = open_frames(data, header, kek, stop=(lambda f: f.index == 0) if meta_only else None)
    types = [f.type for f in frames]
    if types != ([FrameType.META] if meta_only else [FrameType.META, FrameType.BODY]):
        raise IntegrityError(_INTEGRITY)
    return frames[0].data, None if meta_only else frames[1].data


@dataclass(frozen=True, slots=True)
class SessionTail:
    """What appending to a session container needs, read without decrypting its body.

    ``frames`` is the number of committed frames (the next group's first index), ``end``
    the offset after the last of them, ``body_end`` the offset after the BODY frame.
    """

    header: Header
    dek: bytes
    meta: bytes
    frames: int
    end: int
    body_end: int


def open_session_tail(
    read_at: Callable[[int, int], bytes], size: int, vault_id: UUID, key_for: Callable[[UUID], bytes]
) -> SessionTail:
    """The header, data key and last committed META payload of a session container,
    decrypting nothing else: the frames are walked by their length prefixes (5 bytes read
    per frame).  The frames skipped are not authenticated here; every full read does that.

    *read_at(offset, n)* reads *n* bytes of the file at *offset*; *size* is its size.

    :raises IntegrityError: the header, the frame sequence or that META frame is not authentic.
    """

    read = _reader(read_at)
    header, frames, count = _walk(read, size, vault_id, None)
    index = count - 1 if count > 2 else 0
    dek = _crypto.unwrap_key(key_for(header.object_id), header.wrapped_dek, header.wrap_aad)
    plain = _open_at(read, header, dek, frames, index)
    last_offset, last_length, _ = frames[count - 1]
    body_offset, body_length, _ = frames[1]
    return SessionTail(header, dek, plain, count, last_offset + 4 + last_length, body_offset + 4 + body_length)


def open_session_recent(
    read_at: Callable[[int, int], bytes],
    size: int,
    vault_id: UUID,
    session_id: UUID,
    *,
    key_for: Callable[[UUID], bytes],
    enough: Callable[[bytes], bool],
) -> bool:
    """Decrypt a session container's EVENTS frames from the last committed one backwards,
    giving each payload to *enough* until it says the ones given suffice (True); False when
    it never does before the first version (the BODY) is reached, where the caller reads the
    whole session.  The BODY is never decrypted.  Each frame decrypted is authenticated (bound
    to the header and to its index, so none can be moved or dropped unseen among those read);
    the frames skipped are not, as in :func:`open_session_tail`.

    :raises IntegrityError: the header, the frame sequence or a frame read is not authentic.
    """
    read = _reader(read_at)
    header, frames, count = _walk(read, size, vault_id, session_id)
    dek = _crypto.unwrap_key(key_for(header.object_id), header.wrapped_dek, header.wrap_aad)
    # The EVENTS frame of each group, the last first; any() stops at the first that suffices.
    return any(enough(_open_at(read, header, dek, frames, index)) for index in range(count - 2, 1, -2))


def _reader(read_at: Callable[[int, int], bytes]) -> Callable[[int, int], bytes]:
    def read(offset: int, n: int) -> bytes:
        data = read_at(offset, n)
        if len(data) != n:
            raise IntegrityError(_INTEGRITY)  # the file shrank while we read it
        return data

    return read


def _walk(
    read: Callable[[int, int], bytes], size: int, vault_id: UUID, session_id: UUID | None
) -> tuple[Header, list[tuple[int, int, int]], int]:
    """A session container's header, its frames as (offset, length, type) by their length
    prefixes (5 bytes read per frame, nothing decrypted), and how many are committed."""
    header = parse_unverified_header(read(0, HEADER_SIZE))
    _check_session_header(header, vault_id, session_id)
    frames: list[tuple[int, int, int]] = []  # (offset, length, type)
    pos = HEADER_SIZE
    while pos + _FRAME_PREFIX.size <= size:
        length, frame_type = _FRAME_PREFIX.unpack(read(pos, _FRAME_PREFIX.size))
        if length < _MIN_FRAME or length > _MAX_FRAME or frame_type not in FrameType.ALL:
            raise IntegrityError(_INTEGRITY)
        if pos + 4 + length > size:
            break  # an append in flight or cut short
        frames.append((pos, length, frame_type))
        pos += 4 + length
    return header, frames, _committed([t for _, _, t in frames])


def _open_at(
    read: Callable[[int, int], bytes], header: Header, dek: bytes, frames: list[tuple[int, int, int]], index: int
) -> bytes:
    """The payload of frame *index*, authenticated."""
    offset, length, frame_type = frames[index]
    raw = read(offset, 4 + length)
    nonce = raw[5 : 5 + _crypto.NONCE_SIZE]
    return _crypto.decrypt(dek, nonce, raw[5 + _crypto.NONCE_SIZE :], _aad(header.raw, index, frame_type))


def session_group(dek: bytes, header_raw: bytes, first_index: int, events: bytes, meta: bytes) -> bytes:
    """One append: an EVENTS frame and the META frame that commits it, as frames
    *first_index* and *first_index + 1* of the container (payloads carry their encoding byte)."""
    return seal_frame(dek, header_raw, first_index, FrameType.EVENTS, events) + seal_frame(
        dek, header_raw, first_index + 1, FrameType.META, meta
    )


def encode_payload(data: bytes, *, compress: bool) -> bytes:
    """Prefix *data* with its encoding byte, compressing it with zstd when asked."""
    return _compress.compress(data) if compress else bytes([ENCODING_RAW]) + data


def decode_payload(payload: bytes) -> bytes:
    """Reverse :func:`encode_payload`."""
    if payload[:1] == bytes([ENCODING_RAW]):
        return payload[1:]
    return _compress.decompress(payload)
