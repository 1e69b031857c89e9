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
up to the entries of that epoch.  A proof reads every device's log, and a pending one is tried
again at every pull: so what it verified of each log under the keys held (its last entry's seq
and MAC, and the entries a proof reads: enrolments, revocations, epochs, the log's first, each
rebase as the entries it carries) is kept in the pull cursor (``proof``, sealed), and the next
proof fetches and opens only the entries after it, chained from that MAC (a MAC pins every entry
before it, as a head's does).  A delete's push proves the others' epochs first, from the same
prefixes (``_synctomb``).

A newer epoch whose key objects hold no stanza for this device is **withheld**: this device was
revoked (or enrolled at the moment the epoch was made, by one that had not seen it), and reads
nothing written under it, until another device's wrap of it for this device is proved
(:func:`_take_wraps`; :mod:`._syncwrap` says what proves one).

The entry point the sync's other parts call, kept stable: :func:`take_up_epochs`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .. import _crypto, _remotekeys, _remotelog
from .._enrolrule import standing
from ..errors import IntegrityError, RemoteError
from ._syncpull import Listing, list_remote, record_key, revocation_cutoffs
from ._syncstate import Proved, read_state, write_state
from ._syncwrap import is_wrap, wrapped_for

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._fs import Dir
    from .._s3 import S3Store
    from ._devices import Devices

__all__ = ["EpochPickup", "take_up_epochs"]

#: The reasons an epoch is made after the first (docs/spec/remote-v1.md, "Log entries").
REASONS: Final = frozenset({"revoke", "delete", "rekey"})
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
    #: Every epoch key held after this call (what the logs are then read under), several for an
    #: epoch that devices made at once.
    keys: dict[int, bytes | tuple[bytes, ...]] = field(default_factory=dict, repr=False)
    #: Epochs of which a key object of another maker is not taken up (pending, or without a
    #: stanza for this device): an entry of one that opens under no key held stops a log's read.
    partial: set[int] = field(default_factory=set)
    #: The log entries a proof fetched, by device and seq, for the check that follows to reuse
    #: (a name always holds the same bytes; a partial last one is "not written yet" either way).
    fetched: dict[uuid.UUID, dict[int, bytes]] = field(default_factory=dict, repr=False)
    wraps_taken: int = 0  # keys kept from other devices' wraps (``_syncwrap``)
    #: Wraps for this device refused: by device and reason, never a key.
    wrap_refusals: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"epochs_taken": len(self.taken), "epochs_pending": self.pending}


def take_up_epochs(
    config: RemoteConfig,
    s3: S3Store,
    devices: Devices,
    *,
    keep: bool = True,
    listing: Listing | None = None,
    sync_dir: Dir | None = None,
) -> EpochPickup:
    """Find the epoch key objects of other devices on *config*'s remote holding a stanza for
    this device, and keep (``Devices.add_epoch_key``; with *keep* False, only return) each key
    whose proof is there (see the module's docstring), oldest epoch first, whatever the
    ``epoch`` entry's ``reason`` (``revoke``, ``delete``).  Nothing is kept before it is proved.
    With *keep*, an epoch left withheld that another device wrapped for this one is taken from
    that wrap once proved, and the take-up runs again under it (``EpochPickup.wraps_taken``,
    ``wrap_refusals``).

    :param listing: the remote's listing when the caller made one already (saves a LIST).
        Costs nothing more than that LIST when every key object is of an epoch held already;
        proving a new one reads every device's log once; a pending one, at every call, only
        what follows the prefixes kept in the pull cursor under *sync_dir* (updated there with
        *keep*; None: no cursor, every log read whole).
    :raises RemoteError: a record or log this check reads is refused by the bucket
        (unreachable, access denied).
    """
    out = _take_up(config, s3, devices, keep=keep, listing=listing, sync_dir=sync_dir)
    if not keep or not out.withheld:
        return out  # the common case: nothing more is read
    found = listing if listing is not None else list_remote(s3, config)
    if not any(w[0] == config.device for ws in found.wraps.values() for w in ws):
        return out
    # An epoch whose maker did not know this device yet (enrolled at that same moment): another
    # device's wrap of it, kept once proved (_syncwrap); then what it unblocks, as any pull.
    refusals, taken = _take_wraps(config, s3, devices, found, out)
    if not taken:
        out.wrap_refusals = refusals
        return out
    again = _take_up(config, s3, devices, keep=keep, listing=found, sync_dir=sync_dir)
    again.taken[:0], again.wraps_taken, again.wrap_refusals = taken, len(taken), refusals
    return again


def _take_up(
    config: RemoteConfig,
    s3: S3Store,
    devices: Devices,
    *,
    keep: bool,
    listing: Listing | None,
    sync_dir: Dir | None,
) -> EpochPickup:
    held = devices.epoch_keys(config)
    rid = devices.identity(config).remote_id if held else None
    out = EpochPickup(keys=devices.keyring(config))
    if rid is None:
        return out
    found = listing if listing is not None else list_remote(s3, config)
    me = config.device
    todo = _todo(found, held, devices.maker_keys(config), me)
    if not todo:
        return out
    state = read_state(sync_dir, rid, me, held) if sync_dir is not None else None
    reader = _Reader(s3, found, rid, dict(state.proof) if state is not None else {}, partial={e for e, _, _ in todo})
    every: dict[tuple[int, uuid.UUID], bytes] = {}
    for epoch in sorted({e for e, _, _ in todo}):
        proved: dict[uuid.UUID, bytes] = {}
        for _, maker, key in (t for t in todo if t[0] == epoch):
            obj = s3.get(key)
            got = _candidate(obj, rid, epoch, maker, me=me, keys=devices.identity(config).keys)
            if got is NO_STANZA:
                out.withheld.setdefault(epoch, maker)
                out.partial.add(epoch)
            elif got is None or not reader.proves(maker, epoch, obj, got, out.keys):
                out.pending += 1
                out.partial.add(epoch)
            else:
                proved[maker] = got
        if proved:
            _keep(config, devices, out, epoch, proved, collided=len(_makers(found, epoch)) > 1, keep=keep)
            every.update(((epoch, m), k) for m, k in proved.items())
    if out.taken and keep:
        _mark_tainted(config, devices, reader, found=found, out=out, proved=every)
    out.fetched = reader.fetched()
    if state is not None and sync_dir is not None and keep and reader.proved != state.proof:
        state.proof = reader.proved
        epoch, epoch_key = devices.current_epoch(config)
        write_state(sync_dir, state, rid, me, epoch=epoch, epoch_key=epoch_key)
    return out


def _take_wraps(
    config: RemoteConfig, s3: S3Store, devices: Devices, found: Listing, out: EpochPickup
) -> tuple[list[str], list[int]]:
    """Keep the keys of the epochs *out* found withheld that other devices wrapped for this one
    (``P/d/<wrapper>/wrap/<this device>/<epoch>-<maker>``), all or none, once each is proved
    (``_syncwrap``'s docstring: the wrapper enrolled and not revoked, the key its maker's by the
    maker's log and signed head, the wrapper's ``device.wrap`` entry naming it).  Returns the
    refusals (by device and reason) and the epochs taken."""
    me, ident = config.device, devices.identity(config)
    rid = ident.remote_id
    assert rid is not None  # take_up_epochs found keys held
    reader = _Reader(s3, found, rid, {}, partial=set(out.partial))
    ring = dict(out.keys)
    refusals: list[str] = []
    got: list[tuple[int, uuid.UUID, uuid.UUID, str, bytes]] = []  # epoch, maker, wrapper, digest, key
    for epoch in sorted(out.withheld):
        for maker in sorted((m for m, objects in found.keys.items() if epoch in objects), key=lambda d: d.hex):
            named = _pick_wrap(reader, found, ring, epoch, maker, me=me, keys=ident.keys, refusals=refusals)
            if named is not None:
                got.append(named)
                have = ring.get(epoch)
                ring[epoch] = named[4] if have is None else (*((have,) if isinstance(have, bytes) else have), named[4])
    # A wrap whose entry is sealed under an epoch only a later wrap gives: checked under them all.
    for epoch, maker, wrapper, digest, _ in got:
        read = reader.read(wrapper, ring)
        if read is None or not any(is_wrap(o.entry, me, epoch, maker, digest) for o in read.entries):
            refusals.append(f"{_refused(wrapper, epoch, maker)}: its log names no such wrap")
            return refusals, []  # all or none: nothing is kept
    held = devices.epoch_keys(config)
    for epoch, maker, _, _, key in got:
        if epoch not in held:
            devices.add_epoch_key(config, epoch, key)
            held[epoch] = key
        if len([m for m, objects in found.keys.items() if epoch in objects]) > 1:
            devices.add_maker_key(config, epoch, maker, key)
    return refusals, sorted({g[0] for g in got})


def _refused(wrapper: uuid.UUID, epoch: int, maker: uuid.UUID) -> str:
    return f"device {wrapper.hex}'s wrap of epoch {epoch} (made by {maker.hex}) for this device is refused"


def _pick_wrap(
    reader: _Reader,
    found: Listing,
    ring: _remotelog.Keyring,
    epoch: int,
    maker: uuid.UUID,
    *,
    me: uuid.UUID,
    keys: _remotekeys.DeviceKeys,
    refusals: list[str],
) -> tuple[int, uuid.UUID, uuid.UUID, str, bytes] | None:
    """Of the wraps of *maker*'s key of *epoch* for this device (by any writer), the first whose
    key is proved and whose writer's log, read under *ring* and it, names it; else the first
    proved (its entry may be sealed under an epoch a later wrap gives: checked after); None when
    none is.  A copy of a genuine wrap under another prefix so never hides the genuine one."""
    proved: list[tuple[int, uuid.UUID, uuid.UUID, str, bytes]] = []
    for wrapper in sorted((w for w, ns in found.wraps.items() if (me, epoch, maker) in ns), key=lambda d: d.hex):
        obj = reader.s3.get(found.wraps[wrapper][me, epoch, maker])
        key = _candidate(obj, reader.rid, epoch, maker, me=me, keys=keys)
        if not key:  # NO_STANZA or None: another recipient, epoch, maker or remote; damaged
            refusals.append(f"{_refused(wrapper, epoch, maker)}: it is not a wrap of that key for this device")
        elif wrapper == me or reader.enrolled_key(wrapper, ring) is None:
            refusals.append(f"{_refused(wrapper, epoch, maker)}: its writer is not an enrolled device, or was revoked")
        elif not reader.proves(maker, epoch, reader.s3.get(found.keys[maker][epoch]), key, ring):
            # Its maker's proof is not there (yet): never kept, tried again at the next pull.
            refusals.append(
                f"{_refused(wrapper, epoch, maker)}: its maker's log and signed head do not prove that key (yet)"
            )
        else:
            digest = hashlib.sha256(obj).hexdigest()
            have = ring.get(epoch)
            trial = {**ring, epoch: key if have is None else (*((have,) if isinstance(have, bytes) else have), key)}
            read = reader.read(wrapper, trial)
            if read is not None and any(is_wrap(o.entry, me, epoch, maker, digest) for o in read.entries):
                return epoch, maker, wrapper, digest, key
            proved.append((epoch, maker, wrapper, digest, key))
    return proved[0] if proved else None


def _mark_tainted(
    config: RemoteConfig,
    devices: Devices,
    reader: _Reader,
    *,
    found: Listing,
    out: EpochPickup,
    proved: dict[tuple[int, uuid.UUID], bytes],
) -> None:
    """A key of the newest epoch held that is wrapped for a revoked device (made by one that had
    not read the revocation yet: the race's other shape, a newer epoch made over one still
    pending) is kept by maker too, so that the next push settles it (:mod:`._syncrace`) before
    it seals anything under it."""
    newest = max(out.keys)
    reads = {dev: r.entries for dev in sorted(found.logs) if (r := reader.read(dev, out.keys)) is not None}
    try:
        cutoffs = revocation_cutoffs(reads)
        revoked = {d.bytes for d in cutoffs}
    except RemoteError:
        return  # a malformed revocation: the check that follows refuses it
    held = devices.epoch_keys(config)
    me = config.device
    mine = {me: held[newest]} if newest in held and newest in found.keys.get(me, {}) else {}
    for maker, key in {**mine, **{m: k for (e, m), k in proved.items() if e == newest}}.items():
        try:
            parsed = _remotekeys.parse_keys_object(reader.s3.get(found.keys[maker][newest]))
        except IntegrityError:
            continue
        wrapped = {s[:16] for t, s in parsed.stanzas if t == _remotekeys.STANZA_DEVICE}
        wrapped |= {d.bytes for d in wrapped_for(reads, cutoffs, newest, maker)}
        if revoked and (maker.bytes in revoked or wrapped & revoked):
            devices.add_maker_key(config, newest, maker, key)


def _todo(
    found: Listing, held: dict[int, bytes], by_maker: dict[int, dict[uuid.UUID, bytes]], me: uuid.UUID
) -> list[tuple[int, uuid.UUID, str]]:
    """The key objects of other devices to look at: of an epoch not held; and, of an epoch two
    or more devices made at once (its key objects, as listed, are by several makers), each
    maker's whose key is not held yet (docs/spec/remote-v1.md, "Two makers of one epoch").
    Never an epoch below the oldest held: this device retired it (``_syncrebase``), and another
    device's key object of it, not deleted yet, must not bring it back."""
    oldest = min(held, default=0)
    return sorted(
        (epoch, maker, key)
        for maker, objects in found.keys.items()
        if maker != me
        for epoch, key in objects.items()
        if epoch >= oldest
        and (epoch not in held or (len(_makers(found, epoch)) > 1 and maker not in by_maker.get(epoch, {})))
    )


def _makers(found: Listing, epoch: int) -> set[uuid.UUID]:
    """The devices whose prefix lists a key object of *epoch*."""
    return {maker for maker, objects in found.keys.items() if epoch in objects}


def _keep(
    config: RemoteConfig,
    devices: Devices,
    out: EpochPickup,
    epoch: int,
    proved: dict[uuid.UUID, bytes],
    *,
    collided: bool,
    keep: bool,
) -> None:
    """Keep the keys *proved* of *epoch*: the first (by maker id) as the epoch's key when none
    is held, and, for an epoch several devices made, each by its maker, so that every log's
    entries of it open under the key they were sealed under (one refused here, before: the
    keys of one epoch by two makers are both kept, each proved by its own maker)."""
    ring = out.keys.get(epoch)
    keys = [] if ring is None else [ring] if isinstance(ring, bytes) else list(ring)
    for maker, key in sorted(proved.items()):
        if ring is None and not keys and keep:
            devices.add_epoch_key(config, epoch, key)
        if collided and keep:
            devices.add_maker_key(config, epoch, maker, key)
        if not any(_crypto.constant_time_equal(key, k) for k in keys):
            keys.append(key)
    out.keys[epoch] = keys[0] if len(keys) == 1 else tuple(keys)
    if len(keys) > (0 if ring is None else 1 if isinstance(ring, bytes) else len(ring)):
        out.taken.append(epoch)  # a key not held before: of a new epoch, or another maker's


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

    def __init__(
        self, s3: S3Store, listing: Listing, rid: uuid.UUID, proved: dict[uuid.UUID, Proved], *, partial: set[int]
    ) -> None:
        self.s3, self.listing, self.rid, self.partial = s3, listing, rid, partial
        self._logs: dict[uuid.UUID, dict[int, bytes]] = {}
        #: What was verified of each log under keys held (the pull cursor's ``proof``).
        self.proved = {dev: p for dev, p in proved.items() if _whole(p[1])}

    def fetched(self) -> dict[uuid.UUID, dict[int, bytes]]:
        return dict(self._logs)

    def log(self, dev: uuid.UUID) -> dict[int, bytes]:
        if dev not in self._logs:
            after = self.proved[dev][0][0] if dev in self.proved else 0  # what follows the proved prefix
            self._logs[dev] = {seq: self.s3.get(k) for seq, k in self.listing.logs.get(dev, {}).items() if seq > after}
        return self._logs[dev]

    def _every(self, dev: uuid.UUID) -> dict[int, bytes]:
        """*dev*'s whole log, what :meth:`log` fetched reused."""
        got = self.log(dev)
        return {seq: got[seq] if seq in got else self.s3.get(k) for seq, k in self.listing.logs.get(dev, {}).items()}

    def read(
        self, dev: uuid.UUID, keys: _remotelog.Keyring, *, remember: bool = False, whole: bool = False
    ) -> _remotelog.LogRead | None:
        """*dev*'s log from its first entry under a key held (older epochs' keys may be gone),
        or from the end of its proved prefix (not with *whole*), up to the first it cannot open;
        None when it does not check out.  With *remember* (*keys* are all proved: never a
        candidate's), what was read extends the proved prefix."""
        proved = dev in self.proved and not whole
        objects = self.log(dev) if not whole else self._every(dev)
        start, before = self.proved[dev] if proved else ((0, _remotelog.ZERO_MAC), ())
        for seq in sorted(objects) if not proved else ():
            data = objects[seq]
            if len(data) >= _remotelog.ENTRY_HEADER.size:
                header = _remotelog.ENTRY_HEADER.unpack_from(data)
                if header[4] in keys:
                    start = (seq - 1, header[6]) if seq > 1 else start
                    break
        try:
            read = _remotelog.read_log(
                objects, keys, self.rid, dev, start=start, stop_unheld=True, partial=self.partial
            )
        except RemoteError:
            return None
        if remember and read.entries and not whole:
            self.proved[dev] = (read.end, before + tuple(k for o in read.entries if (k := _kept(o)) is not None))
        return dataclasses.replace(read, entries=before + read.entries)

    def enrolled_key(self, maker: uuid.UUID, keys: _remotelog.Keyring) -> bytes | None:
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

    def _named(self, maker: uuid.UUID, keys: _remotelog.Keyring) -> bytes | None:
        """The Ed25519 key the logs enrol *maker* with (b"": enrolled by a first entry that names
        none); None: not enrolled, revoked, or a malformed key."""
        got = {dev: self.read(dev, keys, remember=True) for dev in sorted(self.listing.logs)}
        reads = {dev: r.entries for dev, r in got.items() if r is not None}
        try:
            reads = {dev: tuple(_remotelog.facts(dev, entries)) for dev, entries in reads.items()}
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

    def proves(self, maker: uuid.UUID, epoch: int, obj: bytes, epoch_key: bytes, held: _remotelog.Keyring) -> bool:
        """The maker's log holds, under *epoch_key*, its ``epoch`` entry naming *obj*, and a
        head signed by its enrolled key covers it (the module's docstring says why that is a
        proof)."""
        public = self.enrolled_key(maker, held)
        if public is None:
            return False
        digest = hashlib.sha256(obj).hexdigest()
        read = self.read(maker, {**held, epoch: epoch_key})
        prefix = self.proved[maker][1] if maker in self.proved else None
        if (
            prefix is not None
            and (read is None or _epoch_entry(read, epoch, digest) is None)
            and not any(o.entry.get("kind") == "epoch" and o.epoch == epoch for o in prefix)
        ):
            # A prefix proved before in a cursor that did not keep epoch entries may hide this
            # one (another maker's key of an epoch held, taken up first): read the log whole.
            read = self.read(maker, {**held, epoch: epoch_key}, whole=True)
        at = None if read is None else _epoch_entry(read, epoch, digest)
        if read is None or at is None:
            return False
        # The MACs from that entry on, and the proved prefix's end (its last MAC, kept).
        macs = {o.seq: o.mac for o in read.entries if o.seq >= at}
        if maker in self.proved and self.proved[maker][0][0] >= at:
            macs.setdefault(*self.proved[maker][0])
        for seq in sorted((s for s in self.listing.heads.get(maker, {}) if s in macs), reverse=True):
            try:
                head = _remotelog.open_head(self.s3.get(self.listing.heads[maker][seq]), public, self.rid, maker)
            except RemoteError:
                continue
            if head.seq == seq and _crypto.constant_time_equal(head.mac, macs[seq]):
                return True
        return False


def _kept(o: _remotelog.Opened) -> _remotelog.Opened | None:
    """What a proof reads of *o* (:meth:`_Reader._named`; :meth:`_Reader.proves` of another
    maker's key of an epoch held), kept in the proved prefix; None: nothing.  A ``rebase`` is
    kept as the entries it carries (its kind, epoch and ``carried``, not its sessions): a log
    read from its rebase (older epochs retired) enrols its devices there only, and a prefix
    without it enrolled no one (a key proved against it stayed pending for good on a device
    that joined after a retirement)."""
    kind = o.entry.get("kind")
    if kind == "rebase":
        return dataclasses.replace(
            o, entry={"kind": kind, "epoch": o.entry.get("epoch"), "carried": o.entry.get("carried", [])}
        )
    return o if o.seq == 1 or kind in {"device.enroll", "device.revoke", "epoch"} else None


def _whole(kept: tuple[_remotelog.Opened, ...]) -> bool:
    """Whether a proved prefix starts where its log reads from: its entry 1 or a rebase.  A
    prefix kept before rebases were (one of a log read from its rebase, holding neither) is
    dropped, and the log read again."""
    return any(o.seq == 1 or o.entry.get("kind") == "rebase" for o in kept)


def _epoch_entry(read: _remotelog.LogRead, epoch: int, digest: str) -> int | None:
    """The seq of the ``epoch`` entry of *epoch* naming the key object of SHA-256 *digest*."""
    return next(
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
