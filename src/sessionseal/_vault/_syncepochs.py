"""Taking up another device's new epoch (issue 26; docs/sync.md, "Devices"; docs/design.md,
"Keys"; docs/spec/remote-v1.md, "Epoch key objects").

A revocation (and, later, a delete) on one device makes epoch ``e+1``: its key ``K`` wrapped
for every enrolled device but the revoked one in ``P/d/<maker>/keys/<e+1>``, then an ``epoch``
entry naming that object's SHA-256 and what follows, sealed under ``K``.  Every other device
must take ``K`` up to read what the maker writes from then on, and to seal under it itself.

**Why a stanza alone is not enough.**  An X25519 stanza does not say who wrapped it: anyone who
can write the bucket, holding no key at all, can plant ``keys/<e+1>`` under an enrolled
device's prefix with a stanza wrapping a key ``K'`` of their choosing, then append entries under
``K'`` to that device's log (a log's MACs are in the clear in its heads and headers, so they can
chain from its real last entry).  A device that took ``K'`` would then apply forged sessions,
enrolments and revocations, and seal its own pushes under a key the attacker holds.

**The proof** (:func:`take_up_epochs`): ``K`` is kept only when the maker's log, read under the
keys already held and ``K``, holds the ``epoch`` entry of ``e+1`` naming the key object's hash
and sealed under ``K``, **and** a head signed by the maker's enrolled Ed25519 key names an entry
at or after it whose MAC, computed under the keys held and ``K``, is the head's.  The signed
MAC pins that entry's bytes (finding other bytes, or another key, with the same HMAC-SHA256 is a
preimage of SHA-256); each entry's header holds the MAC of the one before, so the chain back to
the ``epoch`` entry is pinned too; that entry names the key object's SHA-256, which pins the
object, whose stanza unwraps to ``K``.  So ``K`` is the key the maker made.  Whoever holds no
signing key of an enrolled device cannot produce such a head; a device that is not enrolled,
whose record's key differs from its enrolment's, or that a log read so far revokes, is not
accepted as a maker.

A key object whose proof is not there yet (the maker's entries or head still uploading, or a
planted object whose proof never comes) is **pending**: reported, not an error; the logs are read
up to the entries of that epoch.  A newer epoch whose key objects hold no stanza for this
device is **withheld**: this device was revoked (or enrolled after the epoch was made, by one
that had not yet taken it up), and reads nothing written under it.

The entry point the sync's other parts call, kept stable: :func:`take_up_epochs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .. import _crypto, _remotekeys, _remotelog
from .._enrolrule import standing
from ..errors import IntegrityError, RemoteError
from ._syncpull import Listing, list_remote, record_key, revocation_cutoffs

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store
    from ._devices import Devices

__all__ = ["EpochPickup", "take_up_epochs"]

#: The reasons an epoch is made after the first (docs/spec/remote-v1.md, "Log entries").
REASONS: Final = frozenset({"revoke", "delete"})
#: :func:`_candidate`'s answer for a key object without a stanza for this device.
NO_STANZA: Final = b""


@dataclass
class EpochPickup:
    """What :func:`take_up_epochs` found: counts and epoch numbers only, never a key."""

    taken: list[int] = field(default_factory=list)  # epochs kept by this call
    pending: int = 0  # key objects for this device whose proof is not (yet) there
    #: Epochs not held whose key object, by the device named, has no stanza for this device
    #: (and no other device's proved one): a log that stops at one says this device was revoked.
    withheld: dict[int, uuid.UUID] = field(default_factory=dict)
    #: Every epoch key held after this call (what the logs are then read under).
    keys: dict[int, bytes] = field(default_factory=dict, repr=False)
    #: The log entries a proof fetched, by device and seq, for the check that follows to reuse
    #: (a name always holds the same bytes; a partial last one is "not written yet" either way).
    fetched: dict[uuid.UUID, dict[int, bytes]] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, int]:
        return {"epochs_taken": len(self.taken), "epochs_pending": self.pending}


def take_up_epochs(
    config: RemoteConfig, s3: S3Store, devices: Devices, *, keep: bool = True, listing: Listing | None = None
) -> EpochPickup:
    """Find the epoch key objects of other devices on *config*'s remote holding a stanza for
    this device, and keep (``Devices.add_epoch_key``; with *keep* False, only return) each key
    whose proof is there (see the module's docstring), oldest epoch first, whatever the
    ``epoch`` entry's ``reason`` (``revoke``, ``delete``).  Nothing is kept before it is proved.

    :param listing: the remote's listing when the caller made one already (saves a LIST).
        Costs nothing more than that LIST when every key object is of an epoch held already;
        proving a new one reads every device's log once (a pending one, at every call).
    :raises RemoteError: two devices proved different keys for one epoch (epochs made at once on
        two devices: not resolved yet); a record or log this check reads is refused by the
        bucket (unreachable, access denied).
    """
    held = devices.epoch_keys(config)
    rid = devices.identity(config).remote_id if held else None
    out = EpochPickup(keys=dict(held))
    if rid is None:
        return out
    found = listing if listing is not None else list_remote(s3, config)
    me = config.device
    todo = sorted(
        (epoch, maker, key)
        for maker, objects in found.keys.items()
        if maker != me
        for epoch, key in objects.items()
        if epoch not in held
    )
    if not todo:
        return out
    reader = _Reader(s3, found, rid)
    for epoch in sorted({e for e, _, _ in todo}):
        proved: dict[uuid.UUID, bytes] = {}
        for _, maker, key in (t for t in todo if t[0] == epoch):
            obj = s3.get(key)
            got = _candidate(obj, rid, epoch, maker, me=me, keys=devices.identity(config).keys)
            if got is NO_STANZA:
                out.withheld.setdefault(epoch, maker)
            elif got is None or not reader.proves(maker, epoch, obj, got, out.keys):
                out.pending += 1
            else:
                proved[maker] = got
        if len({k for k in proved.values()}) > 1:
            raise RemoteError(
                f"two devices made different keys for the remote's epoch {epoch} (epochs changed on two devices "
                "at once); nothing of it was kept"
            )
        if proved:
            epoch_key = next(iter(proved.values()))
            if keep:
                devices.add_epoch_key(config, epoch, epoch_key)
            out.keys[epoch] = epoch_key
            out.taken.append(epoch)
            out.withheld.pop(epoch, None)
    out.fetched = reader.fetched()
    return out


def _candidate(
    obj: bytes, rid: uuid.UUID, epoch: int, maker: uuid.UUID, *, me: uuid.UUID, keys: _remotekeys.DeviceKeys
) -> bytes | None:
    """The key the object's stanza for this device unwraps to; :data:`NO_STANZA` when it holds
    none for this device; None when it is malformed, misplaced or does not unwrap."""
    try:
        parsed = _remotekeys.parse_keys_object(obj)
    except IntegrityError:
        return None  # a partial upload, or planted: never proved
    if (parsed.remote, parsed.epoch, parsed.maker) != (rid, epoch, maker):
        return None
    stanza = parsed.for_device(me)
    if stanza is None:
        return NO_STANZA
    try:
        return _remotekeys.unwrap_device(stanza, rid, epoch, me, keys)
    except IntegrityError:
        return None


class _Reader:
    """The logs, heads and records the proofs read, each fetched once."""

    def __init__(self, s3: S3Store, listing: Listing, rid: uuid.UUID) -> None:
        self.s3, self.listing, self.rid = s3, listing, rid
        self._logs: dict[uuid.UUID, dict[int, bytes]] = {}

    def fetched(self) -> dict[uuid.UUID, dict[int, bytes]]:
        return dict(self._logs)

    def log(self, dev: uuid.UUID) -> dict[int, bytes]:
        if dev not in self._logs:
            self._logs[dev] = {seq: self.s3.get(k) for seq, k in self.listing.logs.get(dev, {}).items()}
        return self._logs[dev]

    def read(self, dev: uuid.UUID, keys: dict[int, bytes]) -> _remotelog.LogRead | None:
        """*dev*'s log from its first entry under a key held (older epochs' keys may be gone),
        up to the first it cannot open; None when it does not check out."""
        objects = self.log(dev)
        start = (0, _remotelog.ZERO_MAC)
        for seq in sorted(objects):
            data = objects[seq]
            if len(data) >= _remotelog.ENTRY_HEADER.size:
                header = _remotelog.ENTRY_HEADER.unpack_from(data)
                if header[4] in keys:
                    start = (seq - 1, header[6]) if seq > 1 else start
                    break
        try:
            return _remotelog.read_log(objects, keys, self.rid, dev, start=start, stop_unheld=True)
        except RemoteError:
            return None

    def enrolled_key(self, maker: uuid.UUID, keys: dict[int, bytes]) -> bytes | None:
        """*maker*'s Ed25519 key as enrolled, from the logs readable under *keys* (the keys held
        before the epoch being proved, never the candidate's): None when no log enrols it, a log
        revokes it, or its record's key is not the one its enrolment names."""
        named = self._named(maker, keys)
        name = self.listing.records.get(maker)
        if named is None or name is None:
            return None
        try:
            recorded = record_key(self.s3.get(name), maker, self.rid)
        except RemoteError:
            return None
        # The first device's opening entry names its keys; one written before it did is
        # trusted as its record lists them (docs/design.md, "Keys").
        if named and not _crypto.constant_time_equal(named, recorded):
            return None
        return recorded

    def _named(self, maker: uuid.UUID, keys: dict[int, bytes]) -> bytes | None:
        """The Ed25519 key the logs enrol *maker* with (b"": enrolled by a first entry that names
        none); None: not enrolled, revoked, or a malformed key."""
        reads = {dev: r.entries for dev in sorted(self.listing.logs) if (r := self.read(dev, keys)) is not None}
        try:
            cut = revocation_cutoffs(reads)
        except RemoteError:
            return None
        # A revoked device's entries after its revocation enrol no one; nor do those of a
        # device whose own enrolment does not count (_enrolrule).
        counted = {d: tuple(o for o in es if d not in cut or o.seq <= cut[d]) for d, es in reads.items()}
        ok = standing(counted, self._key_object)
        if maker not in ok:
            return None
        named: bytes | None = None
        for dev, entries in counted.items():
            if dev not in ok:
                continue
            for opened in entries:
                e = opened.entry
                kind = e.get("kind")
                if kind == "device.revoke" and e.get("device") == maker.hex:
                    return None
                first = dev == maker and opened.seq == 1 and kind == "epoch" and e.get("reason") == "first"
                if (kind == "device.enroll" and e.get("device") == maker.hex) or first:
                    try:
                        named = base64.b64decode(str(e.get("ed25519", "")), validate=True)
                    except (ValueError, binascii.Error):
                        return None
        return named

    def _key_object(self, maker: uuid.UUID, epoch: int) -> bytes | None:
        name = self.listing.keys.get(maker, {}).get(epoch)
        return None if name is None else self.s3.get(name)

    def proves(self, maker: uuid.UUID, epoch: int, obj: bytes, epoch_key: bytes, held: dict[int, bytes]) -> bool:
        """The maker's log holds, under *epoch_key*, its ``epoch`` entry naming *obj*, and a
        head signed by its enrolled key covers it (the module's docstring says why that is a
        proof)."""
        public = self.enrolled_key(maker, held)
        if public is None:
            return False
        read = self.read(maker, {**held, epoch: epoch_key})
        if read is None:
            return False
        digest = hashlib.sha256(obj).hexdigest()
        at = next(
            (
                o.seq
                for o in read.entries
                if o.epoch == epoch
                and o.entry.get("kind") == "epoch"
                and o.entry.get("epoch") == epoch
                and o.entry.get("reason") in REASONS
                and o.entry.get("keys") == digest
            ),
            None,
        )
        if at is None:
            return False
        macs = {o.seq: o.mac for o in read.entries if o.seq >= at}
        for seq in sorted((s for s in self.listing.heads.get(maker, {}) if s in macs), reverse=True):
            try:
                head = _remotelog.open_head(self.s3.get(self.listing.heads[maker][seq]), public, self.rid, maker)
            except RemoteError:
                continue
            if head.seq == seq and _crypto.constant_time_equal(head.mac, macs[seq]):
                return True
        return False
