"""The first push to a remote (docs/sync.md, "Push"; docs/spec/remote-v1.md, "Epoch key
objects"): epoch 1's key object, K_1 wrapped for the first device, and the ``epoch`` entry that
names it and records that device's public keys under K_1, so no bucket can swap its record's
(docs/design.md, "Keys").
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _crypto, _remotekeys
from ..errors import RemoteError, SessionSealError

if TYPE_CHECKING:
    from .._s3 import S3Store
    from ._devices import DeviceIdentity

__all__ = ["EpochOne", "epoch_one", "first_entry"]


@dataclass(frozen=True)
class EpochOne:
    """Epoch 1's key object, and whether it is new (to be sent) or already on the remote."""

    data: bytes
    new: bool


def epoch_one(
    s3: S3Store, prefix: str, rid: uuid.UUID, key: bytes, ident: DeviceIdentity, *, dry_run: bool
) -> EpochOne:
    """Epoch 1's key object: K_1 (*key*) wrapped for this device; or, when an earlier first
    push sent one before its record of it was lost, that one (a name is never written with
    other bytes), once it is checked to hold this device's K_1.

    :raises RemoteError: the object there is not one this device made.
    """
    name = prefix + f"keys/{1:08x}"
    if not dry_run and s3.exists(name):
        sent = s3.get(name)
        try:
            stanza = _remotekeys.parse_keys_object(sent).for_device(ident.device_id)
            held = stanza is not None and _crypto.constant_time_equal(
                _remotekeys.unwrap_device(stanza, rid, 1, ident.device_id, ident.keys), key
            )
        except SessionSealError:
            held = False
        if not held:
            raise RemoteError("this device's epoch key object on the remote is not one it made; nothing was sent")
        return EpochOne(sent, new=False)
    stanza = _remotekeys.wrap_for_device(key, rid, 1, ident.device_id, ident.x25519_public)
    return EpochOne(_remotekeys.keys_object(rid, 1, ident.device_id, [stanza]), new=True)


def first_entry(ident: DeviceIdentity, keys_object: bytes) -> dict[str, Any]:
    """The ``epoch`` entry of epoch 1, naming *keys_object* by its SHA-256."""
    return {
        "kind": "epoch",
        "epoch": 1,
        "keys": hashlib.sha256(keys_object).hexdigest(),
        "reason": "first",
        "x25519": base64.b64encode(ident.x25519_public).decode(),
        "ed25519": base64.b64encode(ident.ed25519_public).decode(),
    }
