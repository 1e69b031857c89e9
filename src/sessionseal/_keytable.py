"""The key table: the vault secret and one key per session, encrypted under the master key.

Key hierarchy (docs/design.md, "Keys")::

    master key (keychain or passphrase key file, by epoch)
      └─ key table  keytable.sst  (container kind 2, wrapped under the master key)
           ├─ vault secret ─HKDF─> file-name key, fingerprint key, (audit, index keys)
           └─ session key, one per session ─wraps─> a fresh data key per saved version

A session's data can be decrypted only through its entry here.  Removing the entry
and re-encrypting the table under a new master key (issue #5) therefore erases the
session cryptographically, even from old copies of the vault's files.

On disk the table is a snapshot frame followed by delta frames (one per added or
removed session), so creating a session appends ~100 bytes instead of rewriting the
table; once the deltas outnumber ``_COMPACT_AFTER`` the vault rewrites it as a single
snapshot (:meth:`KeyTable.write`).

The table also carries the vault's anchored state (:mod:`._state`, issue 20): a full
``TABLE_STATE`` frame after every snapshot, and a delta ``TABLE_STATE`` frame for each change
(:meth:`KeyTable.commit`), so that the marks are sealed under the master key and follow it.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import ItemsView, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from . import _container, _crypto
from ._container import FrameType, Kind
from ._fs import Dir
from ._keystore import MasterKeys
from ._state import StateChange, VaultState, decode_frame, encode_change, encode_full
from .errors import IntegrityError, KeyStoreError

__all__ = ["KEYTABLE", "KeyTable", "SessionKeys"]

KEYTABLE: Final = "keytable.sst"
_ZERO_ID: Final = UUID(int=0)
_OP_ADD: Final = 1
_OP_REMOVE: Final = 2
_ENTRY: Final = struct.Struct(">16s32s")
_MAX_TABLE: Final = 256 << 20
#: Compact when the frames outnumber this: each costs a decrypt at every open (about 10 us), and
#: a state delta is appended by every audited operation (issue 20).
_COMPACT_AFTER: Final = 512


def _corrupt() -> IntegrityError:
    return IntegrityError("the vault's key table failed its integrity check; run 'sessionseal verify'")


class SessionKeys(MutableMapping[UUID, bytes]):
    """Session id -> session key, stored by the id's 16 bytes.

    Building 10,000 ``UUID`` objects took most of the time of reading a large table, on
    every command; a lookup converts the one id it is given instead.
    """

    __slots__ = ("_keys",)

    def __init__(self, raw: dict[bytes, bytes] | None = None) -> None:
        self._keys: dict[bytes, bytes] = {} if raw is None else raw

    def __getitem__(self, session_id: UUID) -> bytes:
        return self._keys[session_id.bytes]

    def __setitem__(self, session_id: UUID, key: bytes) -> None:
        self._keys[session_id.bytes] = key

    def __delitem__(self, session_id: UUID) -> None:
        del self._keys[session_id.bytes]

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, UUID) and session_id.bytes in self._keys

    def __iter__(self) -> Iterator[UUID]:
        return (UUID(bytes=b) for b in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<SessionKeys: {len(self._keys)} sessions>"  # never the keys

    def raw_items(self) -> ItemsView[bytes, bytes]:
        """(id bytes, key) pairs, as the snapshot stores them."""
        return self._keys.items()


@dataclass
class KeyTable:
    """The decrypted table and what is needed to append to its file."""

    vault_id: UUID
    vault_secret: bytes
    session_keys: SessionKeys = field(default_factory=SessionKeys)
    kek_epoch: int = 1
    generation: int = 1
    #: The anchored state (:mod:`._state`); untracked in a table written before issue 20.
    state: VaultState = field(default_factory=VaultState)
    # Append state: the file's header, its data key, how many frames it holds and where the
    # last of them ends.  Header and size tell whether another process changed the file since
    # we read it (the header holds a wrapped data key drawn for every rewrite).
    _header_raw: bytes = b""
    _dek: bytes = b""
    _frames: int = 0
    _size: int = 0
    #: Whether the file ended in an incomplete frame when last read (a killed append, or a cut).
    torn: bool = False

    def __repr__(self) -> str:
        return f"KeyTable(vault_id={self.vault_id}, sessions={len(self.session_keys)}, epoch={self.kek_epoch})"

    # -- reading -----------------------------------------------------------------

    @classmethod
    def load(cls, root: Dir, vault_id: UUID, master: MasterKeys) -> KeyTable:
        """Read and authenticate the table.

        :raises KeyStoreError: the master key for the table's epoch is not in *master*.
        :raises IntegrityError: any modified, missing or trailing byte.
        """
        try:
            raw = root.read(KEYTABLE, max_size=_MAX_TABLE)
        except FileNotFoundError:
            raise IntegrityError(
                f"the vault's key table {root.path / KEYTABLE} is missing; restore it from a backup"
            ) from None
        header = _container.parse_unverified_header(raw)
        if header.kind != Kind.KEY_TABLE or header.vault_id != vault_id or header.object_id != _ZERO_ID:
            raise _corrupt()
        kek = master.keys.get(header.kek_epoch)
        if kek is None:
            raise KeyStoreError(
                f"the key store holds no master key of epoch {header.kek_epoch} for this vault; "
                "it may have been replaced - restore the keychain entry or key file from a backup"
            )
        # A delta is fsynced before the session it keys is written, so an incomplete last
        # delta is an append in flight by another process; its session does not exist yet.
        dek = _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)
        frames, end = _container.open_frames_at(raw, header, dek, _container.HEADER_SIZE, 0, torn_tail_ok=True)
        if not frames or frames[0].type != FrameType.TABLE_SNAPSHOT:
            raise _corrupt()
        table = cls._from_snapshot(vault_id, _container.decode_payload(frames[0].data))
        table._apply_frames(frames[1:])
        table.kek_epoch = header.kek_epoch
        table.generation = header.generation
        table._header_raw, table._dek, table._frames = header.raw, dek, len(frames)
        # Where the last whole frame ends: a torn tail (a write cut short by a full disk) is
        # not part of the table, and the next append is written over it (:meth:`_append`).
        table._size = end
        table.torn = end != len(raw)
        return table

    def _apply_frames(self, frames: list[_container.Frame]) -> None:
        for frame in frames:
            if frame.type == FrameType.TABLE_DELTA:
                self._apply_delta(_container.decode_payload(frame.data))
            elif frame.type == FrameType.TABLE_STATE:
                decode_frame(self.state, _container.decode_payload(frame.data))
            else:
                raise _corrupt()

    def refresh(self, root: Dir) -> bool:
        """Bring the table up to date with its file, reading only the frames another process
        appended since (the caller holds the vault lock).  Returns false when the file was
        rewritten (or cut) since: then it must be loaded again (:meth:`load`).

        Every audited operation appends a state frame: rereading and decrypting the whole
        table for each would make a write O(sessions) whenever two processes take turns.
        """
        if not self._header_raw:
            return False
        if root.is_unchanged(KEYTABLE, self._header_raw, self._size):
            return True  # the common case, for the price of a header read
        try:
            raw = root.read(KEYTABLE, max_size=_MAX_TABLE)
        except FileNotFoundError:
            return False
        if len(raw) < self._size or raw[: len(self._header_raw)] != self._header_raw:
            return False
        if len(raw) == self._size:
            return True
        header = _container.parse_unverified_header(raw)
        frames, end = _container.open_frames_at(raw, header, self._dek, self._size, self._frames, torn_tail_ok=True)
        self._apply_frames(frames)
        self._frames += len(frames)
        self._size = end
        self.torn = end != len(raw)
        return True

    @classmethod
    def _from_snapshot(cls, vault_id: UUID, data: bytes) -> KeyTable:
        if len(data) < 36:
            raise _corrupt()
        secret, (count,) = data[:32], struct.unpack_from(">I", data, 32)
        if len(data) != 36 + count * _ENTRY.size:
            raise _corrupt()
        keys = dict(_ENTRY.iter_unpack(data[36:]))
        if len(keys) != count:
            raise _corrupt()
        return cls(vault_id=vault_id, vault_secret=secret, session_keys=SessionKeys(keys))

    def _apply_delta(self, data: bytes) -> None:
        if len(data) == 1 + _ENTRY.size and data[0] == _OP_ADD:
            sid, key = _ENTRY.unpack_from(data, 1)
            self.session_keys[UUID(bytes=sid)] = key
        elif len(data) == 17 and data[0] == _OP_REMOVE:
            self.session_keys.pop(UUID(bytes=data[1:17]), None)
        else:
            raise _corrupt()

    def is_current(self, root: Dir) -> bool:
        """Whether the file is still the one (and the size) this table was read from or wrote,
        by its header and size (:meth:`Dir.is_unchanged`): a delta appended to another table
        under our old data key would make it unreadable."""
        return root.is_unchanged(KEYTABLE, self._header_raw, self._size)

    # -- writing (callers hold the vault lock) -------------------------------------

    def _snapshot(self) -> bytes:
        entries = b"".join(_ENTRY.pack(sid, key) for sid, key in self.session_keys.raw_items())
        return self.vault_secret + struct.pack(">I", len(self.session_keys)) + entries

    def write(self, root: Dir, kek: bytes, kek_epoch: int) -> None:
        """Rewrite the table as one snapshot under *kek* (atomic)."""
        generation = self.generation + 1 if self._header_raw else self.generation
        frames = [(FrameType.TABLE_SNAPSHOT, _container.encode_payload(self._snapshot(), compress=False))]
        state = self.state
        if state.tracked:
            # The whole state follows the snapshot, one counter on: a rewrite is a state change.
            full = dataclasses.replace(state, counter=state.counter + 1)
            frames.append((FrameType.TABLE_STATE, _container.encode_payload(encode_full(full), compress=True)))
        data = _container.seal(
            kind=Kind.KEY_TABLE,
            vault_id=self.vault_id,
            object_id=_ZERO_ID,
            generation=generation,
            kek=kek,
            kek_epoch=kek_epoch,
            frames=frames,
        )
        root.write_atomic(KEYTABLE, data)
        header = _container.parse_unverified_header(data)
        self.generation, self.kek_epoch = generation, kek_epoch
        if state.tracked:
            state.counter += 1
        # Re-derive the append state from what was written.
        self._header_raw = header.raw
        self._dek = _crypto.unwrap_key(kek, header.wrapped_dek, header.wrap_aad)
        self._frames = len(frames)
        self._size = len(data)
        self.torn = False

    def _append(self, root: Dir, delta: bytes, frame_type: int = FrameType.TABLE_DELTA) -> None:
        frame = _container.seal_frame(
            self._dek,
            self._header_raw,
            self._frames,
            frame_type,
            _container.encode_payload(delta, compress=frame_type == FrameType.TABLE_STATE),
        )
        # At the end of the last whole frame, over a torn tail if there is one (a frame
        # appended after a torn one could never be read back).
        self._size = root.append_at(KEYTABLE, self._size, frame)
        self._frames += 1

    def add(self, root: Dir, session_id: UUID) -> bytes:
        """Create, record durably, and return a new key for *session_id*."""
        return self.add_many(root, [session_id])[0]

    def add_many(self, root: Dir, session_ids: list[UUID]) -> list[bytes]:
        """Create and record durably a new key for each of *session_ids*, one frame each, with
        one write and one fsync (a pull's batch of new sessions); return them in order."""
        keys = [_crypto.new_key() for _ in session_ids]
        frames = bytearray()
        for i, (sid, key) in enumerate(zip(session_ids, keys, strict=True)):
            delta = _container.encode_payload(bytes([_OP_ADD]) + _ENTRY.pack(sid.bytes, key), compress=False)
            frames += _container.seal_frame(self._dek, self._header_raw, self._frames + i, FrameType.TABLE_DELTA, delta)
        if frames:
            # As _append: at the end of the last whole frame, over a torn tail if there is one.
            self._size = root.append_at(KEYTABLE, self._size, bytes(frames))
            self._frames += len(keys)
        self.session_keys.update(zip(session_ids, keys, strict=True))
        return keys

    def remove(self, root: Dir, session_id: UUID) -> None:
        """Forget *session_id*'s key durably (its old copies stay in the file until compaction)."""
        self._append(root, bytes([_OP_REMOVE]) + session_id.bytes)
        self.session_keys.pop(session_id, None)

    def track(self, root: Dir, kek: bytes, state: VaultState) -> None:
        """Start tracking the vault's state (a new vault, or ``migrate``): rewrite the table as a
        snapshot followed by *state* in full."""
        state.tracked = True
        self.state = state
        self.write(root, kek, self.kek_epoch)

    def commit(self, root: Dir, change: StateChange) -> None:
        """Append *change* to the state durably (the caller holds the vault lock and has
        brought the table up to date, :meth:`refresh`).  Nothing is written for an untracked
        table or an empty change."""
        state = self.state
        if not state.tracked or not change:
            return
        self._append(root, encode_change(state.counter + 1, change), FrameType.TABLE_STATE)
        state.apply(change)
        state.counter += 1

    @property
    def needs_compaction(self) -> bool:
        """Whether the delta frames are many enough to rewrite the table."""
        return self._frames > _COMPACT_AFTER
