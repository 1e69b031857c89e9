"""``sessionseal sync --pull``, its first part: read every device's log on a remote and check it
(docs/sync.md, "Pull"; docs/design.md, "Detecting a log cut, edited, reordered or rolled
back").  :mod:`._syncapply` applies what it read.

For each device prefix (``d/<device>/``) with a device record: the record is of this remote
and names the prefix's device; its newest head is signed by the record's Ed25519 key; its log
reads as one chain from entry 1 (:func:`.._remotelog.read_log`) up to its first entry under an
epoch this device does not hold, with its own head's entry as the floor; then, once the
revocations are known (:func:`revocation_cutoffs`: a revoked device's entries after what its
revoker had applied of it are not applied), it is checked again against the highest entry the
other devices' heads witness, heads of revoked devices signed after their cutoff excepted.  A
failing last entry is "not written yet" (an upload in flight).  What this device applied itself
is the Applier's floor (:mod:`._syncapply`).

A device record is trusted as listed until enrolment entries exist (docs/sync.md, "What is
coming", step 4): a bucket that plants a whole device of its own is not detected here.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import _remote, _remotelog
from ..errors import IntegrityError, RemoteError
from ._syncfetch import get_all

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store
    from ._devices import Devices

__all__ = ["DeviceLog", "Listing", "PullCheck", "check_logs", "list_remote", "record_key", "revocation_cutoffs"]

_DEVICE: Final = re.compile(r"[0-9a-f]{32}")
_SEQ: Final = re.compile(r"[0-9a-f]{16}")
_EPOCH: Final = re.compile(r"[0-9a-f]{8}")
#: A wrap's name under ``wrap/``: its recipient, epoch and maker (``_syncwrap``).
_WRAP: Final = re.compile(r"([0-9a-f]{32})/([0-9a-f]{8})-([0-9a-f]{32})")
ZERO_HEX: Final = "00" * 32


@dataclass(frozen=True)
class DeviceLog:
    """One device's log as checked: counts only."""

    device: uuid.UUID
    mine: bool
    entries: int
    seq: int
    head: int  # the newest head's seq (0: none)
    pending: bool  # a failing last entry, left as not yet written
    kinds: dict[str, int]
    blocked: int = 0  # the epoch (not held) whose first entry ended the read; 0: none
    rebased: int = 0  # the epoch of its latest ``rebase`` entry read (0: none; ``_syncrebase``)


@dataclass
class PullCheck:
    """What ``sync --pull`` found; nothing was applied."""

    remote: str
    devices: list[DeviceLog] = field(default_factory=list)
    #: Each device's entries as opened (for the applying pull, :mod:`._syncapply`).
    logs: dict[uuid.UUID, tuple[_remotelog.Opened, ...]] = field(default_factory=dict, repr=False)
    #: A log stopped at an epoch made without a key for this device: (epoch, maker).
    revoked: tuple[int, uuid.UUID] | None = None
    #: Revoked devices: the last entry of each a pull may apply (its revoker's witness).
    cutoffs: dict[uuid.UUID, int] = field(default_factory=dict)
    taken: int = 0  # epochs taken up by this pull (``_syncepochs``)
    epochs_pending: int = 0  # key objects for this device whose proof is not there yet
    #: Logs read from a ``rebase`` (this device no longer holds the key of their entry 1): the
    #: rebase's seq, by device (``_syncrebase``: its sessions are applied as puts).
    rebased_from: dict[uuid.UUID, int] = field(default_factory=dict)
    #: The first entry of a log this device can open, when what comes before is sealed under
    #: epochs it retired (``_syncrebase``): what it applied there can no longer be compared.
    readable_from: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Each device's newest verified head's witness vector (``_syncrebase``'s retirement).
    witnesses: dict[uuid.UUID, dict[uuid.UUID, tuple[int, bytes]]] = field(default_factory=dict, repr=False)
    #: Devices with a log whose own enrolment does not count (``_enrolrule``: a revoked
    #: device's forged self-enrolment): a pull applies none of their entries.
    uncounted: frozenset[uuid.UUID] = frozenset()
    #: Each device's log entries as fetched, by seq (a name always holds the same bytes): for a
    #: later read of the same log in the same push not to fetch them again (``_synctomb``).
    fetched: dict[uuid.UUID, dict[int, bytes]] = field(default_factory=dict, repr=False)
    wraps_taken: int = 0  # keys kept from other devices' wraps (``_syncwrap``)
    #: Wraps for this device refused, by device and reason (``EpochPickup.wrap_refusals``).
    wrap_refusals: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "devices": len(self.devices),
            "entries": sum(d.entries for d in self.devices),
            "pending": sum(d.pending for d in self.devices),
            "blocked": sum(bool(d.blocked) for d in self.devices),
            "epochs_taken": self.taken,
            "epochs_pending": self.epochs_pending,
            "wraps_taken": self.wraps_taken,
            "wraps_refused": len(self.wrap_refusals),
        }


def _bad(device: uuid.UUID, what: str) -> RemoteError:
    return RemoteError(f"device {device.hex}'s {what}")


def record_key(data: bytes, device: uuid.UUID, remote: uuid.UUID) -> bytes:
    """The Ed25519 public key of a device record of *device* on *remote*.

    :raises RemoteError: malformed, or of another remote or device.
    """
    try:
        doc = json.loads(data)
        ok = (
            doc.get("format") == "sessionseal-remote-device"
            and doc.get("version") == 1
            and doc.get("device") == device.hex
            and doc.get("remote") == remote.hex
        )
        key = base64.b64decode(doc["ed25519"], validate=True) if ok else b""
    except (ValueError, KeyError, TypeError, AttributeError):
        key = b""
    if len(key) != 32:
        raise _bad(device, "record is malformed, or of another remote or device")
    return key


@dataclass
class Listing:
    """What the remote lists under ``P/d/``, by device: its record, its log entries, its heads,
    its epoch key objects (full keys, by seq or epoch) and its wraps (``_syncwrap``: by the
    recipient, epoch and maker its name gives)."""

    records: dict[uuid.UUID, str] = field(default_factory=dict)
    logs: dict[uuid.UUID, dict[int, str]] = field(default_factory=dict)
    heads: dict[uuid.UUID, dict[int, str]] = field(default_factory=dict)
    keys: dict[uuid.UUID, dict[int, str]] = field(default_factory=dict)
    wraps: dict[uuid.UUID, dict[tuple[uuid.UUID, int, uuid.UUID], str]] = field(default_factory=dict)


def list_remote(s3: S3Store, config: RemoteConfig) -> Listing:
    """One LIST of ``P/d/``, sorted into :class:`Listing` (names sessionseal does not write are
    left out)."""
    root = _remote.parse_url(config.url).key("d") + "/"
    out = Listing()
    for key, _ in s3.list(root):
        name, _, rest = key[len(root) :].partition("/")
        if not _DEVICE.fullmatch(name):
            continue
        dev = uuid.UUID(hex=name)
        kind, _, tail = rest.partition("/")
        if rest == "device":
            out.records[dev] = key
        elif kind in {"log", "head"} and _SEQ.fullmatch(tail):
            (out.logs if kind == "log" else out.heads).setdefault(dev, {})[int(tail, 16)] = key
        elif kind == "keys" and _EPOCH.fullmatch(tail):
            out.keys.setdefault(dev, {})[int(tail, 16)] = key
        elif kind == "wrap" and (m := _WRAP.fullmatch(tail)):
            to, epoch, maker = uuid.UUID(hex=m[1]), int(m[2], 16), uuid.UUID(hex=m[3])
            out.wraps.setdefault(dev, {})[to, epoch, maker] = key
    return out


def _floors(heads: dict[uuid.UUID, _remotelog.Head]) -> dict[uuid.UUID, tuple[int, bytes]]:
    """Each device's floor: the highest entry its own head or another device's witness names."""
    floors = {dev: (h.seq, h.mac) for dev, h in heads.items()}
    for h in heads.values():
        for dev, (seq, mac) in h.witness.items():
            if seq > floors.get(dev, (0, b""))[0]:
                floors[dev] = (seq, mac)
    return floors


def check_logs(
    config: RemoteConfig,
    s3: S3Store,
    devices: Devices,
    *,
    keys: _remotelog.Keyring | None = None,
    listing: Listing | None = None,
    withheld: dict[int, uuid.UUID] | None = None,
    fetched: Mapping[uuid.UUID, Mapping[int, bytes]] | None = None,
    partial: Collection[int] = (),
) -> PullCheck:
    """Read and check every device's log on *config*'s remote (see the module's docstring).

    :param keys: the epoch keys to read under (default: those this device holds); a log is read
        up to its first entry under an epoch not among them (``DeviceLog.blocked``).
    :param withheld: newer epochs whose key objects hold no stanza for this device, by epoch
        (``_syncepochs.take_up_epochs``): a log stopped at one of them sets ``PullCheck.revoked``.
    :param fetched: log entries already fetched under *listing*'s names, by device and seq.
    :param partial: epochs of which a key of another maker is not held (``EpochPickup.partial``).
    :raises RemoteError: this device holds no key of the remote; a record, head or log that
        fails its check (named by device, never by anything it holds).
    """
    held = devices.keyring(config) if keys is None else keys
    rid = devices.identity(config).remote_id if held else None
    if rid is None:
        raise RemoteError("this device holds no key of the remote yet: push first, or enrol it")
    partial = frozenset(partial)
    listed = listing if listing is not None else list_remote(s3, config)
    recorded = sorted(listed.records)  # devices without a record have no log yet
    heads = _heads(s3, listed, recorded, rid)
    own = {dev: (h.seq, h.mac) for dev, h in heads.items()}
    check = PullCheck(config.name)
    raw: dict[uuid.UUID, dict[int, bytes]] = {}
    for dev in recorded:
        had = fetched.get(dev, {}) if fetched is not None else {}
        names = listed.logs.get(dev, {})
        got = get_all(s3, [name for seq, name in names.items() if seq not in had])  # in parallel
        raw[dev] = {seq: had[seq] if seq in had else got[name] for seq, name in names.items()}
        read = _read(raw[dev], held, rid, dev, own.get(dev), partial=partial)
        read = _from_rebase(check, dev, raw[dev], held, read)
        kinds: dict[str, int] = {}
        for opened in read.entries:
            kinds[opened.entry["kind"]] = kinds.get(opened.entry["kind"], 0) + 1
        head = heads[dev].seq if dev in heads else 0
        check.logs[dev] = read.entries
        check.devices.append(
            DeviceLog(
                dev,
                dev == config.device,
                len(read.entries),
                read.end[0],
                head,
                read.pending,
                kinds,
                read.blocked,
                max((o.epoch for o in read.entries if o.entry.get("kind") == "rebase"), default=0),
            )
        )
        if read.blocked and withheld and read.blocked in withheld and check.revoked is None:
            check.revoked = (read.blocked, withheld[read.blocked])
    check.fetched = raw
    check.cutoffs = revocation_cutoffs({dev: _remotelog.facts(dev, e) for dev, e in check.logs.items()})
    check.witnesses = {dev: h.witness for dev, h in heads.items()}
    # The witnesses, from heads signed before any revocation of their signer took effect: a
    # revoked device cannot make the others' logs look cut by witnessing entries never written.
    trusted = {dev: h for dev, h in heads.items() if dev not in check.cutoffs or h.seq <= check.cutoffs[dev]}
    for dev, floor in sorted(_floors(trusted).items()):
        if floor[0] <= own.get(dev, (0, b""))[0]:
            continue  # the log was read against its own head, at least as high
        if dev not in raw:  # witnessed, then removed whole
            raise _bad(
                dev, f"change log is gone from the remote, below entry {floor[0]} a head names: cut or rolled back"
            )
        _read(raw[dev], held, rid, dev, floor, partial=partial)
    return check


def _heads(s3: S3Store, listed: Listing, recorded: list[uuid.UUID], rid: uuid.UUID) -> dict[uuid.UUID, _remotelog.Head]:
    """Each recorded device's newest head, its signature checked against its record's key.

    :raises RemoteError: a record or head that does not check out, or a head not at its place.
    """
    heads: dict[uuid.UUID, _remotelog.Head] = {}
    for dev in recorded:
        public = record_key(s3.get(listed.records[dev]), dev, rid)
        if listed.heads.get(dev):
            newest = max(listed.heads[dev])
            heads[dev] = _remotelog.open_head(s3.get(listed.heads[dev][newest]), public, rid, dev)
            if heads[dev].seq != newest:
                raise _bad(dev, "head is not at its place")
    return heads


def _from_rebase(
    check: PullCheck, dev: uuid.UUID, objects: dict[int, bytes], held: _remotelog.Keyring, read: _remotelog.LogRead
) -> _remotelog.LogRead:
    """*read* as applied: a log read from the middle (this device retired the epochs of what
    comes before) from its first ``rebase`` on, nothing before it being this reader's to apply;
    noted in *check* (``rebased_from``, ``readable_from``)."""
    start = _remotelog.read_start(objects, held)[0]
    if start or (read.blocked and held and read.blocked < min(held)):
        check.readable_from[dev] = start + 1 if start else max(objects) + 1
    if not start:
        return read
    at = next((i for i, o in enumerate(read.entries) if o.entry.get("kind") == "rebase"), len(read.entries))
    read = dataclasses.replace(read, entries=read.entries[at:])
    if read.entries:
        check.rebased_from[dev] = read.entries[0].seq
    return read


def _read(
    objects: dict[int, bytes],
    held: _remotelog.Keyring,
    rid: uuid.UUID,
    dev: uuid.UUID,
    floor: tuple[int, bytes] | None,
    *,
    partial: frozenset[int],
) -> _remotelog.LogRead:
    try:
        start = _remotelog.read_start(objects, held)
        return _remotelog.read_log(objects, held, rid, dev, start=start, floor=floor, stop_unheld=True, partial=partial)
    except IntegrityError:
        raise _bad(dev, "change log does not open (modified or misplaced)") from None


def _revocations(logs: Mapping[uuid.UUID, Sequence[_remotelog.Opened]]) -> list[tuple[uuid.UUID, int, uuid.UUID, int]]:
    """Every ``device.revoke`` entry read: (its writer, its seq, the device revoked, the last
    entry of that device's log its writer had applied: the entry's ``witness``, 0 without one).

    :raises RemoteError: an entry out of shape, or not sealed under the epoch it says it made.
    """
    found = []
    for dev, entries in sorted(logs.items()):
        for o in entries:
            e = o.entry
            if e.get("kind") != "device.revoke":
                continue
            try:
                gone = uuid.UUID(hex=str(e["device"]))
                witness = e.get("witness", [0, ZERO_HEX])  # written before it carried one: nothing more
                seq = int(witness[0])
                if o.epoch != e["epoch"] or seq < 0 or len(bytes.fromhex(str(witness[1]))) != 32:
                    raise ValueError
            except (KeyError, ValueError, TypeError, IndexError):
                raise _bad(dev, f"entry {o.seq} is a malformed revocation") from None
            found.append((dev, o.seq, gone, seq))
    return found


def revocation_cutoffs(logs: Mapping[uuid.UUID, Sequence[_remotelog.Opened]]) -> dict[uuid.UUID, int]:
    """Each revoked device's last entry a pull may apply: what its revoker had applied of it when
    it revoked it (never judged by the revoked device's own clock, which it controls).  A
    revocation written by a device beyond its own cutoff does not count (a revoked device cannot
    revoke the others: the epoch it would make is refused at pickup too, _syncepochs)."""
    every = _revocations(logs)
    first: dict[uuid.UUID, int] = {}
    for _, _, gone, seq in every:
        first[gone] = min(seq, first.get(gone, seq))
    cutoffs: dict[uuid.UUID, int] = {}
    for writer, at, gone, seq in every:
        if writer not in first or at <= first[writer]:
            cutoffs[gone] = min(seq, cutoffs.get(gone, seq))
    return cutoffs
