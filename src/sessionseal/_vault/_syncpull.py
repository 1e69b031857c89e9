"""``sessionseal sync --pull``, its first part: read every device's log on a remote and check it
(docs/sync.md, "Pull"; docs/design.md, "Detecting a log cut, edited, reordered or rolled
back").  :mod:`._syncapply` applies what it read.

For each device prefix (``d/<device>/``) with a device record: the record is of this remote
and names the prefix's device; its newest head is signed by the record's Ed25519 key; its log
reads as one chain from entry 1 (:func:`.._remotelog.read_log`) with, as the floor, the highest
of the entries its own head and the other devices' heads name; and the entry at the head's
``seq`` has the head's MAC.  A failing last entry is "not written yet" (an upload in flight).

A device record is trusted as listed until enrolment entries exist (docs/sync.md, "What is
coming", step 4): a bucket that plants a whole device of its own is not detected here.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import _remote, _remotelog
from ..errors import IntegrityError, RemoteError
from ._syncfetch import get_all

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store
    from ._devices import Devices

__all__ = ["DeviceLog", "PullCheck", "check_logs"]

_DEVICE: Final = re.compile(r"[0-9a-f]{32}")
_SEQ: Final = re.compile(r"[0-9a-f]{16}")


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


@dataclass
class PullCheck:
    """What ``sync --pull`` found; nothing was applied."""

    remote: str
    devices: list[DeviceLog] = field(default_factory=list)
    #: Each device's entries as opened (for the applying pull, :mod:`._syncapply`).
    logs: dict[uuid.UUID, tuple[_remotelog.Opened, ...]] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, Any]:
        return {
            "devices": len(self.devices),
            "entries": sum(d.entries for d in self.devices),
            "pending": sum(d.pending for d in self.devices),
        }


def _bad(device: uuid.UUID, what: str) -> RemoteError:
    return RemoteError(f"device {device.hex}'s {what}")


def _record(data: bytes, device: uuid.UUID, remote: uuid.UUID) -> bytes:
    """The Ed25519 public key of a device record of *device* on *remote*."""
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


def _list(s3: S3Store, top: str) -> dict[uuid.UUID, dict[str, list[str]]]:
    """The device prefixes under *top*: for each, its record (if any), log and head names."""
    listed: dict[uuid.UUID, dict[str, list[str]]] = {}
    for key, _ in s3.list(top):
        name, _, rest = key[len(top) :].partition("/")
        kind, _, seq = rest.partition("/")
        if not _DEVICE.fullmatch(name):
            continue
        if rest == "device" or (kind in {"log", "head"} and _SEQ.fullmatch(seq)):
            found = listed.setdefault(uuid.UUID(hex=name), {"log": [], "head": [], "device": []})
            found["device" if rest == "device" else kind].append(seq)
    return listed


def _floors(heads: dict[uuid.UUID, _remotelog.Head]) -> dict[uuid.UUID, tuple[int, bytes]]:
    """Each device's floor: the highest entry its own head or another device's witness names."""
    floors = {dev: (h.seq, h.mac) for dev, h in heads.items()}
    for h in heads.values():
        for dev, (seq, mac) in h.witness.items():
            if seq > floors.get(dev, (0, b""))[0]:
                floors[dev] = (seq, mac)
    return floors


def check_logs(config: RemoteConfig, s3: S3Store, devices: Devices) -> PullCheck:
    """Read and check every device's log on *config*'s remote (see the module's docstring).

    :raises RemoteError: this device holds no key of the remote; a record, head or log that
        fails its check (named by device, never by anything it holds).
    """
    held = devices.epoch_keys(config)
    rid = devices.identity(config).remote_id if held else None
    if rid is None:
        raise RemoteError("this device holds no key of the remote yet: push first, or enrol it")
    url = _remote.parse_url(config.url)
    listed = _list(s3, url.key("d") + "/")
    heads: dict[uuid.UUID, _remotelog.Head] = {}
    recorded = [dev for dev, names in sorted(listed.items()) if names["device"]]  # others: no log yet
    for dev in recorded:
        prefix = _remote.device_prefix(url, dev)
        public = _record(s3.get(prefix + "device"), dev, rid)
        if listed[dev]["head"]:
            newest = max(listed[dev]["head"])
            heads[dev] = _remotelog.open_head(s3.get(prefix + "head/" + newest), public, rid, dev)
            if heads[dev].seq != int(newest, 16):
                raise _bad(dev, "head is not at its place")
    floors = _floors(heads)
    check = PullCheck(config.name)
    for dev in recorded:
        prefix = _remote.device_prefix(url, dev)
        got = get_all(s3, [prefix + "log/" + n for n in listed[dev]["log"]])  # in parallel
        objects = {int(n, 16): got[prefix + "log/" + n] for n in listed[dev]["log"]}
        try:
            read = _remotelog.read_log(objects, held, rid, dev, floor=floors.get(dev))
        except IntegrityError:
            raise _bad(dev, "change log does not open (modified or misplaced)") from None
        kinds: dict[str, int] = {}
        for opened in read.entries:
            kinds[opened.entry["kind"]] = kinds.get(opened.entry["kind"], 0) + 1
        head = heads[dev].seq if dev in heads else 0
        check.logs[dev] = read.entries
        check.devices.append(
            DeviceLog(dev, dev == config.device, len(read.entries), read.end[0], head, read.pending, kinds)
        )
    return check
