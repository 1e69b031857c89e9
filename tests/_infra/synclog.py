"""Reading what a device pushed, straight from the S3 server (rclone's files, moto's API), as another device would:
its device record, epoch key object, log (checked by :func:`sessionseal._remotelog.read_log`),
signed head and content objects (docs/spec/remote-v1.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sessionseal import _compress, _remotekeys, _remotelog
from tests._infra.s3server import S3Server

__all__ = ["Pushed", "read_pushed", "server_files"]


def server_files(server: S3Server) -> dict[str, int]:
    """Every object on the server: key -> size (:meth:`S3Server.objects`)."""
    return server.objects()


@dataclass
class Pushed:
    """One device's prefix, read and checked."""

    remote: uuid.UUID
    device: uuid.UUID
    epoch_key: bytes
    entries: list[dict[str, Any]]
    head: _remotelog.Head
    server: S3Server
    base: str  # the device's prefix: P/d/<device>/

    def object(self, name: str) -> bytes:
        """A content object's payload, its hash checked against its name before it is opened."""
        data = self.server.read(self.base + "o/" + name)
        frame = _remotelog.open_object(name, data, {1: self.epoch_key}, self.remote, self.device)
        return _compress.decompress(bytes([1]) + frame)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.entries]

    def names(self, sub: str) -> set[str]:
        """The names under the device's *sub*/ (``o``, ``log``, ``head``, ``keys``...)."""
        return {k.rsplit("/", 1)[1] for k in self.server.objects(f"{self.base}{sub}/")}


def read_pushed(
    server: S3Server, prefix: str, device: uuid.UUID, keys: _remotekeys.DeviceKeys, *, epoch_key: bytes | None = None
) -> Pushed:
    """Read *device*'s prefix: the record names the keys, the epoch key object opens with the
    device's own X25519 key and is the one the ``epoch`` entry names (unless *epoch_key* is
    given: a device that did not make the epoch), the log reads whole (no pending entry), and
    the newest head is signed by the record's Ed25519 key and names the log's end."""
    base = f"{prefix}/d/{device.hex}/"
    present = server.objects(base)
    record = json.loads(server.read(base + "device"))
    assert record["device"] == device.hex and record["format"] == "sessionseal-remote-device"
    assert base64.b64decode(record["x25519"]) == keys.x25519_public
    ed_public = base64.b64decode(record["ed25519"])
    assert ed_public == keys.ed25519_public
    remote = uuid.UUID(hex=record["remote"])
    made = epoch_key is None
    if epoch_key is None:
        key_bytes = server.read(base + f"keys/{1:08x}")
        parsed = _remotekeys.parse_keys_object(key_bytes)
        stanza = parsed.for_device(device)
        assert stanza is not None
        epoch_key = _remotekeys.unwrap_device(stanza, remote, 1, device, keys)
    logs = {int(k.rsplit("/", 1)[1], 16): server.read(k) for k in present if k.startswith(base + "log/")}
    read = _remotelog.read_log(logs, {1: epoch_key}, remote, device)
    assert not read.pending
    entries = [o.entry for o in read.entries]
    if made:
        assert entries[0]["kind"] == "epoch" and entries[0]["keys"] == hashlib.sha256(key_bytes).hexdigest()
    else:
        assert "epoch" not in [e["kind"] for e in entries] and not any(k.startswith(base + "keys/") for k in present)
    newest = max(int(k.rsplit("/", 1)[1], 16) for k in present if k.startswith(base + "head/"))
    head = _remotelog.open_head(server.read(base + f"head/{newest:016x}"), ed_public, remote, device)
    assert (head.seq, head.mac) == read.end
    return Pushed(remote, device, epoch_key, entries, head, server, base)
