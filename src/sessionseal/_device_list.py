"""``sessionseal device list``: the devices of a remote, and this device's pairing code (issue 26,
"Keys"; docs/sync.md, "Devices"; docs/spec/remote-v1.md, "Device record" and "Log entries").

What the bucket says is not taken on its word: a device record is only a claim (anyone who can
write the bucket can put one there), so a device is *enrolled* only when a change log this
device can verify says so: the first device's log opens with the `epoch` entry of reason
`first`, and later devices are named by a `device.enroll` entry (and leave by `device.revoke`)
in an enrolled device's log, checked with :func:`._remotelog.read_log` (chain, sequence,
epochs), and only when that enrolment counts (:mod:`._enrolrule`: a self-enrolment sealed
under an epoch before a revocation the revoker never saw does not).  A log that fails those
checks refuses the listing (``RemoteError``, exit 19): a bucket that drops, edits, reorders or
replays entries is reported, never shown as a state.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from . import _enrolrule, _remote, _remotekeys, _remotelog
from ._vault._auditing import audited_by
from ._vault._syncepochs import take_up_epochs
from ._vault._syncpull import revocation_cutoffs
from ._vault._syncrebase import rebased_at
from .errors import IntegrityError, RemoteError

if TYPE_CHECKING:
    from ._s3 import S3Store
    from ._vault import Vault

__all__ = ["DeviceEntry", "DeviceListing", "list_devices", "parse_record"]

_audited = audited_by(lambda auditor: auditor)
_RECORD_FORMAT: Final = "sessionseal-remote-device"
_SEQ: Final = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the remote: its id, its record's pairing code (None when the record is
    missing or malformed), its *status* (``enrolled``, ``revoked``, ``not-enrolled``: a record
    that no verified entry names, waiting to be paired; ``unverified``: this device cannot read
    the logs yet; ``invalid``: a record that is malformed, of another remote or whose keys differ
    from those its enrolment named), and whether it is this device."""

    device: uuid.UUID
    pairing_code: str | None
    status: str
    this_device: bool
    created_at: str | None = None
    enrolled_by: uuid.UUID | None = None
    revoked_by: uuid.UUID | None = None
    #: The epoch of its latest ``rebase`` entry read, or of its log's entry 1 (0: neither read;
    #: docs/spec/remote-v1.md, "Rebase and retirement").
    rebased: int = 0


@dataclass(frozen=True)
class DeviceListing:
    """``list_devices``' answer: the remote's name, this device and its pairing code, the devices."""

    remote: str
    device: uuid.UUID
    pairing_code: str | None  # None: the remote holds no device yet (this one becomes its first by pushing)
    devices: list[DeviceEntry] = field(default_factory=list)
    epochs_held: list[int] = field(default_factory=list)  # the remote's epochs whose keys this device holds


def list_devices(vault: Vault, remote: str | None = None) -> DeviceListing:
    """The devices of *remote* (the only one when None), as this device can vouch for them, and
    this device's pairing code (docs/spec/remote-v1.md, "Device record"); audited
    (``device.list``, counts only).

    :raises InvalidInput: no such remote, none, or several and *remote* is None.
    :raises RemoteError: the remote cannot be reached, or a device's log fails its checks.
    :raises MissingExtra: boto3 is not installed.
    """
    return _list(vault.parts.auditor, vault, remote)


@_audited("device.list")
def _list(auditor: Any, vault: Vault, remote: str | None) -> DeviceListing:
    from . import _s3

    config = vault.parts.sync.pick(remote)
    devices = vault.remotes.devices
    ident = devices.identity(config)  # made on first use: the code a new device shows to pair
    url = _remote.parse_url(config.url)
    store = _s3.open_store(url, endpoint=config.endpoint, profile=config.profile, region=config.region)
    records: dict[uuid.UUID, bytes] = {}
    logs: dict[uuid.UUID, dict[int, bytes]] = {}
    root = url.key("d") + "/"
    for key, _ in store.list(root):
        device_hex, _, rest = key[len(root) :].partition("/")
        try:
            device = uuid.UUID(hex=device_hex)
        except ValueError:
            continue  # not a device's prefix: nothing sessionseal writes
        if device.hex != device_hex:
            continue
        if rest == "device":
            records[device] = store.get(key)
        elif rest.startswith("log/") and _SEQ.fullmatch(rest[4:]):
            logs.setdefault(device, {})[int(rest[4:], 16)] = store.get(key)  # u64 as 16 hex digits
    # Another device's new epoch is taken up first, once proved (_vault/_syncepochs.py).
    pickup = take_up_epochs(config, store, devices)
    held = pickup.keys
    verified = ident.remote_id is not None and bool(held)
    enrolled: dict[uuid.UUID, tuple[uuid.UUID, bytes, bytes] | None] = {}
    revoked: dict[uuid.UUID, uuid.UUID] = {}
    rebased: dict[uuid.UUID, int] = {}
    if verified:
        assert ident.remote_id is not None
        reads = {
            d: _remotelog.read_log(
                o,
                held,
                ident.remote_id,
                d,
                start=_remotelog.read_start(o, held),
                stop_unheld=True,
                partial=pickup.partial,
            )
            for d, o in sorted(logs.items())
        }
        # What rebases carry counts as the entries it stands for (old epochs' may be unreadable).
        facts = {d: tuple(_remotelog.facts(d, r.entries)) for d, r in reads.items()}
        # A revoked device's entries after its revocation enrol and revoke no one.
        cut = revocation_cutoffs(facts)
        rebased = {d: rebased_at(r.entries)[0] for d, r in reads.items()}
        counted = {d: facts[d][: _upto(facts[d], cut.get(d))] for d in reads}
        # Only the logs of devices whose own enrolment counts enrol or revoke anyone (_enrolrule).
        ok = _enrolrule.standing(
            counted, lambda maker, n: _key_object(store, url.key("d", maker.hex) + f"/keys/{n:08x}")
        )
        for device, read in reads.items():
            if device in ok:
                _enrolments(device, counted[device], enrolled, revoked)
            if read.blocked in pickup.withheld:  # an epoch made without a key for this device
                revoked.setdefault(config.device, pickup.withheld[read.blocked])
    out = [
        replace(
            _entry(d, records.get(d), ident.remote_id, config.device, verified, enrolled, revoked),
            rebased=rebased.get(d, 0),
        )
        for d in sorted(set(records) | set(enrolled), key=lambda u: u.hex)
    ]
    # The code a new device shows: its fingerprint under the remote's id, which it learns from
    # the records in the bucket before it is enrolled (a bucket that lies about it only makes
    # the codes differ, and the pairing fails: the enrolled device computes it with the real id).
    rid = ident.remote_id or _claimed(records)
    code = ident.pairing_code(rid) if rid is not None else None
    if config.device not in {e.device for e in out}:  # not pushed yet: shown for pairing all the same
        out.insert(0, DeviceEntry(config.device, code, "unverified" if not verified else "not-enrolled", True))
    counts: dict[str, int] = {}
    for e in out:
        key = e.status.replace("-", "_")
        counts[key] = counts.get(key, 0) + 1
    auditor.record("device.list", detail={"devices": len(out), **counts})
    return DeviceListing(config.name, config.device, code, out, sorted(held) if verified else [])


def _key_object(store: S3Store, key: str) -> bytes | None:
    return store.get(key) if store.exists(key) else None


def _claimed(records: dict[uuid.UUID, bytes]) -> uuid.UUID | None:
    """The remote id the bucket's device records agree on, if they do."""
    ids = {r[0] for d, raw in records.items() if (r := _parse_record(raw, d, None)) is not None}
    return ids.pop() if len(ids) == 1 else None


def _upto(entries: tuple[_remotelog.Opened, ...], cutoff: int | None) -> int:
    """How many of *entries* count: all, or those up to a revoked device's cutoff."""
    return len(entries) if cutoff is None else sum(1 for o in entries if o.seq <= cutoff)


def _enrolments(
    device: uuid.UUID,
    entries: tuple[_remotelog.Opened, ...],
    enrolled: dict[uuid.UUID, tuple[uuid.UUID, bytes, bytes] | None],
    revoked: dict[uuid.UUID, uuid.UUID],
) -> None:
    """What *device*'s verified log says of enrolments: its own (the first device's log opens
    with the ``epoch`` entry of reason ``first``), and the devices it enrolled or revoked."""
    for opened in entries:
        entry = opened.entry
        kind = entry.get("kind")
        if opened.seq == 1 and kind == "epoch" and entry.get("reason") == "first" and entry.get("epoch") == 1:
            # The maker of epoch 1, enrolled by itself, with the keys it names (a log written
            # before the entry named them: as its record lists them).
            enrolled.setdefault(device, _first_keys(device, opened))
        elif kind == "device.enroll":
            try:
                who = uuid.UUID(hex=str(entry["device"]))
                keys = (
                    base64.b64decode(entry["x25519"], validate=True),
                    base64.b64decode(entry["ed25519"], validate=True),
                )
            except (KeyError, ValueError, binascii.Error):
                raise RemoteError(f"device {device.hex}'s entry {opened.seq} is a malformed enrolment") from None
            enrolled[who] = (device, *keys)
            revoked.pop(who, None)
        elif kind == "device.revoke":
            try:
                revoked[uuid.UUID(hex=str(entry["device"]))] = device
            except (KeyError, ValueError):
                raise RemoteError(f"device {device.hex}'s entry {opened.seq} is a malformed revocation") from None


def _first_keys(device: uuid.UUID, opened: _remotelog.Opened) -> tuple[uuid.UUID, bytes, bytes] | None:
    entry = opened.entry
    if "ed25519" not in entry:
        return None
    try:
        return (
            device,
            base64.b64decode(entry["x25519"], validate=True),
            base64.b64decode(entry["ed25519"], validate=True),
        )
    except (KeyError, ValueError, TypeError, binascii.Error):
        raise RemoteError(f"device {device.hex}'s entry {opened.seq} is a malformed enrolment") from None


def _entry(  # noqa: PLR0917 - one device's facts from the listing
    device: uuid.UUID,
    raw: bytes | None,
    remote_id: uuid.UUID | None,
    own: uuid.UUID,
    verified: bool,
    enrolled: dict[uuid.UUID, tuple[uuid.UUID, bytes, bytes] | None],
    revoked: dict[uuid.UUID, uuid.UUID],
) -> DeviceEntry:
    record = _parse_record(raw, device, remote_id) if raw is not None else None
    code = None
    created = None
    if record is not None:
        rid, x_pub, ed_pub, created = record
        code = _remotekeys.pairing_code(_remotekeys.fingerprint(rid, device, x_pub, ed_pub))
    this = device == own
    if raw is not None and record is None:
        return DeviceEntry(device, None, "invalid", this)
    if not verified:
        return DeviceEntry(device, code, "unverified", this, created)
    if device in revoked:
        return DeviceEntry(device, code, "revoked", this, created, revoked_by=revoked[device])
    if device in enrolled:
        named = enrolled[device]
        if named is not None and record is not None and (named[1], named[2]) != (record[1], record[2]):
            return DeviceEntry(device, code, "invalid", this, created)  # the bucket swapped its keys
        return DeviceEntry(device, code, "enrolled", this, created, enrolled_by=named[0] if named else device)
    return DeviceEntry(device, code, "not-enrolled", this, created)


def parse_record(
    raw: bytes, device: uuid.UUID, remote_id: uuid.UUID | None
) -> tuple[uuid.UUID, bytes, bytes, str] | None:
    """:func:`_parse_record`, for the enrolment (``_device_enroll``)."""
    return _parse_record(raw, device, remote_id)


def _parse_record(
    raw: bytes, device: uuid.UUID, remote_id: uuid.UUID | None
) -> tuple[uuid.UUID, bytes, bytes, str] | None:
    """A device record (docs/spec/remote-v1.md, "Device record"), or None when it is malformed,
    not in its one canonical encoding, of another device than its prefix or of another remote."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or _remotelog.canonical(doc) != raw:
            raise ValueError
        if doc.get("format") != _RECORD_FORMAT or doc.get("version") != 1 or doc.get("device") != device.hex:
            raise ValueError
        rid = uuid.UUID(hex=doc["remote"])
        x_pub = base64.b64decode(doc["x25519"], validate=True)
        ed_pub = base64.b64decode(doc["ed25519"], validate=True)
        if len(x_pub) != 32 or len(ed_pub) != 32 or not isinstance(doc.get("created_at"), str):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, IntegrityError):
        return None
    if remote_id is not None and rid != remote_id:
        return None
    return rid, x_pub, ed_pub, doc["created_at"]
