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
    "open_frames",
    "open_session",
    "parse_unverified_header",
    "seal",
    "seal_frame",
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
    ALL: Final = frozenset({1, 2, 3, 4, 5})


class FrameType:
    """Frame types (first byte of a frame body)."""

    META: Final = 1  # listing summary of a session (JSON)
    BODY: Final = 2  # the full session document (JSON)
    EVENTS: Final = 3  # reserved: appended messages/events (issue #7)
    TABLE_SNAPSHOT: Final = 4  # key table: vault secret and every session key
    TABLE_DELTA: Final = 5  # key table: one added or removed session key
    INDEX_SNAPSHOT: Final = 6  # metadata index: every session's summary and file stamp
    INDEX_DELTA: Final = 7  # metadata index: one summary put or dropped
    ALL: Final = frozenset({1, 2, 3, 4, 5, 6, 7})


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
    view = memoryview(data)
    pos = HEADER_SIZE
    frames: list[Frame] = []
    while pos < len(view):
        if len(view) - pos < _FRAME_PREFIX.size:
            if torn_tail_ok and frames:
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
            if torn_tail_ok and frames:
                break
            raise IntegrityError(_INTEGRITY)
        nonce = bytes(view[pos + 5 : pos + 5 + _crypto.NONCE_SIZE])
        ct = view[pos + 5 + _crypto.NONCE_SIZE : end]
        plain = _crypto.decrypt(dek, nonce, bytes(ct), _aad(header.raw, len(frames), frame_type))
        frame = Frame(len(frames), frame_type, plain)
        frames.append(frame)
        pos = end
        if stop is not None and stop(frame):
            break
    return dek, frames


def open_session(
    data: bytes | memoryview, vault_id: UUID, session_id: UUID | None, key_for: Callable[[UUID], bytes], *,
    meta_only: bool = False,
) -> tuple[Header, list[Frame]]:
    """Open a session container: kind, vault and id checked, then ``[META, BODY]`` exactly.

    *key_for* maps the (still unverified) session id of the header to its session key;
    a wrong id fails authentication because the header is the frames' associated data.

    :raises IntegrityError: anything but a whole, authentic container of that session.
    """
    header = parse_unverified_header(data)
    if header.kind != Kind.SESSION or header.vault_id != vault_id:
        raise IntegrityError(_INTEGRITY)
    if session_id is not None and header.object_id != session_id:
        raise IntegrityError(_INTEGRITY)
    stop = (lambda f: f.type == FrameType.META) if meta_only else None
    _, frames = open_frames(data, header, key_for(header.object_id), stop=stop)
    expected = [FrameType.META] if meta_only else [FrameType.META, FrameType.BODY]
    if [f.type for f in frames] != expected:
        raise IntegrityError(_INTEGRITY)
    return header, frames


def encode_payload(data: bytes, *, compress: bool) -> bytes:
    """Prefix *data* with its encoding byte, compressing it with zstd when asked."""
    return _compress.compress(data) if compress else bytes([ENCODING_RAW]) + data


def decode_payload(payload: bytes) -> bytes:
    """Reverse :func:`encode_payload`."""
    if payload[:1] == bytes([ENCODING_RAW]):
        return payload[1:]
    return _compress.decompress(payload)
