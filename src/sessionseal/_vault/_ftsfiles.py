"""The full-text index's files in the vault: ``fts/`` and its manifest (docs/spec/fts-v1.md,
"Files and manifest").

``fts/manifest.sst`` is a container of kind 8 whose data key is wrapped under the *master key*
(like ``index.sst``): it holds the keys of every other file of the index, so a rotation that
reseals it under a new epoch makes an old copy of it, and with it every file it named,
unreadable once the old epoch leaves the key store (docs/secure-deletion.md). One BODY frame:
JSON, zstd. Segments are ``fts/<id hex>.seg`` (kind 9) and the delta log ``fts/<id hex>.delta``
(kind 10), each under its own random key, named by a random id so that a new file never
replaces one the manifest still names: the manifest's rewrite is the one commit point.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .. import _container, _crypto
from .._container import FrameType, Kind
from .._fs import Dir
from .._fts import Doc, HeadCache, SegmentReader, encode_delta_columns, pack
from .._keystore import MasterKeys
from ..errors import IntegrityError
from ._ftstable import FORMAT_BINARY, pack_manifest, unpack_manifest

__all__ = [
    "FTS_DIR",
    "MANIFEST",
    "DeadManifest",
    "Manifest",
    "OtherFtsFormat",
    "SegmentInfo",
    "index_generation",
    "is_fts_name",
]

FTS_DIR: Final = "fts"
MANIFEST: Final = "manifest.sst"
SEG_SUFFIX: Final = ".seg"
DELTA_SUFFIX: Final = ".delta"
#: The delta log's heads checkpoint, named by the log's id (``_ftsheads``).
HEADS_SUFFIX: Final = ".heads"
#: The manifest payload's formats: 1 JSON (``v``, read only), 2 binary columns (``_ftstable``);
#: a manifest of another format means "no index".
FORMAT_JSON: Final = 1
_ZERO: Final = uuid.UUID(int=0)
_MAX_MANIFEST: Final = 256 << 20
INTEGRITY: Final = "the full-text index's manifest failed its integrity check"

Stamp = tuple[int, int, int]
#: Text revisions per container generation (a session is rewritten after 1,024 appends).
REVISION_BITS: Final = 20


def index_generation(container: int, revision: int) -> int:
    """A session's generation in the index: its file's container generation, then its text
    revision within it (a title or description replaced by an append: ``_n.rev`` of its META),
    so that a new title's record replaces the old text while appends add to the current one."""
    return container << REVISION_BITS | min(revision, (1 << REVISION_BITS) - 1)


class OtherFtsFormat(IntegrityError):
    """A manifest written by another version of sessionseal: no index until a reindex."""


class DeadManifest(IntegrityError):
    """A manifest sealed under a master key epoch older than the key store's, which it no longer
    holds: a rotation whose index rewrite failed left it, and it died with the epoch (with the
    keys of every file it named). The next writer starts a new index (docs/spec/fts-v1.md)."""


def is_fts_name(name: str) -> bool:
    """Whether *name* is a name sessionseal writes in ``fts/``."""
    if name == MANIFEST:
        return True
    stem, dot, suffix = name.partition(".")
    if "." + suffix not in (SEG_SUFFIX, DELTA_SUFFIX, HEADS_SUFFIX) or len(stem) != 32 or not dot:
        return False
    return all(c in "0123456789abcdef" for c in stem)


class SegmentInfo:
    """A segment the manifest names: its id, key, sessions, words (BM25 lengths: about the
    text's size / 6) and file size. The sessions are kept as the manifest's bytes (16 per
    session) until asked for: opening a segment for a query needs only its id and key."""

    __slots__ = ("_raw", "_sessions", "id", "key", "size", "words")

    def __init__(self, id: uuid.UUID, key: bytes, sessions: Sequence[uuid.UUID] | bytes, words: int, size: int) -> None:
        self.id, self.key, self.words, self.size = id, key, words, size
        self._raw: bytes | None = sessions if isinstance(sessions, bytes) else None
        self._sessions: list[uuid.UUID] | None = None if isinstance(sessions, bytes) else list(sessions)

    @property
    def sessions(self) -> list[uuid.UUID]:
        if self._sessions is None:
            raw = self._raw or b""
            self._sessions = [uuid.UUID(bytes=raw[i : i + 16]) for i in range(0, len(raw), 16)]
        return self._sessions

    @property
    def session_bytes(self) -> bytes:
        """The sessions' ids, 16 bytes each, in order (the manifest's column)."""
        if self._raw is None:
            self._raw = b"".join(u.bytes for u in self.sessions)
        return self._raw

    def __repr__(self) -> str:
        return (
            f"SegmentInfo(id={self.id}, sessions={len(self.session_bytes) // 16}, words={self.words}, size={self.size})"
        )

    @property
    def name(self) -> str:
        return self.id.hex + SEG_SUFFIX


@dataclass
class Manifest:
    """The decrypted manifest (docs/spec/fts-v1.md, "Manifest")."""

    segments: list[SegmentInfo] = field(default_factory=list)
    delta_id: uuid.UUID = _ZERO
    delta_key: bytes = b""
    #: Per session in a segment: (generation, inode, size, mtime_ns) as of the last write the
    #: segments reflect (the delta log's records carry their own).
    stamps: Mapping[uuid.UUID, tuple[int, int, int, int]] = field(default_factory=dict)
    #: Files this manifest replaced, by name, with their tombs (SHA-256 of the header, 16
    #: bytes): overwritten and unlinked once the epoch that sealed them left the key store
    #: (a rotation) or at once (compaction); the only files of ``fts/`` ever removed.
    retired: dict[str, bytes] = field(default_factory=dict)
    #: The epoch the retired files wait for: they go once the key store holds no other.
    retire_after: int = 0
    generation: int = 0  # the container's: +1 per rewrite
    kek_epoch: int = 0
    _head: bytes = b""
    _size: int = 0

    @property
    def delta_name(self) -> str:
        return self.delta_id.hex + DELTA_SUFFIX

    @property
    def heads_name(self) -> str:
        """The delta log's heads checkpoint (optional: docs/spec/fts-v1.md, "Heads checkpoint")."""
        return self.delta_id.hex + HEADS_SUFFIX

    def names(self) -> set[str]:
        """The files this manifest names (itself aside; the log's checkpoint goes with its log)."""
        return {s.name for s in self.segments} | {self.delta_name}

    # -- bytes ---------------------------------------------------------------------

    def encode(self) -> bytes:
        """The payload: format 2, binary columns (``_ftstable``)."""
        return pack_manifest(
            self.delta_id,
            self.delta_key,
            retire_after=self.retire_after,
            retired=self.retired,
            segments=[(s.id, s.key, s.words, s.size, s.session_bytes) for s in self.segments],
            stamps=self.stamps,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        """A payload of format 2, or of format 1 (JSON, written before: still read, and written
        as format 2 at the next commit). :raises OtherFtsFormat: another format."""
        if raw[:1] == b"{":
            return cls._decode_json(raw)
        if raw[:1] != bytes((FORMAT_BINARY,)):
            raise OtherFtsFormat(INTEGRITY)
        try:
            delta_id, delta_key, retire_after, retired, segs, stamps = unpack_manifest(raw)
            if not all(is_fts_name(n) and n != MANIFEST for n in retired):
                raise ValueError
        except (ValueError, struct.error, IndexError):
            raise IntegrityError(INTEGRITY) from None
        segments = [SegmentInfo(i, k, sessions, words, size) for i, k, words, size, sessions in segs]
        return cls(segments, delta_id, delta_key, stamps, retired, retire_after)

    @classmethod
    def _decode_json(cls, raw: bytes) -> Manifest:
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError
            if doc.get("v") != FORMAT_JSON:
                raise OtherFtsFormat(INTEGRITY)
            segs = [
                SegmentInfo(
                    uuid.UUID(hex=s["id"]),
                    _key(s["key"]),
                    [uuid.UUID(hex=x) for x in s["sessions"]],
                    int(s["words"]),
                    int(s["size"]),
                )
                for s in doc["segments"]
            ]
            stamps = {uuid.UUID(hex=k): _stamp4(v) for k, v in doc["stamps"].items()}
            retired = {str(n): bytes.fromhex(t) for n, t in doc["retired"].items()}
            if not all(is_fts_name(n) and n != MANIFEST for n in retired):
                raise ValueError
            return cls(
                segs,
                uuid.UUID(hex=doc["delta"]["id"]),
                _key(doc["delta"]["key"]),
                stamps,
                retired,
                int(doc["retire_after"]),
            )
        except OtherFtsFormat:
            raise
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise IntegrityError(INTEGRITY) from None

    # -- the file (writes under the vault lock) --------------------------------------

    @classmethod
    def load(cls, fts: Dir, vault_id: uuid.UUID, master: MasterKeys) -> Manifest:
        """:raises FileNotFoundError: none. :raises IntegrityError: damaged, or sealed under an
        epoch the key store no longer holds (:class:`OtherFtsFormat`: another format)."""
        raw = fts.read(MANIFEST, max_size=_MAX_MANIFEST)
        header = _container.parse_unverified_header(raw)
        if header.kind != Kind.FTS_MANIFEST or header.vault_id != vault_id or header.object_id != _ZERO:
            raise IntegrityError(INTEGRITY)
        kek = master.keys.get(header.kek_epoch)
        if kek is None:
            raise (DeadManifest if header.kek_epoch < max(master.keys, default=0) else IntegrityError)(INTEGRITY)
        _dek, frames = _container.open_frames(raw, header, kek)
        if len(frames) != 1 or frames[0].type != FrameType.BODY:
            raise IntegrityError(INTEGRITY)
        man = cls.decode(_container.decode_payload(frames[0].data))
        man.generation, man.kek_epoch, man._head, man._size = header.generation, header.kek_epoch, header.raw, len(raw)
        return man

    def is_current(self, fts: Dir) -> bool:
        """Whether ``manifest.sst`` is still the file this object was read from or wrote."""
        return fts.is_unchanged(MANIFEST, self._head, self._size)

    def write(self, fts: Dir, vault_id: uuid.UUID, kek: bytes, kek_epoch: int) -> None:
        """Replace the manifest (atomic, durable)."""
        data = _container.seal(
            kind=Kind.FTS_MANIFEST,
            vault_id=vault_id,
            object_id=_ZERO,
            generation=self.generation + 1,
            kek=kek,
            kek_epoch=kek_epoch,
            frames=[(FrameType.BODY, _container.encode_payload(self.encode(), compress=True))],
        )
        fts.write_atomic(MANIFEST, data)
        self.generation, self.kek_epoch = self.generation + 1, kek_epoch
        self._head, self._size = _container.parse_unverified_header(data).raw, len(data)


def _key(text: Any) -> bytes:
    key = bytes.fromhex(text)
    if len(key) != _crypto.KEY_SIZE:
        raise ValueError
    return key


def _stamp4(v: Any) -> tuple[int, int, int, int]:
    if not isinstance(v, list) or len(v) != 4:
        raise ValueError
    return int(v[0]), int(v[1]), int(v[2]), int(v[3])


def header_tomb(fts: Dir, name: str) -> bytes | None:
    """The tomb of a container file in ``fts/`` (None: missing or not a container)."""
    from .._state import tomb_of

    try:
        prefix, _size = fts.read_prefix(name, _container.HEADER_SIZE)
        return tomb_of(_container.parse_unverified_header(prefix).raw)
    except (FileNotFoundError, IntegrityError, OSError):
        return None


def file_size(fts: Dir, name: str) -> int:
    return int(os.stat(name, dir_fd=fts.fd, follow_symlinks=False).st_size)


def open_segment(fts: Dir, vault_id: uuid.UUID, s: SegmentInfo, heads: HeadCache | None = None) -> SegmentReader:
    """Open a segment through the vault's checks (regular, owner-only, single-link, no link
    followed), as every other vault file: a planted link or FIFO is refused, never read.
    *heads*: the heads of segments opened before (a query's view)."""
    return SegmentReader(fts.open_checked(s.name), vault_id, s.id, s.key, heads=heads)


def encoded_record(doc: Doc, stamp: Stamp) -> bytes:
    """A delta record, its packed columns as they are (no dict of postings: 10 MB hold 200,000 terms)."""
    p = pack(doc)
    return encode_delta_columns(p.entry, stamp, p.term_list(), p.tfs, p.masks)
