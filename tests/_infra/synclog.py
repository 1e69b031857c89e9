"""Reading what a device pushed, straight from the S3 server's files, as another device would:
its device record, epoch key object, log (checked by :func:`sessionseal._remotelog.read_log`),
signed head and content objects (docs/spec/remote-v1.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionseal import _compress, _remotekeys, _remotelog
from tests._infra.s3server import S3Server

__all__ = ["Pushed", "read_pushed", "server_files"]


def server_files(server: S3Server) -> dict[str, int]:
    """Every object on the server: key -> size (rclone keeps each as a file under its bucket)."""
    base = server.root / server.bucket
    return {str(p.relative_to(base)): p.stat().st_size for p in sorted(base.rglob("*")) if p.is_file()}


@dataclass
class Pushed:
    """One device's prefix, read and checked."""

    remote: uuid.UUID
    device: uuid.UUID
    epoch_key: bytes
    entries: list[dict[str, Any]]
    head: _remotelog.Head
    base: Path

    def object(self, name: str) -> bytes:
        """A content object's payload, its hash checked against its name before it is opened."""
        data = (self.base / "o" / name).read_bytes()
        frame = _remotelog.open_object(name, data, {1: self.epoch_key}, self.remote, self.device)
        return _compress.decompress(bytes([1]) + frame)

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.entries]


def read_pushed(server: S3Server, prefix: str, device: uuid.UUID, keys: _remotekeys.DeviceKeys) -> Pushed:
    """Read *device*'s prefix: the record names the keys, the epoch key object opens with the
    device's own X25519 key and is the one the ``epoch`` entry names, the log reads whole (no
    pending entry), and the newest head is signed by the record's Ed25519 key and names the
    log's end."""
    base = server.root / server.bucket / prefix / "d" / device.hex
    record = json.loads((base / "device").read_bytes())
    assert record["device"] == device.hex and record["format"] == "sessionseal-remote-device"
    assert base64.b64decode(record["x25519"]) == keys.x25519_public
    ed_public = base64.b64decode(record["ed25519"])
    assert ed_public == keys.ed25519_public
    remote = uuid.UUID(hex=record["remote"])
    key_bytes = (base / "keys" / f"{1:08x}").read_bytes()
    parsed = _remotekeys.parse_keys_object(key_bytes)
    stanza = parsed.for_device(device)
    assert stanza is not None
    epoch_key = _remotekeys.unwrap_device(stanza, remote, 1, device, keys)
    logs = {int(p.name, 16): p.read_bytes() for p in (base / "log").iterdir()}
    read = _remotelog.read_log(logs, {1: epoch_key}, remote, device)
    assert not read.pending
    entries = [o.entry for o in read.entries]
    assert entries[0]["kind"] == "epoch" and entries[0]["keys"] == hashlib.sha256(key_bytes).hexdigest()
    newest = max(int(p.name, 16) for p in (base / "head").iterdir())
    head = _remotelog.open_head((base / "head" / f"{newest:016x}").read_bytes(), ed_public, remote, device)
    assert (head.seq, head.mac) == read.end
    return Pushed(remote, device, epoch_key, entries, head, base)
