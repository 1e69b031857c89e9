"""The push's local record of one remote: what this device's log holds, what it pushed of each
session, and its outbox (docs/spec/remote-v1.md, "The local cursor"; docs/sync.md).

``sync/<device>.sst`` in the vault, one file per remote, replaced atomically.  It is sealed
under a key derived from the remote data key of the epoch it names, not under the master key:
it names sessions, and so it must become unreadable with the epoch whose objects it describes
(docs/design.md, "Deletes"), which a key derived from the vault secret would not.

The **outbox** holds the exact bytes of every name the push has committed to but not yet seen
written (log entries, heads, the device record, an epoch key object): a push killed at any
point resumes by sending them again, the same bytes under the same names, before anything new.
Content objects are not kept: each is PUT before the entry naming it is committed here, under
a name that is the hash of its bytes, so a killed push leaves at worst an object nothing names.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .. import _compress, _crypto
from .._fs import Dir
from .._remotelog import ZERO_MAC
from ..errors import IntegrityError

__all__ = [
    "SYNC_DIR",
    "Cursor",
    "Pushed",
    "Sealed",
    "cursor_name",
    "open_sealed",
    "read_cursor",
    "seal",
    "write_cursor",
]

SYNC_DIR: Final = "sync"
MAGIC: Final = b"SSRC"
VERSION: Final = 1
#: magic, version, remote, device, epoch, nonce: 53 bytes.
HEADER: Final = struct.Struct(">4sB16s16sI12s")
_LABEL: Final = b"sessionseal remote v1 local cursor"
_MAX: Final = 512 << 20
_BAD: Final = "the vault's sync cursor failed its integrity check; run 'sessionseal verify'"


@dataclass(frozen=True)
class Pushed:
    """What this device's log says of one session: the container version it last sent (its
    generation, committed end and number of appended groups) and the operations its line holds
    since its last ``session.put`` (the ``base`` of the next ``session.append``)."""

    generation: int
    end: int
    groups: int
    ops: int


@dataclass
class Cursor:
    """The decoded cursor."""

    remote: uuid.UUID
    device: uuid.UUID
    seq: int = 0  # the last entry committed (sent, or in the outbox)
    mac: bytes = ZERO_MAC  # its MAC: the next entry's prev
    epoch: int = 0  # the epoch of the last entry
    hlc: int = 0  # the last clock value written
    sessions: dict[bytes, Pushed] = field(default_factory=dict)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # (key under the device prefix, bytes)
    #: How many of the outbox's names are log entries (the rest are heads and key objects).
    pending: int = 0
    #: The epoch of this log's latest ``rebase`` entry, or of its entry 1 (nothing older is in
    #: it); 0: neither yet.  A push under a newer epoch writes a rebase (``_syncrebase``).
    rebased: int = 0
    #: Per session, its checkpoints as the last push saw them: local number -> (tag of the
    #: file's header, the id it went out as; None: one a pull added, never sent) (:mod:`._syncckpt`).
    ckpts: dict[bytes, dict[int, tuple[bytes, uuid.UUID | None]]] = field(default_factory=dict)
    #: ``checkpoints/`` as a push found it (inode, mtime and ctime in ns) when every live
    #: session's checkpoint files were as :attr:`ckpts` says; None: not known so
    #: (:meth:`._syncckpt.CheckpointSync.changed`).
    ckpts_dir: tuple[int, int, int] | None = None

    @property
    def confirmed(self) -> int:
        """The last entry known to be on the remote."""
        return self.seq - self.pending


def cursor_name(device: uuid.UUID) -> str:
    return f"{device.hex}.sst"


def _encode(c: Cursor) -> bytes:
    doc: dict[str, Any] = {
        "v": VERSION,
        "seq": c.seq,
        "mac": c.mac.hex(),
        "epoch": c.epoch,
        "hlc": c.hlc,
        "pending": c.pending,
        "rebased": c.rebased,
        "sessions": {sid.hex(): [p.generation, p.end, p.groups, p.ops] for sid, p in sorted(c.sessions.items())},
        "outbox": [[k, base64.b64encode(d).decode()] for k, d in c.outbox],
        "ckpts": {
            sid.hex(): [[n, tag.hex(), None if cid is None else cid.hex] for n, (tag, cid) in sorted(held.items())]
            for sid, held in sorted(c.ckpts.items())
            if held
        },
    }
    if c.ckpts_dir is not None:  # absent otherwise: the bytes of a cursor from before it
        doc["ckpts_dir"] = list(c.ckpts_dir)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _nat(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise ValueError
    return v


def _uuid(i: Any) -> uuid.UUID | None:
    return None if i is None else uuid.UUID(bytes=bytes.fromhex(i))  # 0.9 µs; UUID(hex=) 1.3: it strips first


def _decode(remote: uuid.UUID, device: uuid.UUID, plain: bytes) -> Cursor:
    try:
        doc = orjson.loads(plain)
        if doc["v"] != VERSION:
            raise ValueError
        sessions = {}
        # Every push reads every session's record (a vault's worth): checked without a
        # generator or a call per field (a third of the read's CPU).
        for sid, (g, e, n, o) in doc["sessions"].items():
            key = bytes.fromhex(sid)
            if len(key) != 16 or not (type(g) is type(e) is type(n) is type(o) is int and min(g, e, n, o) >= 0):
                raise ValueError
            sessions[key] = Pushed(g, e, n, o)
        outbox = [(str(k), base64.b64decode(d, validate=True)) for k, d in doc["outbox"]]
        mac = bytes.fromhex(doc["mac"])
        c = Cursor(remote, device, _nat(doc["seq"]), mac, _nat(doc["epoch"]), _nat(doc["hlc"]), sessions, outbox)
        c.pending = _nat(doc["pending"])
        c.rebased = _nat(doc.get("rebased", 0))  # absent in a cursor written before rebases
        for sid, held in doc.get("ckpts", {}).items():  # absent: written before checkpoints were sent
            key = bytes.fromhex(sid)
            if len(key) != 16:
                raise ValueError
            c.ckpts[key] = {_nat(n): (bytes.fromhex(t), _uuid(i)) for n, t, i in held}
        if (stamp := doc.get("ckpts_dir")) is not None:  # absent: not known, or before it was kept
            ino, mtime, ctime = (_nat(x) for x in stamp)
            c.ckpts_dir = (ino, mtime, ctime)
        if len(mac) != 32 or c.pending > c.seq:
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
        raise IntegrityError(_BAD) from None
    return c


def read_cursor(d: Dir, remote: uuid.UUID, device: uuid.UUID, epoch_keys: dict[int, bytes]) -> Cursor | None:
    """The cursor of *device* on *remote*, or None when there is none (a first push).

    :raises IntegrityError: modified, of another remote or device, or sealed under an epoch
        this device no longer holds.
    """
    plain = open_sealed(PUSH_CURSOR, d, cursor_name(device), remote=remote, device=device, epoch_keys=epoch_keys)
    return None if plain is None else _decode(remote, device, plain)


def write_cursor(d: Dir, cursor: Cursor, epoch: int, epoch_key: bytes) -> None:
    """Replace the cursor atomically, sealed under *epoch*'s key (the newest this device holds)."""
    seal(
        PUSH_CURSOR,
        d,
        cursor_name(cursor.device),
        _encode(cursor),
        remote=cursor.remote,
        device=cursor.device,
        epoch=epoch,
        epoch_key=epoch_key,
    )


@dataclass(frozen=True)
class Sealed:
    """One kind of this device's sealed sync file (the push cursor here, the pull cursor in
    ``_syncapply``): its magic and key label bind the role, so neither opens as the other."""

    magic: bytes
    label: bytes
    bad: str  # the integrity error's message


PUSH_CURSOR: Final = Sealed(MAGIC, _LABEL, _BAD)


def open_sealed(
    kind: Sealed, d: Dir, name: str, *, remote: uuid.UUID, device: uuid.UUID, epoch_keys: dict[int, bytes]
) -> bytes | None:
    """The payload of the sealed file *name* in *d*, or None when there is none.

    :raises IntegrityError: modified, of another kind, remote or device, or sealed under an
        epoch this device no longer holds.
    """
    try:
        data = d.read(name, max_size=_MAX)
    except FileNotFoundError:
        return None
    if len(data) < HEADER.size + _crypto.TAG_SIZE:
        raise IntegrityError(kind.bad)
    magic, version, r, dev, epoch, nonce = HEADER.unpack_from(data)
    if (magic, version, r, dev) != (kind.magic, VERSION, remote.bytes, device.bytes) or epoch not in epoch_keys:
        raise IntegrityError(kind.bad)
    key = _crypto.hkdf(epoch_keys[epoch], remote.bytes + device.bytes, kind.label)
    return _compress.decompress(_crypto.decrypt(key, nonce, data[HEADER.size :], data[: HEADER.size]))


def seal(
    kind: Sealed,
    d: Dir,
    name: str,
    payload: bytes,
    *,
    remote: uuid.UUID,
    device: uuid.UUID,
    epoch: int,
    epoch_key: bytes,
) -> None:
    """Replace *name* in *d* atomically with *payload* sealed under *epoch*'s key."""
    nonce = _crypto.random_bytes(_crypto.NONCE_SIZE)
    header = HEADER.pack(kind.magic, VERSION, remote.bytes, device.bytes, epoch, nonce)
    key = _crypto.hkdf(epoch_key, remote.bytes + device.bytes, kind.label)
    _, sealed = _crypto.encrypt(key, _compress.compress(payload), header, nonce=nonce)
    d.write_atomic(name, header + sealed)
