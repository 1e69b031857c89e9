"""The remote's change log, heads and content objects (docs/spec/remote-v1.md, "Log entries",
"Heads" and "Content objects"; docs/design.md, "Detecting a log cut, edited, reordered or rolled
back").

A self-contained format module, as :mod:`._remotekeys`: bytes in, bytes out, no I/O.  The
reader is where the guarantees live: :func:`read_log` takes one device's entries as the bucket
lists them, the epoch keys the reader holds and what it remembers of that device (its floor),
and returns the entries it can vouch for, or refuses with :class:`RemoteError` naming what is
wrong (a gap, a broken chain, an entry of another device or place, a rollback below the floor).

Randomness (nonces, object ids) is injectable only for the spec's test vectors.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import _crypto
from ._remotekeys import DeviceKeys, derive
from .errors import IntegrityError, RemoteError

__all__ = [
    "Head",
    "Keyring",
    "LogRead",
    "facts",
    "hlc_next",
    "named_objects",
    "open_entry",
    "open_head",
    "open_object",
    "read_log",
    "read_start",
    "seal_entry",
    "seal_object",
    "sign_head",
]

VERSION: Final = 1
ENTRY_MAGIC: Final = b"SSRL"
HEAD_MAGIC: Final = b"SSRH"
OBJECT_MAGIC: Final = b"SSRO"
#: magic, version, remote, device, epoch, seq, prev, nonce: 93 bytes.
ENTRY_HEADER: Final = struct.Struct(">4sB16s16sIQ32s12s")
#: magic, version, remote, device, epoch, seq, mac, hlc, witness count: 91 bytes.
HEAD_FIXED: Final = struct.Struct(">4sB16s16sIQ32sQH")
WITNESS: Final = struct.Struct(">16sQ32s")
#: magic, version, remote, device, epoch, object id, nonce: 69 bytes.
OBJECT_HEADER: Final = struct.Struct(">4sB16s16sI16s12s")
SIGNATURE: Final = 64
ZERO_MAC: Final = bytes(32)
_COUNTER_BITS: Final = 16

#: The epoch keys a reader holds, by epoch: one key, or several when devices made the same epoch
#: at once (docs/spec/remote-v1.md, "Two makers of one epoch"); an entry or object of that epoch
#: opens under whichever of them it was sealed under.
Keyring = Mapping[int, bytes | tuple[bytes, ...]]


def _candidates(keys: bytes | tuple[bytes, ...]) -> tuple[bytes, ...]:
    return keys if isinstance(keys, tuple) else (keys,)


def canonical(doc: Mapping[str, Any]) -> bytes:
    """Keys sorted, no spaces, UTF-8: the one encoding of an entry's plaintext."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hlc_next(last: int, now_ms: int, seen: int = 0) -> int:
    """The next hybrid logical clock value: ``(milliseconds << 16) | counter``, above *last* and
    *seen* (a clock read from another device), at *now_ms* when the wall clock is ahead."""
    high = max(last, seen)
    wall = now_ms << _COUNTER_BITS
    return wall if wall > high else high + 1


# -- log entries -------------------------------------------------------------------------------


def seal_entry(
    epoch_key: bytes,
    remote: uuid.UUID,
    device: uuid.UUID,
    *,
    epoch: int,
    seq: int,
    prev: bytes,
    entry: Mapping[str, Any],
    nonce: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Entry *seq* of *device*'s log, and its MAC (the next entry's ``prev``)."""
    nonce = _crypto.random_bytes(_crypto.NONCE_SIZE) if nonce is None else nonce
    header = ENTRY_HEADER.pack(ENTRY_MAGIC, VERSION, remote.bytes, device.bytes, epoch, seq, prev, nonce)
    _, sealed = _crypto.encrypt(derive(epoch_key, remote, device, "log"), canonical(entry), header, nonce=nonce)
    data = header + sealed
    return data, _crypto.hmac_sha256(derive(epoch_key, remote, device, "log mac"), data)


@dataclass(frozen=True)
class Opened:
    """One entry that authenticated: its place, its MAC and its plaintext."""

    seq: int
    epoch: int
    prev: bytes
    mac: bytes
    entry: dict[str, Any]


def open_entry(data: bytes, epoch_keys: Keyring, remote: uuid.UUID, device: uuid.UUID, seq: int) -> Opened:
    """Authenticate and open entry *seq* of *device*'s log (the chain is :func:`read_log`'s).

    :raises IntegrityError: not an entry, or of another remote, device or place, or modified.
    :raises RemoteError: sealed under an epoch whose key the reader does not hold.
    """
    if len(data) < ENTRY_HEADER.size + _crypto.TAG_SIZE:
        raise IntegrityError("not a change-log entry")
    magic, version, r, d, epoch, at, prev, nonce = ENTRY_HEADER.unpack_from(data)
    if (magic, version, r, d, at) != (ENTRY_MAGIC, VERSION, remote.bytes, device.bytes, seq):
        raise IntegrityError("a change-log entry of another remote, device or place")
    if epoch not in epoch_keys:
        raise RemoteError(
            f"device {device.hex}'s entry {seq} is sealed under epoch {epoch}, whose key this device lacks"
        )
    plain, key = _open_any(
        epoch_keys[epoch],
        remote,
        device,
        "log",
        nonce=nonce,
        sealed=data[ENTRY_HEADER.size :],
        aad=data[: ENTRY_HEADER.size],
    )
    try:
        entry = json.loads(plain)
    except ValueError:
        raise IntegrityError("a change-log entry that is not JSON") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        raise IntegrityError("a change-log entry without a kind")
    return Opened(seq, epoch, prev, _crypto.hmac_sha256(derive(key, remote, device, "log mac"), data), entry)


def _open_any(
    keys: bytes | tuple[bytes, ...],
    remote: uuid.UUID,
    device: uuid.UUID,
    purpose: str,
    *,
    nonce: bytes,
    sealed: bytes,
    aad: bytes,
) -> tuple[bytes, bytes]:
    """The plaintext, and the epoch key it opened under: the first of *keys* (in the order the
    reader holds them) under which AES-GCM authenticates.

    :raises IntegrityError: none does.
    """
    *others, last = _candidates(keys)
    for key in others:
        try:
            return _crypto.decrypt(derive(key, remote, device, purpose), nonce, sealed, aad), key
        except IntegrityError:
            continue
    return _crypto.decrypt(derive(last, remote, device, purpose), nonce, sealed, aad), last


@dataclass(frozen=True)
class LogRead:
    """What :func:`read_log` vouches for: the entries after the start, in order; the last
    ``(seq, mac)``; whether a failing last entry was left for later (not yet written); and,
    when the read stopped at an entry sealed under an epoch whose key the reader does not hold
    (``stop_unheld``), that epoch and the entry's seq (0 and 0 otherwise)."""

    entries: tuple[Opened, ...]
    end: tuple[int, bytes]
    pending: bool
    blocked: int = 0
    blocked_at: int = 0


def read_log(
    objects: Mapping[int, bytes],
    epoch_keys: Keyring,
    remote: uuid.UUID,
    device: uuid.UUID,
    *,
    start: tuple[int, bytes] = (0, ZERO_MAC),
    floor: tuple[int, bytes] | None = None,
    stop_unheld: bool = False,
    partial: Collection[int] = (),
) -> LogRead:
    """Check *device*'s log as listed (*objects*: seq -> bytes) from after *start* (the last
    entry already applied, with its MAC) and open what follows.

    :param floor: the highest ``(seq, mac)`` this reader knows the log reached (what it applied,
        or what a verified head or another device's witness names): a log that ends below it,
        or holds another entry at it, is rolled back.
    :param stop_unheld: an entry sealed under an epoch the reader holds no key of ends the read
        (``LogRead.blocked``) instead of refusing it: a new epoch not taken up yet, or one this
        reader was left out of.  The log must still be listed up to *floor* (the entries are
        there, unread); what was read is checked against it as usual.
    :param partial: with *stop_unheld*, the epochs of which another device made a key this
        reader does not hold (pending, or without a stanza for it): an entry of one of them that
        opens under none of the keys held ends the read there too (``blocked``), as an entry of
        an epoch not held at all does, instead of being taken for damage.
    :raises RemoteError: a gap, an entry that fails with entries after it, a broken chain, or a
        rollback; nothing is returned then.
    """
    who = f"device {device.hex}'s change log"
    seqs = sorted(s for s in objects if s > start[0])
    if seqs and seqs != list(range(start[0] + 1, start[0] + 1 + len(seqs))):
        raise RemoteError(f"{who} has a gap after entry {start[0]}: entries were removed")
    opened: list[Opened] = []
    prev, pending, blocked, blocked_at = start[1], False, 0, 0
    for i, seq in enumerate(seqs):
        epoch = _epoch_of(objects[seq])
        if stop_unheld and epoch is not None and epoch not in epoch_keys:
            blocked, blocked_at = epoch, seq
            break
        try:
            got = open_entry(objects[seq], epoch_keys, remote, device, seq)
        except IntegrityError:
            if stop_unheld and epoch in partial:
                blocked, blocked_at = epoch or 0, seq  # sealed under the other maker's key
                break
            if i == len(seqs) - 1:
                pending = True  # a PUT in flight, or a partial one its retry replaces
                break
            raise RemoteError(f"{who}: entry {seq} fails authentication (modified, moved or replayed)") from None
        if not _crypto.constant_time_equal(got.prev, prev):
            raise RemoteError(f"{who}: entry {seq} does not follow entry {seq - 1} (reordered, replayed or forked)")
        if opened and got.epoch < opened[-1].epoch:
            raise RemoteError(f"{who}: entry {seq} goes back to an older epoch")
        opened.append(got)
        prev = got.mac
    end = (opened[-1].seq, opened[-1].mac) if opened else start
    if floor is not None and blocked and floor[0] >= blocked_at:
        # The floor lies in what this reader cannot open yet: the entries must be there.
        if seqs[-1] < floor[0]:
            raise RemoteError(
                f"{who} ends at entry {seqs[-1]}, below entry {floor[0]} it reached before: it was cut or rolled back"
            )
    elif floor is not None:
        _check_floor(who, floor, start, opened, end)
    return LogRead(tuple(opened), end, pending, blocked, blocked_at)


def read_start(objects: Mapping[int, bytes], epoch_keys: Keyring) -> tuple[int, bytes]:
    """Where a reader starts *objects* (a device's log as listed): before entry 1 when it holds
    entry 1's epoch (or cannot tell); else just before the first entry sealed under an epoch it
    holds, with that entry's header's ``prev`` (docs/spec/remote-v1.md, "Rebase and
    retirement").  A reader that retired an old epoch cannot open what was sealed under it; the
    chain from there on is checked as ever and pinned by the signed head at its end, and the
    applying pull takes nothing of such a log before its first ``rebase`` entry."""
    if 1 not in objects:
        return 0, ZERO_MAC
    first = _epoch_of(objects[1])
    if first is None or first in epoch_keys:
        return 0, ZERO_MAC
    for seq in sorted(objects):
        epoch = _epoch_of(objects[seq])
        if seq > 1 and epoch is not None and epoch in epoch_keys:
            return seq - 1, bytes(ENTRY_HEADER.unpack_from(objects[seq])[6])
    return 0, ZERO_MAC


def named_objects(entry: Mapping[str, Any]) -> list[tuple[Any, str]]:
    """The content objects an entry names, each with the session it names it for: a
    ``rebase``'s one per session and one per checkpoint it restates, and the ``object`` of any
    other kind (``session.put``, ``session.append``, ``checkpoint.put``).  Generic on purpose:
    prune and retirement delete what no entry names, so a kind that names an object must never
    be missed here."""
    if entry.get("kind") == "rebase" and isinstance(entry.get("sessions"), list):
        # Its sessions' documents, then the checkpoints it restates (each of one of them).
        carried = entry.get("checkpoints", [])
        return [
            (r.get("session"), r["object"])
            for r in [*entry["sessions"], *(carried if isinstance(carried, list) else ())]
            if isinstance(r, dict) and isinstance(r.get("object"), str)
        ]
    if isinstance(entry.get("object"), str):
        return [(entry.get("session"), entry["object"])]
    return []


#: The kinds a ``rebase`` entry carries forward from its log's older entries.
CARRIED: Final = frozenset({"epoch", "device.enroll", "device.revoke"})


def facts(device: uuid.UUID, entries: Sequence[Opened]) -> list[Opened]:
    """*entries* with, before each ``rebase`` entry, the entries it carries (the log's first
    ``epoch`` entry, its ``device.enroll`` and ``device.revoke`` entries, sealed under epochs a
    reader may no longer hold): what a reader of the enrolments and revocations reads.  A
    carried entry stands at the rebase's seq (so a revocation's cutoff judges it there), but for
    the first device's opening entry, which stays entry 1; it keeps its own epoch.

    :raises RemoteError: a ``rebase`` entry whose ``carried`` is out of shape.
    """
    out: list[Opened] = []
    for o in entries:
        if o.entry.get("kind") == "rebase":
            carried = o.entry.get("carried", [])
            try:
                for seq, epoch, entry in carried:
                    if type(seq) is not int or type(epoch) is not int or not isinstance(entry, dict):
                        raise ValueError
                    if entry.get("kind") not in CARRIED:
                        raise ValueError
                    first = seq == 1 and entry.get("kind") == "epoch" and entry.get("reason") == "first"
                    out.append(Opened(1 if first else o.seq, epoch, ZERO_MAC, ZERO_MAC, entry))
            except (TypeError, ValueError):
                raise RemoteError(f"device {device.hex}'s entry {o.seq} is a malformed rebase") from None
        out.append(o)
    return out


def _epoch_of(data: bytes) -> int | None:
    """The epoch an entry's header names (None: too short to be an entry; its opening says so)."""
    if len(data) < ENTRY_HEADER.size:
        return None
    return int(ENTRY_HEADER.unpack_from(data)[4])


def _check_floor(
    who: str, floor: tuple[int, bytes], start: tuple[int, bytes], opened: list[Opened], end: tuple[int, bytes]
) -> None:
    if end[0] < floor[0]:
        raise RemoteError(
            f"{who} ends at entry {end[0]}, below entry {floor[0]} it reached before: it was cut or rolled back"
        )
    at = start[1] if floor[0] == start[0] else next((o.mac for o in opened if o.seq == floor[0]), None)
    if at is not None and not _crypto.constant_time_equal(at, floor[1]):
        raise RemoteError(f"{who} holds another entry {floor[0]} than it did: it was rolled back and rewritten")


# -- heads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """A device's signed word on its own log, and on what it applied of the others'."""

    device: uuid.UUID
    epoch: int
    seq: int
    mac: bytes
    hlc: int
    witness: dict[uuid.UUID, tuple[int, bytes]]


def sign_head(
    keys: DeviceKeys,
    remote: uuid.UUID,
    device: uuid.UUID,
    *,
    epoch: int,
    seq: int,
    mac: bytes,
    hlc: int,
    witness: Mapping[uuid.UUID, tuple[int, bytes]],
) -> bytes:
    """``P/d/<device>/head/<seq>``: the fixed part, the witness vector by device id, the signature."""
    body = HEAD_FIXED.pack(HEAD_MAGIC, VERSION, remote.bytes, device.bytes, epoch, seq, mac, hlc, len(witness))
    body += b"".join(WITNESS.pack(d.bytes, s, m) for d, (s, m) in sorted(witness.items(), key=lambda kv: kv[0].bytes))
    return body + _crypto.ed25519_sign(keys.ed25519, body)


def open_head(data: bytes, ed25519_public: bytes, remote: uuid.UUID, device: uuid.UUID) -> Head:
    """A head whose signature is *device*'s enrolled key's.

    :raises RemoteError: malformed, of another remote or device, or not signed by that key.
    """
    bad = RemoteError(f"device {device.hex}'s head is not one it signed (forged, modified or misplaced)")
    if len(data) < HEAD_FIXED.size + SIGNATURE:
        raise bad
    body, signature = data[:-SIGNATURE], data[-SIGNATURE:]
    if not _crypto.ed25519_verify(ed25519_public, signature, body):
        raise bad
    magic, version, r, d, epoch, seq, mac, hlc, count = HEAD_FIXED.unpack_from(body)
    if (magic, version, r, d) != (HEAD_MAGIC, VERSION, remote.bytes, device.bytes):
        raise bad
    if len(body) != HEAD_FIXED.size + count * WITNESS.size:
        raise bad
    witness: dict[uuid.UUID, tuple[int, bytes]] = {}
    for i in range(count):
        w, s, m = WITNESS.unpack_from(body, HEAD_FIXED.size + i * WITNESS.size)
        witness[uuid.UUID(bytes=w)] = (s, m)
    return Head(device, epoch, seq, mac, hlc, witness)


# -- content objects -------------------------------------------------------------------------------


def seal_object(
    epoch_key: bytes,
    remote: uuid.UUID,
    device: uuid.UUID,
    epoch: int,
    frame: bytes,
    *,
    object_id: bytes | None = None,
    nonce: bytes | None = None,
) -> tuple[str, bytes]:
    """A content object holding *frame* (a zstd frame), and its name (hex SHA-256 of its bytes)."""
    object_id = _crypto.random_bytes(16) if object_id is None else object_id
    nonce = _crypto.random_bytes(_crypto.NONCE_SIZE) if nonce is None else nonce
    header = OBJECT_HEADER.pack(OBJECT_MAGIC, VERSION, remote.bytes, device.bytes, epoch, object_id, nonce)
    _, sealed = _crypto.encrypt(derive(epoch_key, remote, device, "object"), frame, header, nonce=nonce)
    data = header + sealed
    return hashlib.sha256(data).hexdigest(), data


def open_object(name: str, data: bytes, epoch_keys: Keyring, remote: uuid.UUID, device: uuid.UUID) -> bytes:
    """The frame of the object stored at ``o/<name>`` of *device*; its hash is checked before
    anything is decrypted.

    :raises IntegrityError: another hash than its name, another remote or device, or modified.
    :raises RemoteError: sealed under an epoch whose key the reader does not hold.
    """
    if not _crypto.constant_time_equal(hashlib.sha256(data).hexdigest().encode(), name.encode()):
        raise IntegrityError("a content object whose bytes are not its name's")
    if len(data) < OBJECT_HEADER.size + _crypto.TAG_SIZE:
        raise IntegrityError("not a content object")
    magic, version, r, d, epoch, _, nonce = OBJECT_HEADER.unpack_from(data)
    if (magic, version, r, d) != (OBJECT_MAGIC, VERSION, remote.bytes, device.bytes):
        raise IntegrityError("a content object of another remote or device")
    if epoch not in epoch_keys:
        raise RemoteError(f"device {device.hex}'s object is sealed under epoch {epoch}, whose key this device lacks")
    sealed, aad = data[OBJECT_HEADER.size :], data[: OBJECT_HEADER.size]
    return _open_any(epoch_keys[epoch], remote, device, "object", nonce=nonce, sealed=sealed, aad=aad)[0]
