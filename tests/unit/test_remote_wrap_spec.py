"""docs/spec/remote-v1.md, "Wraps" (``vectors/remote-v1.json``, ``wrap``): beta's wrap of alpha's
key of the epoch for gamma, and beta's ``device.wrap`` entry naming it, decoded by the spec alone
(``cryptography`` and the standard library, not the package); then the package's own reading of
them: the name it gives, the entry it matches, the recipients it counts."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sessionseal import _remotekeys as rk
from sessionseal import _remotelog as rl
from sessionseal._vault._syncwrap import is_wrap, wrap_name, wrapped_for
from tests.unit.test_remote_keys_spec import VECTORS

REMOTE = uuid.UUID(VECTORS["remote"])
EPOCH: int = VECTORS["epoch"]
KEY = bytes.fromhex(VECTORS["epoch_key"])
DEV = {d["name"]: uuid.UUID(d["device"]) for d in VECTORS["devices"]}
WRAP = VECTORS["wrap"]
GAMMA = uuid.UUID(WRAP["recipient"]["device"])
OBJ = bytes.fromhex(WRAP["hex"])


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def test_the_wrap_by_the_spec_alone() -> None:
    """An epoch key object naming alpha (the key's maker) with one type-1 stanza for gamma,
    under beta's prefix at ``wrap/<gamma>/<epoch>-<alpha>``; it unwraps to the epoch key."""
    magic, version, r, epoch, maker, n = struct.unpack_from(">4sB16sI16sH", OBJ)
    assert (magic, version, r, epoch, maker, n) == (b"SSRK", 1, REMOTE.bytes, EPOCH, DEV["alpha"].bytes, 1)
    stanza = OBJ[43:]
    assert len(stanza) == 1 + 108 and stanza[0] == 1 and stanza[1:17] == GAMMA.bytes
    x_private = X25519PrivateKey.from_private_bytes(bytes.fromhex(WRAP["recipient"]["x25519_private"]))
    x_public = x_private.public_key().public_bytes_raw()
    assert x_public.hex() == WRAP["recipient"]["x25519_public"]
    ephemeral, nonce, sealed = stanza[17:49], stanza[49:61], stanza[61:]
    shared = x_private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    wrapping = _hkdf(shared, ephemeral + x_public, b"sessionseal remote v1 x25519")
    aad = b"SSRK\x01" + REMOTE.bytes + struct.pack(">I", EPOCH) + b"\x01" + GAMMA.bytes + ephemeral
    assert AESGCM(wrapping).decrypt(nonce, sealed, aad) == KEY
    assert WRAP["name"] == f"wrap/{GAMMA.hex}/{EPOCH:08x}-{DEV['alpha'].hex}"


def test_the_device_wrap_entry_by_the_spec_alone() -> None:
    """Beta's entry 2, chained from its entry 1, names gamma, the epoch, alpha and the wrap's
    SHA-256."""
    beta = DEV["beta"]
    salt = REMOTE.bytes + beta.bytes
    log_key = _hkdf(KEY, salt, b"sessionseal remote v1 log")
    mac_key = _hkdf(KEY, salt, b"sessionseal remote v1 log mac")
    data = bytes.fromhex(WRAP["entry"]["hex"])
    magic, version, r, d, epoch, seq, prev, nonce = struct.unpack_from(">4sB16s16sIQ32s12s", data)
    assert (magic, version, r, d, epoch, seq) == (b"SSRL", 1, REMOTE.bytes, beta.bytes, EPOCH, 2)
    assert prev.hex() == VECTORS["logs"]["beta"][0]["mac"]
    entry = json.loads(AESGCM(log_key).decrypt(nonce, data[93:], data[:93]))
    assert entry == WRAP["entry"]["entry"]
    assert entry["kind"] == "device.wrap" and entry["keys"] == hashlib.sha256(OBJ).hexdigest()
    assert (entry["device"], entry["epoch"], entry["maker"]) == (GAMMA.hex, EPOCH, DEV["alpha"].hex)
    assert hmac.new(mac_key, data, hashlib.sha256).hexdigest() == WRAP["entry"]["mac"]


def test_the_package_reads_the_vectors_as_the_spec_does() -> None:
    parsed = rk.parse_keys_object(OBJ)
    assert (parsed.remote, parsed.epoch, parsed.maker) == (REMOTE, EPOCH, DEV["alpha"])
    keys = rk.DeviceKeys(bytes.fromhex(WRAP["recipient"]["x25519_private"]), bytes(32))
    stanza = parsed.for_device(GAMMA)
    assert stanza is not None and rk.unwrap_device(stanza, REMOTE, EPOCH, GAMMA, keys) == KEY
    assert wrap_name(GAMMA, EPOCH, DEV["alpha"]) == WRAP["name"]
    objects = {1: bytes.fromhex(VECTORS["logs"]["beta"][0]["hex"]), 2: bytes.fromhex(WRAP["entry"]["hex"])}
    read = rl.read_log(objects, {EPOCH: KEY}, REMOTE, DEV["beta"])
    opened = read.entries[-1]
    assert opened.mac.hex() == WRAP["entry"]["mac"]
    digest = hashlib.sha256(OBJ).hexdigest()
    assert is_wrap(opened.entry, GAMMA, EPOCH, DEV["alpha"], digest)
    # Another recipient, epoch, maker or object: not that wrap.
    assert not is_wrap(opened.entry, DEV["beta"], EPOCH, DEV["alpha"], digest)
    assert not is_wrap(opened.entry, GAMMA, EPOCH + 1, DEV["alpha"], digest)
    assert not is_wrap(opened.entry, GAMMA, EPOCH, DEV["beta"], digest)
    assert not is_wrap(opened.entry, GAMMA, EPOCH, DEV["alpha"], "00" * 32)
    assert wrapped_for({DEV["beta"]: read.entries}, {}, EPOCH, DEV["alpha"]) == {GAMMA}
    assert wrapped_for({DEV["beta"]: read.entries}, {DEV["beta"]: 1}, EPOCH, DEV["alpha"]) == frozenset()
