"""``sessionseal device enroll`` and ``device revoke`` (issue 26, "Keys"; docs/sync.md, "Devices";
docs/spec/remote-v1.md, "Enrolment objects" and "Log entries").

Enrolment is three steps on two devices:

1. the new device makes its keys, PUTs its device record under the remote id the bucket's
   records claim, and shows its pairing code (:func:`request`);
2. an enrolled device reads that record, recomputes the code from its bytes and compares it in
   constant time with the one the user read off the new device (a bucket that swapped the
   record's keys makes the codes differ: refused, nothing written); then it wraps the current
   epoch's key for the record's X25519 key in ``P/d/<enroller>/enroll/<device>`` and commits a
   ``device.enroll`` entry naming the device, its public keys and that object's hash, through
   the push's crash-safe outbox (:func:`accept`);
3. the new device finds its stanza, unwraps it, checks that the enroller's log, read under that
   key, holds the ``device.enroll`` entry naming its own public keys and that object, and only
   then keeps the key (:func:`finish`).

Revocation (:func:`revoke`) makes a new epoch whose key object wraps the new key for every
enrolled device but the revoked one, and commits its ``epoch`` (reason ``revoke``) and
``device.revoke`` entries under it: what is written from then on is sealed under a key the
revoked device never receives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import _crypto, _remote, _remotekeys, _remotelog
from ._device_list import list_devices, parse_record
from ._vault._auditing import audited_by
from ._vault._syncepochs import take_up_epochs
from ._vault._syncpull import list_remote
from .errors import IntegrityError, InvalidInput, RemoteError

if TYPE_CHECKING:
    from ._config import RemoteConfig
    from ._s3 import S3Store
    from ._vault import Vault
    from ._vault._devices import Devices

__all__ = ["EnrolStep", "accept", "finish", "normalize_code", "request", "revoke"]

_audited = audited_by(lambda auditor: auditor)
#: An epoch key object's header: "SSRK", version, remote, epoch, maker, stanza count.
_KEYS_HEADER: Final = struct.calcsize(">4sB16sI16sH")
_CODE_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


@dataclass(frozen=True)
class EnrolStep:
    """What a step did: the remote, this device, the other device (the one enrolled or revoked,
    or the enroller at ``finish``), the epoch, and this device's pairing code (``request``)."""

    remote: str
    device: uuid.UUID
    other: uuid.UUID | None
    epoch: int
    pairing_code: str | None = None
    enrolled: bool = False
    devices: int = 0  # stanzas in a revocation's new epoch


def normalize_code(code: str) -> str:
    """A pairing code as typed (any case, groups split by ``-`` or blanks) in its 16 characters.

    :raises InvalidInput: not 16 base32 characters (never echoed).
    """
    cleaned = "".join(c for c in code.upper() if c not in "- \t")
    if len(cleaned) != 16 or not set(cleaned) <= _CODE_CHARS:
        raise InvalidInput("a pairing code is 16 base32 characters (A-Z, 2-7), as 'device list' shows it")
    return cleaned


def _parse_device(device: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=device.replace("-", ""))
    except ValueError:
        raise InvalidInput("a device id is 32 hex digits, as 'device list' shows it") from None


def _store(config: RemoteConfig) -> S3Store:
    from . import _s3

    url = _remote.parse_url(config.url)
    return _s3.open_store(url, endpoint=config.endpoint, profile=config.profile, region=config.region)


def _root(config: RemoteConfig) -> str:
    return _remote.parse_url(config.url).key("d") + "/"


def _claimed_remote(store: S3Store, config: RemoteConfig) -> uuid.UUID | None:
    """The remote id the other devices' records agree on (None: no record, or they disagree)."""
    root, ids = _root(config), set()
    for key, _ in store.list(root):
        device_hex, _, rest = key[len(root) :].partition("/")
        if rest != "device" or device_hex == config.device.hex:
            continue
        try:
            device = uuid.UUID(hex=device_hex)
        except ValueError:
            continue
        parsed = parse_record(store.get(key), device, None)
        if parsed is not None:
            ids.add(parsed[0])
    return ids.pop() if len(ids) == 1 else None


def _take_up_first(config: RemoteConfig, store: S3Store, devices: Devices, *, refuse: bool) -> int:
    """Before ``--accept`` wraps this device's epoch keys for a new device, and before ``revoke``
    numbers its new epoch: take up every newer epoch another device made and proved (a delete
    or a revocation pushed, not pulled here yet), as a pull does.  Returns the number a new
    epoch takes: above every epoch held and every key object listed.

    With *refuse* (``--accept``), a newer epoch this device cannot take up refuses the step,
    nothing written: its proof not on the remote yet (the new device, given the keys held,
    would read nothing sealed under it), or no key of it for this device (revoked, or enrolled
    by a device that did not hold it).  A revocation is never refused so: whoever can write the
    bucket (the stolen device being revoked, with its credentials) could plant such an object to
    block it; it is numbered above it instead.  Two epochs made at the same moment, neither
    listing the other's, are settled by the next push ("Two makers of one epoch").

    :raises RemoteError: as above (exit 19); the remote cannot be reached; a log fails.
    """
    listing = list_remote(store, config)
    pickup = take_up_epochs(config, store, devices, listing=listing)
    newest = max(devices.epoch_keys(config))
    ahead = sorted((e, m) for m, objects in listing.keys.items() if m != config.device for e in objects if e > newest)
    if ahead and refuse:
        epoch, maker = ahead[0]
        if epoch in pickup.withheld:
            raise RemoteError(
                f"device {maker.hex} made epoch {epoch} without a key for this device (it was revoked, or "
                "enrolled by a device that did not hold that epoch); nothing was written"
            )
        raise RemoteError(
            f"device {maker.hex} made epoch {epoch}, which this device cannot take up yet (its proof is not on "
            "the remote yet): run 'sessionseal sync --pull' and try again; nothing was written"
        )
    return max([newest, *(e for e, _ in ahead)]) + 1


def request(vault: Vault, remote: str | None = None) -> EnrolStep:
    """Step 1, on the new device: its keys, its record on the remote, its pairing code.
    Audited (``device.enroll``, counts only).

    :raises InvalidInput: no such remote; the remote holds no device yet (push to be its first).
    :raises RemoteError: the remote cannot be reached; this device's record there is other bytes.
    """
    return _request(vault.parts.auditor, vault, remote)


@_audited("device.enroll")
def _request(auditor: Any, vault: Vault, remote: str | None) -> EnrolStep:
    config = vault.parts.sync.pick(remote)
    devices = vault.remotes.devices
    ident = devices.identity(config)
    held = devices.epoch_keys(config)
    if held and ident.remote_id is not None:  # enrolled already (or the remote's first device)
        auditor.record("device.enroll", detail={"requested": 0, "enrolled": 1})
        return EnrolStep(config.name, config.device, None, max(held), ident.pairing_code(), enrolled=True)
    store = _store(config)
    rid = ident.remote_id or _claimed_remote(store, config)
    if rid is None:
        raise InvalidInput(
            "the remote holds no enrolled device to pair with: 'sessionseal sync --push' makes this one its first"
        )
    record = ident.record(rid)
    name = _remote.device_prefix(_remote.parse_url(config.url), config.device) + "device"
    refused = "this device's record on the remote is not the one it made; nothing was written"
    if not store.exists(name):
        store.put(name, record, taken=refused)  # If-None-Match: a record that appeared since is compared
    elif not hmac.compare_digest(store.get(name), record):
        raise RemoteError(refused)
    auditor.record("device.enroll", detail={"requested": 1})
    return EnrolStep(config.name, config.device, None, 0, ident.pairing_code(rid))


def accept(vault: Vault, remote: str | None, device: str, code: str) -> EnrolStep:
    """Step 2, on an enrolled device: enrol *device* (its id) whose pairing code the user read
    off it as *code*.  Audited (``device.enroll``, counts only).

    :raises InvalidInput: a malformed id or code; no record of that device; the code does not
        match its record (nothing is written then); the device is this one or enrolled already.
    :raises RemoteError: this device is not enrolled itself; the remote cannot be reached.
    """
    return _accept(vault.parts.auditor, vault, remote, _parse_device(device), normalize_code(code))


@_audited("device.enroll")
def _accept(auditor: Any, vault: Vault, remote: str | None, new: uuid.UUID, code: str) -> EnrolStep:
    config = vault.parts.sync.pick(remote)
    devices = vault.remotes.devices
    ident = devices.identity(config)
    if ident.remote_id is None or not devices.epoch_keys(config):
        raise RemoteError("this device is not enrolled on the remote: push first, or enrol it from one that is")
    if new == config.device:
        raise InvalidInput("a device cannot enrol itself; run --accept on a device already enrolled")
    rid = ident.remote_id
    store = _store(config)
    url = _remote.parse_url(config.url)
    record_name = _remote.device_prefix(url, new) + "device"
    raw = store.get(record_name) if store.exists(record_name) else None
    parsed = parse_record(raw, new, rid) if raw is not None else None
    if parsed is None:
        raise InvalidInput(
            "the remote holds no valid record of that device for this remote: run 'sessionseal device enroll' "
            "on it first; nothing was written"
        )
    _, x_pub, ed_pub, _ = parsed
    expected = _remotekeys.pairing_code(_remotekeys.fingerprint(rid, new, x_pub, ed_pub))
    if not hmac.compare_digest(expected.encode(), code.encode()):
        raise InvalidInput(
            "the pairing code does not match that device's record on the remote (mistyped, or the record "
            "was replaced); nothing was written"
        )
    name = f"enroll/{new.hex}"
    if store.exists(_remote.device_prefix(url, config.device) + name):
        raise InvalidInput("this device has enrolled that device already; 'sessionseal device list' shows it")
    # Every epoch this device holds, oldest first: the new device reads the logs written before
    # it came (the key object of each is self-delimiting; docs/spec/remote-v1.md).  A newer epoch
    # another device made is taken up first: wrapped without it, the new device would read no
    # entry sealed under it.
    _take_up_first(config, store, devices, refuse=True)
    held = devices.epoch_keys(config)
    epoch = max(held)
    makers = devices.maker_keys(config)
    obj = b"".join(
        _remotekeys.keys_object(rid, e, m, [_remotekeys.wrap_for_device(k, rid, e, new, x_pub)])
        for e, k in sorted(held.items())
        # An epoch two devices made: each maker's key after it, naming that maker (the spec's
        # "Two makers of one epoch"), so the new device reads both makers' entries of it.
        for m, k in [(config.device, k), *_makers_of(makers.get(e, {}), config.device, k)]
    )
    entry = {
        "kind": "device.enroll",
        "device": new.hex,
        "x25519": base64.b64encode(x_pub).decode(),
        "ed25519": base64.b64encode(ed_pub).decode(),
        "keys": hashlib.sha256(obj).hexdigest(),
        # What this device applied of each other device's log: the new device's first floors.
        "witness": {d.hex: [seq, mac.hex()] for d, (seq, mac) in sorted(vault.parts.sync.witness(config).items())},
    }
    vault.parts.sync.commit_entries(config, [entry], [(name, obj)])
    auditor.record("device.enroll", detail={"accepted": 1, "epoch": epoch})
    return EnrolStep(config.name, config.device, new, epoch, enrolled=True)


def finish(vault: Vault, remote: str | None = None) -> EnrolStep:
    """Step 3, on the new device: find the stanza an enrolled device wrapped for it, unwrap it,
    check the enroller's log names this device's keys and that object, keep the key.  Audited
    (``device.enroll``, counts only).

    :raises InvalidInput: no enrolled device has accepted this one yet.
    :raises RemoteError: the enrolment does not check out (another key, another object, a log
        that fails its checks); nothing is kept then.
    """
    return _finish(vault.parts.auditor, vault, remote)


@_audited("device.enroll")
def _finish(auditor: Any, vault: Vault, remote: str | None) -> EnrolStep:
    config = vault.parts.sync.pick(remote)
    devices = vault.remotes.devices
    ident = devices.identity(config)
    store = _store(config)
    root = _root(config)
    suffix = f"/enroll/{config.device.hex}"
    offers = sorted(key for key, _ in store.list(root) if key.endswith(suffix))
    if not offers:
        raise InvalidInput(
            "no enrolled device has accepted this one yet: run the --accept command 'device enroll' printed "
            "on a device already enrolled"
        )
    rid = ident.remote_id or _claimed_remote(store, config)
    if rid is None:
        raise RemoteError("the remote's device records do not agree on its id; nothing was kept")
    failure = "no enrolment on the remote names this device's keys; nothing was kept"
    for key in offers:
        try:
            enroller = uuid.UUID(hex=key[len(root) :].partition("/")[0])
            offer = _check_offer(store, config, rid, enroller, keys=ident.keys, obj=store.get(key))
        except (IntegrityError, ValueError):
            continue
        except RemoteError as exc:
            failure = str(exc)
            continue
        if offer:
            found, makers = offer
            # Newest first: a kill between two leaves this device sealing under the current epoch.
            for epoch, epoch_key in sorted(found.items(), reverse=True):
                devices.add_epoch_key(config, epoch, epoch_key, remote_id=rid)
            for epoch, by_maker in sorted(makers.items()):
                for maker, epoch_key in sorted(by_maker.items()):
                    devices.add_maker_key(config, epoch, maker, epoch_key)
            auditor.record("device.enroll", detail={"finished": 1, "epoch": max(found), "epochs": len(found)})
            return EnrolStep(config.name, config.device, enroller, max(found), enrolled=True)
    raise RemoteError(failure)


def _makers_of(by_maker: dict[uuid.UUID, bytes], me: uuid.UUID, key: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """An epoch's keys by maker, for an enrolment: every other maker's, and this device's own
    (*key*, when no other maker's is it) when it made one of them too; none for an epoch one
    device made."""
    if not by_maker:
        return []
    mine = [] if any(_crypto.constant_time_equal(k, key) for k in by_maker.values()) else [(me, key)]
    return sorted([*by_maker.items(), *mine], key=lambda item: item[0].bytes)


def _split(obj: bytes) -> list[_remotekeys.EpochKeys]:
    """An enrolment object's epoch key objects, each of type-1 stanzas only.

    :raises IntegrityError: malformed, or a stanza of another type.
    """
    out, at = [], 0
    while at < len(obj):
        if len(obj) - at < _KEYS_HEADER:
            raise IntegrityError("a remote's enrolment object is malformed")
        count = int.from_bytes(obj[at + _KEYS_HEADER - 2 : at + _KEYS_HEADER], "big")
        end = at + _KEYS_HEADER + count * (1 + _remotekeys.DEVICE_STANZA)
        out.append(_remotekeys.parse_keys_object(obj[at:end]))
        at = end
    return out


def _check_offer(
    store: S3Store,
    config: RemoteConfig,
    rid: uuid.UUID,
    enroller: uuid.UUID,
    *,
    keys: _remotekeys.DeviceKeys,
    obj: bytes,
) -> tuple[dict[int, bytes], dict[int, dict[uuid.UUID, bytes]]] | None:
    """The epoch keys *obj* (``P/d/<enroller>/enroll/<this device>``) holds for this device, and
    those of epochs two devices made by maker, once the enroller's log, read under them, holds
    the ``device.enroll`` entry naming this device's public keys and *obj*'s hash; None when it
    does not."""
    found: dict[int, bytes] = {}
    makers: dict[int, dict[uuid.UUID, bytes]] = {}
    for parsed in _split(obj):
        stanza = parsed.for_device(config.device)
        if parsed.remote != rid or stanza is None:
            return None
        if parsed.epoch not in found and parsed.maker == enroller:
            found[parsed.epoch] = _remotekeys.unwrap_device(stanza, rid, parsed.epoch, config.device, keys)
        elif parsed.epoch in found and parsed.maker not in makers.setdefault(parsed.epoch, {}):
            got = _remotekeys.unwrap_device(stanza, rid, parsed.epoch, config.device, keys)
            makers[parsed.epoch][parsed.maker] = got
        else:
            return None
    if not found:
        return None
    prefix = _remote.device_prefix(_remote.parse_url(config.url), enroller) + "log/"
    objects = {int(k[len(prefix) :], 16): store.get(k) for k, _ in store.list(prefix) if len(k) == len(prefix) + 16}
    # The log from its first entry under an epoch given (an enroller may itself hold none of the
    # epochs before it came): the chain from there on is checked as any reader checks it.
    start = (0, _remotelog.ZERO_MAC)
    for seq in sorted(objects):
        data = objects[seq]
        header = _remotelog.ENTRY_HEADER.unpack_from(data) if len(data) >= _remotelog.ENTRY_HEADER.size else None
        if header is not None and header[4] in found:
            start = (seq - 1, header[6]) if seq > 1 else start
            break
    # Up to its first entry under an epoch made after the enrolment (a revocation meanwhile).
    ring: dict[int, bytes | tuple[bytes, ...]] = dict(found)
    for e, by_maker in makers.items():
        ring[e] = (found[e], *(k for _, k in sorted(by_maker.items()) if not _crypto.constant_time_equal(k, found[e])))
    read = _remotelog.read_log(objects, ring, rid, enroller, start=start, stop_unheld=True)
    want = {
        "device": config.device.hex,
        "x25519": base64.b64encode(keys.x25519_public).decode(),
        "ed25519": base64.b64encode(keys.ed25519_public).decode(),
        "keys": hashlib.sha256(obj).hexdigest(),
    }
    for opened in read.entries:
        entry = opened.entry
        if entry.get("kind") == "device.enroll" and all(entry.get(k) == v for k, v in want.items()):
            return found, makers
    return None


def revoke(vault: Vault, remote: str | None, device: str) -> EnrolStep:
    """Revoke *device*: a new epoch, its key wrapped for every enrolled device but that one,
    and the ``epoch`` (reason ``revoke``) and ``device.revoke`` entries sealed under it; later
    pushes seal under the new epoch.  Audited (``device.revoke``, counts only).

    :raises InvalidInput: a malformed id; this device; a device that is not enrolled.
    :raises RemoteError: this device is not enrolled; the remote cannot be reached; a log fails.
    """
    return _revoke(vault.parts.auditor, vault, remote, _parse_device(device))


@_audited("device.revoke")
def _revoke(auditor: Any, vault: Vault, remote: str | None, gone: uuid.UUID) -> EnrolStep:
    config = vault.parts.sync.pick(remote)
    devices = vault.remotes.devices
    ident = devices.identity(config)
    held = devices.epoch_keys(config)
    if ident.remote_id is None or not held:
        raise RemoteError("this device is not enrolled on the remote: push first, or enrol it from one that is")
    if gone == config.device:
        raise InvalidInput("a device cannot revoke itself; revoke it from another enrolled device")
    rid = ident.remote_id
    store = _store(config)
    # Numbered above every epoch on the remote: one another device made meanwhile is taken up
    # first, never raced under a second key of its number.
    epoch = _take_up_first(config, store, devices, refuse=False)
    listing = list_devices(vault, config.name)
    status = {e.device: e.status for e in listing.devices}
    if status.get(gone) != "enrolled":
        raise InvalidInput("that device is not enrolled on the remote; 'sessionseal device list' shows them")
    url = _remote.parse_url(config.url)
    name = f"keys/{epoch:08x}"
    if store.exists(_remote.device_prefix(url, config.device) + name):
        raise RemoteError(f"this device's key object of epoch {epoch} is on the remote already; nothing was written")
    seen = vault.parts.sync.witness(config).get(gone, (0, bytes(32)))
    new_key = _crypto.new_key()
    stanzas = []
    for other in sorted((d for d, s in status.items() if s == "enrolled" and d != gone), key=lambda u: u.hex):
        parsed = parse_record(store.get(_remote.device_prefix(url, other) + "device"), other, rid)
        if parsed is None:
            raise RemoteError(f"device {other.hex}'s record on the remote is malformed; nothing was written")
        stanzas.append(_remotekeys.wrap_for_device(new_key, rid, epoch, other, parsed[1]))
    obj = _remotekeys.keys_object(rid, epoch, config.device, stanzas)
    entries = [
        {"kind": "epoch", "epoch": epoch, "keys": hashlib.sha256(obj).hexdigest(), "reason": "revoke"},
        # What this device applied of the revoked one: readers refuse its entries after it,
        # judged by this, never by the revoked device's own clock (docs/spec/remote-v1.md).
        {"kind": "device.revoke", "device": gone.hex, "epoch": epoch, "witness": [seen[0], seen[1].hex()]},
    ]
    vault.parts.sync.commit_entries(config, entries, [(name, obj)], new_epoch=(epoch, new_key))
    auditor.record("device.revoke", detail={"revoked": 1, "epoch": epoch, "devices": len(stanzas)})
    return EnrolStep(config.name, config.device, gone, epoch, devices=len(stanzas))
