"""The encrypted metadata index: what listing needs, without opening every session file.

``index.sst`` is a container of kind 3 whose data key is wrapped under the *master key*
(like the key table, not under a key derived from the vault secret): a rotation re-encrypts
it, so an old copy of the index, which names erased sessions' titles and tags, becomes
unreadable with the old master key, exactly like the old key table (docs/secure-deletion.md).

On disk: one ``INDEX_SNAPSHOT`` frame, then ``INDEX_DELTA`` frames appended by saves and
deletes.  Each entry is keyed by the session's file name and records the file's stamp
(inode, size, mtime in ns) as of the write it describes.  The index is a *verified cache*:
a reader compares every stamp with the file system and re-reads the META frame of any
session whose file changed, so a lost or missing delta (a crash, a concurrent writer)
costs one META read, never a wrong listing.  Deltas are therefore appended without fsync.
A missing, damaged or undecryptable index is rebuilt from the session files.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import msgspec

from . import _container, _crypto
from ._container import FrameType, Kind
from ._fs import Dir
from ._keystore import MasterKeys
from .errors import IntegrityError

__all__ = ["INDEX_FILE", "INDEX_FORMAT", "Entry", "Index", "OtherFormat", "Stamp", "entry_of", "list_json", "stamp_of"]

INDEX_FILE: Final = "index.sst"
_ZERO_ID: Final = UUID(int=0)
#: 2: entries and stamps as two maps (1 had one map of pairs); a reader of another format rebuilds.
_FORMAT: Final = 2
#: The index payload's format version (``v``).
INDEX_FORMAT: Final = _FORMAT
_MAX_INDEX: Final = 512 << 20
#: Rewrite as one snapshot when the deltas outgrow the snapshot (and this floor), or when
#: there are more than _MAX_DELTAS of them: each costs a reader about 20 us to decrypt and
#: decode, so 256 add at most ~5 ms to a listing, and a 10,000-session snapshot (~30 ms to
#: write) is rewritten at most once per 256 saves or reads.
_COMPACT_FLOOR: Final = 256 << 10
_MAX_DELTAS: Final = 256

#: (inode, size, mtime_ns) of a session file: an atomic replace always changes the inode.
Stamp = tuple[int, int, int]


class Entry(msgspec.Struct, kw_only=True, gc=False):
    """A session's summary as the index keeps it (the META document plus ``size_stored`` and
    ``generation``).  Fields are in alphabetical order, so that encoding one gives sorted keys;
    unknown fields of a newer writer are ignored here (the META frame keeps them).

    Not tracked by the cyclic GC (``gc=False``): an entry holds only strings, numbers and
    lists or dicts of them, so it can be part of no cycle, and 10,000 tracked entries made
    every collection during a listing walk them all (decoding the index took 2-3x longer).
    """

    cost_usd: float = 0.0
    created_at: str
    description: str = ""
    generation: int = 0
    id: str
    last_accessed_at: str | None = None
    message_count: int = 0
    models: list[str] = msgspec.field(default_factory=list)
    outcome: str | None = None
    pinned: bool = False
    redactions: dict[str, int] = msgspec.field(default_factory=dict)
    size_original: int = 0
    size_stored: int = 0
    status: str = "active"
    tags: list[str] = msgspec.field(default_factory=list)
    title: str = ""
    updated_at: str
    workspace: str | None = None


class _Snapshot(msgspec.Struct, gc=False):
    # Two maps with the same keys, decoded straight into the Index's two dicts.
    v: int
    entries: dict[str, Entry]
    stamps: dict[str, tuple[int, int, int]]


class _Delta(msgspec.Struct, omit_defaults=True, gc=False):
    put: str | None = None
    doc: Entry | None = None
    stamp: tuple[int, int, int] | None = None
    delete: str | None = msgspec.field(default=None, name="del")
    accessed: str | None = msgspec.field(default=None, name="acc")
    at: str | None = None


_SNAPSHOT: Final = msgspec.json.Decoder(_Snapshot)
_DELTA: Final = msgspec.json.Decoder(_Delta)
_ENCODER: Final = msgspec.json.Encoder()


def entry_of(doc: dict[str, Any]) -> Entry:
    """An index entry from a validated summary document.

    :raises IntegrityError: the document does not have the shape of a summary.
    """
    try:
        return msgspec.convert(doc, Entry)
    except msgspec.ValidationError:
        raise IntegrityError("a session's summary does not have the expected shape") from None


def list_json(entries: Sequence[Entry]) -> bytes:
    """Entries as one indented JSON array with sorted keys (``list --json``)."""
    return msgspec.json.format(_ENCODER.encode(entries), indent=2)


def to_builtins(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """Entries as plain dicts (to build pydantic models from)."""
    return msgspec.to_builtins(entries)  # type: ignore[no-any-return]


def stamp_of(st: os.stat_result) -> Stamp:
    """The stamp of a stat result."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class OtherFormat(IntegrityError):
    """The index was written in another format version (an upgrade or a downgrade): rebuilt."""

    def __init__(self, version: int) -> None:
        super().__init__(f"the vault's index is in format {version}, not {_FORMAT}; it is rebuilt")
        self.version = version


class _Version(msgspec.Struct):
    v: int


def _corrupt() -> IntegrityError:
    return IntegrityError("the vault's index failed its integrity check; it is rebuilt from the session files")


@dataclass
class Index:
    """The decrypted index and what is needed to append to its file.

    ``entries`` maps a session file name to its summary and ``stamps`` to the file's stamp.
    """

    vault_id: UUID
    entries: dict[str, Entry] = field(default_factory=dict)
    stamps: dict[str, Stamp] = field(default_factory=dict)
    kek_epoch: int = 0
    generation: int = 0
    _header_raw: bytes = b""
    _dek: bytes = b""
    _frames: int = 0
    _snapshot_bytes: int = 0
    _delta_bytes: int = 0
    _file: tuple[int, int] = (0, 0)  # (inode, size) of index.sst as read or written by us
    _torn: bool = False  # the file ends in a cut-short delta: never append after it, rewrite
    parsed: bool = True  # False: opened for appending only (``entries`` and ``stamps`` are empty)

    # -- reading -----------------------------------------------------------------

    @classmethod
    def load(cls, root: Dir, vault_id: UUID, master: MasterKeys, *, parse: bool = True) -> Index:
        """Read and authenticate the index.

        :param parse: decode the entries.  A writer that only appends a delta skips that
            (it is most of the cost of reading a large index).

        :raises FileNotFoundError: there is none.
        :raises IntegrityError: damaged, or under a master key the key store no longer holds.
        """
        before = os.stat(INDEX_FILE, dir_fd=root.fd, follow_symlinks=False).st_ino
        raw = root.read(INDEX_FILE, max_size=_MAX_INDEX)
        st = os.stat(INDEX_FILE, dir_fd=root.fd, follow_symlinks=False)
        header = _container.parse_unverified_header(raw)
        if header.kind != Kind.INDEX or header.vault_id != vault_id or header.object_id != _ZERO_ID:
            raise _corrupt()
        kek = master.keys.get(header.kek_epoch)
        if kek is None:
            raise _corrupt()  # sealed under an epoch already dropped: rebuilt, never an error
        # Deltas are not fsynced: a crash may cut the last one short (its change is re-read).
        dek, frames = _container.open_frames(raw, header, kek, torn_tail_ok=True)
        if not frames or frames[0].type != FrameType.INDEX_SNAPSHOT:
            raise _corrupt()
        index = cls(vault_id=vault_id, parsed=parse)
        if any(f.type != FrameType.INDEX_DELTA for f in frames[1:]):
            raise _corrupt()
        index._delta_bytes = sum(len(f.data) for f in frames[1:])
        if parse:
            # The cyclic GC is paused while tens of thousands of entries are allocated: they
            # form no cycles, and collections triggered by the allocations alone were half
            # the cost of reading a 10,000-session index.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                index._decode(frames)
            except (msgspec.DecodeError, ValueError, RecursionError):  # msgspec: RecursionError when nested too deep
                raise _other_format(frames[0]) or _corrupt() from None
            finally:
                if gc_was_enabled:
                    gc.enable()
        index.kek_epoch, index.generation = header.kek_epoch, header.generation
        index._header_raw, index._dek, index._frames = header.raw, dek, len(frames)
        index._snapshot_bytes = len(frames[0].data)
        index._file = (st.st_ino, sum(_frame_sizes(raw, len(frames))))
        index._torn = index._file[1] != len(raw)
        if st.st_ino != before:
            index._file = (0, 0)  # replaced while we read it: never append to it without rereading
        return index

    def _decode(self, frames: list[_container.Frame]) -> None:
        snap = _SNAPSHOT.decode(_container.decode_payload(frames[0].data))
        if snap.v != _FORMAT:
            raise OtherFormat(snap.v)
        if snap.entries.keys() != snap.stamps.keys():
            raise _corrupt()
        self.entries, self.stamps = snap.entries, snap.stamps
        for frame in frames[1:]:
            self._apply(_DELTA.decode(_container.decode_payload(frame.data)))

    def _apply(self, delta: _Delta) -> None:
        if delta.put is not None and delta.doc is not None and delta.stamp is not None:
            self.entries[delta.put] = delta.doc
            self.stamps[delta.put] = delta.stamp
        elif delta.delete is not None:
            self.entries.pop(delta.delete, None)
            self.stamps.pop(delta.delete, None)
        elif delta.accessed is not None and delta.at is not None:
            entry = self.entries.get(delta.accessed)
            if entry is not None:
                entry.last_accessed_at = delta.at
        else:
            raise _corrupt()

    def is_current(self, root: Dir) -> bool:
        """Whether index.sst is still the file (and the length) this object was read from or
        wrote: by its header and length (:meth:`Dir.is_unchanged`), not its inode."""
        return self._file != (0, 0) and root.is_unchanged(INDEX_FILE, self._header_raw, self._file[1])

    # -- writing (callers hold the vault lock) -------------------------------------

    def write(self, root: Dir, kek: bytes, kek_epoch: int) -> None:
        """Rewrite the index as one snapshot under master key *kek* (atomic, durable)."""
        assert self.parsed, "an index opened for appending only cannot be rewritten"
        snap = _ENCODER.encode(_Snapshot(_FORMAT, self.entries, {n: self.stamps[n] for n in self.entries}))
        payload = _container.encode_payload(snap, compress=True)
        generation = self.generation + 1
        data = _container.seal(
            kind=Kind.INDEX,
            vault_id=self.vault_id,
            object_id=_ZERO_ID,
            generation=generation,
            kek=kek,
            kek_epoch=kek_epoch,
            frames=[(FrameType.INDEX_SNAPSHOT, payload)],
        )
        root.write_atomic(INDEX_FILE, data)
        header = _container.parse_unverified_header(data)
        self.generation, self.kek_epoch = generation, kek_epoch
        self._header_raw = header.raw
        self._dek = _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)
        self._frames, self._snapshot_bytes, self._delta_bytes, self._torn = 1, len(payload), 0, False
        st = os.stat(INDEX_FILE, dir_fd=root.fd, follow_symlinks=False)
        self._file = (st.st_ino, st.st_size)

    def put(self, root: Dir, name: str, entry: Entry, stamp: Stamp) -> None:
        """Record *name*'s summary and stamp (appended, not fsynced: see the module doc)."""
        self._append(root, _Delta(put=name, doc=entry, stamp=stamp))
        if self.parsed:
            self.entries[name], self.stamps[name] = entry, stamp

    def touch(self, root: Dir, name: str, at: str) -> None:
        """Record that *name* was read at *at*: only in the index, so that a read never
        rewrites a session (a rebuild from the files forgets it)."""
        self._append(root, _Delta(accessed=name, at=at))
        entry = self.entries.get(name)
        if entry is not None:
            entry.last_accessed_at = at

    def drop(self, root: Dir, name: str) -> None:
        """Forget *name*."""
        if name in self.entries:
            self._append(root, _Delta(delete=name))
            self.entries.pop(name, None)
            self.stamps.pop(name, None)

    def _append(self, root: Dir, delta: _Delta) -> None:
        if self._torn:
            return  # a frame after a cut-short one would not parse: the caller rewrites instead
        payload = _container.encode_payload(_ENCODER.encode(delta), compress=True)
        frame = _container.seal_frame(self._dek, self._header_raw, self._frames, FrameType.INDEX_DELTA, payload)
        root.append(INDEX_FILE, frame, sync=False)
        self._frames += 1
        self._delta_bytes += len(payload)
        self._file = (self._file[0], self._file[1] + len(frame))

    @property
    def needs_compaction(self) -> bool:
        """Whether the file must be rewritten as one snapshot: the deltas outgrew the snapshot
        or are too many, or the file ends in a cut-short delta."""
        return (
            self._torn
            or self._frames > _MAX_DELTAS + 1
            or self._delta_bytes > max(self._snapshot_bytes, _COMPACT_FLOOR)
        )


def _other_format(snapshot: _container.Frame) -> OtherFormat | None:
    # Only after a snapshot failed to decode: is it an authenticated snapshot of another format?
    try:
        v = msgspec.json.decode(_container.decode_payload(snapshot.data), type=_Version).v
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return OtherFormat(v) if v != _FORMAT else None


def _frame_sizes(raw: bytes, count: int) -> list[int]:
    # The length actually consumed by the header and *count* complete frames: a torn tail
    # is not part of what we read, so the file reads as "not current" until it is rewritten.
    sizes = [_container.HEADER_SIZE]
    pos = _container.HEADER_SIZE
    for _ in range(count):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        sizes.append(4 + length)
        pos += 4 + length
    return sizes
