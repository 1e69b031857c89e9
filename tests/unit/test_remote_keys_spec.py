"""docs/spec/remote-v1.md's key vectors (``docs/spec/vectors/remote-v1.json``): the writer
reproduces their bytes; the file decodes by the spec alone (``cryptography`` used directly, not
the package); and the package's reader refuses what the spec says it must."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sessionseal import _remotekeys as rk
from sessionseal.errors import IntegrityError, InvalidInput

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((ROOT / "docs" / "spec" / "vectors" / "remote-v1.json").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
import gen_remote_vectors as gen  # noqa: E402  (the generator's fixed inputs)

REMOTE = uuid.UUID(VECTORS["remote"])
EPOCH: int = VECTORS["epoch"]
EPOCH_KEY = bytes.fromhex(VECTORS["epoch_key"])
ALPHA, BETA = VECTORS["devices"]


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _keys(device: dict[str, Any]) -> rk.DeviceKeys:
    return rk.DeviceKeys(bytes.fromhex(device["x25519_private"]), bytes.fromhex(device["ed25519_private"]))


# -- the writer reproduces the committed bytes -----------------------------------------------------


def test_the_generator_reproduces_the_committed_vectors() -> None:
    assert json.loads(json.dumps(gen.vectors(), ensure_ascii=False)) == VECTORS


# -- the spec alone decodes them -------------------------------------------------------------------


@pytest.mark.parametrize("device", [ALPHA, BETA], ids=["alpha", "beta"])
def test_a_device_stanza_by_the_spec_alone(device: dict[str, Any]) -> None:
    x_private = X25519PrivateKey.from_private_bytes(bytes.fromhex(device["x25519_private"]))
    x_public = x_private.public_key().public_bytes_raw()
    ed_public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(device["ed25519_private"])).public_key()
    assert x_public.hex() == device["x25519_public"]
    assert ed_public.public_bytes_raw().hex() == device["ed25519_public"]
    did = uuid.UUID(device["device"])
    fp = hashlib.sha256(
        b"sessionseal remote v1 device" + REMOTE.bytes + did.bytes + x_public + ed_public.public_bytes_raw()
    ).digest()
    assert fp.hex() == device["fingerprint"]
    assert base64.b32encode(fp[:10]).decode() == device["pairing_code"] and len(device["pairing_code"]) == 16
    stanza = bytes.fromhex(device["stanza"])
    assert len(stanza) == 1 + 108 and stanza[0] == 1 and stanza[1:17] == did.bytes
    ephemeral_public, nonce, sealed = stanza[17:49], stanza[49:61], stanza[61:]
    shared = x_private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    wrapping = _hkdf(shared, ephemeral_public + x_public, b"sessionseal remote v1 x25519")
    aad = b"SSRK\x01" + REMOTE.bytes + struct.pack(">I", EPOCH) + b"\x01" + did.bytes + ephemeral_public
    assert AESGCM(wrapping).decrypt(nonce, sealed, aad) == EPOCH_KEY


def test_the_recovery_stanza_by_the_spec_alone() -> None:
    rec = VECTORS["recovery"]
    stanza = bytes.fromhex(rec["stanza"])
    assert len(stanza) == 1 + 79 and stanza[0] == 2
    salt, log2_n, r, p = stanza[1:17], stanza[17], stanza[18], stanza[19]
    assert (salt.hex(), log2_n, r, p) == (rec["salt"], rec["log2_n"], rec["r"], rec["p"])
    secret = unicodedata.normalize("NFC", rec["passphrase"]).encode()
    kek = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(secret)
    aad = b"SSRK\x01" + REMOTE.bytes + struct.pack(">I", EPOCH) + b"\x02" + stanza[1:20]
    assert AESGCM(kek).decrypt(stanza[20:32], stanza[32:], aad) == EPOCH_KEY


def test_the_epoch_key_object_by_the_spec_alone() -> None:
    data = bytes.fromhex(VECTORS["keys_object"]["hex"])
    magic, version, remote, epoch, maker, count = struct.unpack_from(">4sB16sI16sH", data)
    assert (magic, version, uuid.UUID(bytes=remote), epoch, count) == (b"SSRK", 1, REMOTE, EPOCH, 3)
    assert str(uuid.UUID(bytes=maker)) == VECTORS["keys_object"]["maker"]
    body = data[struct.calcsize(">4sB16sI16sH") :]
    expected = [ALPHA["stanza"], BETA["stanza"], VECTORS["recovery"]["stanza"]]
    assert body == b"".join(bytes.fromhex(s) for s in expected)


def test_the_derived_keys_by_the_spec_alone() -> None:
    derived = VECTORS["derived"]
    device = uuid.UUID(derived["device"])
    for purpose, label in (
        ("log", b"sessionseal remote v1 log"),
        ("log mac", b"sessionseal remote v1 log mac"),
        ("object", b"sessionseal remote v1 object"),
    ):
        assert _hkdf(EPOCH_KEY, REMOTE.bytes + device.bytes, label).hex() == derived[purpose]
    assert len(set(derived.values())) == 4  # the device and three distinct keys


# -- the package reads them, and refuses what it must ---------------------------------------------


def test_the_package_unwraps_every_stanza_of_the_object() -> None:
    parsed = rk.parse_keys_object(bytes.fromhex(VECTORS["keys_object"]["hex"]))
    assert (parsed.remote, parsed.epoch, [t for t, _ in parsed.stanzas]) == (REMOTE, EPOCH, [1, 1, 2])
    for device in (ALPHA, BETA):
        did = uuid.UUID(device["device"])
        stanza = parsed.for_device(did)
        assert stanza is not None
        assert rk.unwrap_device(stanza, REMOTE, EPOCH, did, _keys(device)) == EPOCH_KEY
    assert parsed.for_device(uuid.uuid4()) is None
    [recovery] = parsed.passphrase_stanzas()
    # The same passphrase in NFD (a decomposed ä) is the same key.
    nfd = unicodedata.normalize("NFD", VECTORS["recovery"]["passphrase"])
    assert nfd != VECTORS["recovery"]["passphrase"]
    assert rk.unwrap_passphrase(recovery, REMOTE, EPOCH, nfd) == EPOCH_KEY


@pytest.mark.parametrize("case", VECTORS["tampered_device_stanza"], ids=lambda c: c["what"])
def test_a_tampered_device_stanza_does_not_unwrap(case: dict[str, Any]) -> None:
    stanza = bytearray(bytes.fromhex(ALPHA["stanza"]))
    stanza[case["offset"]] ^= 0x01
    obj = rk.keys_object(REMOTE, EPOCH, uuid.UUID(ALPHA["device"]), [bytes(stanza)])
    with pytest.raises(IntegrityError):
        _unwrap_first(obj)


def _unwrap_first(obj: bytes) -> bytes:
    """Alpha's key from the first stanza of *obj* (a flipped type byte fails at the parse)."""
    parsed = rk.parse_keys_object(obj)
    return rk.unwrap_device(parsed.stanzas[0][1], REMOTE, EPOCH, uuid.UUID(ALPHA["device"]), _keys(ALPHA))


def test_a_stanza_opens_only_for_its_device_remote_and_epoch() -> None:
    stanza = bytes.fromhex(ALPHA["stanza"])[1:]
    alpha = uuid.UUID(ALPHA["device"])
    with pytest.raises(IntegrityError):  # beta's key, beta's id
        rk.unwrap_device(stanza, REMOTE, EPOCH, uuid.UUID(BETA["device"]), _keys(BETA))
    with pytest.raises(IntegrityError):  # beta's key claiming alpha's id
        rk.unwrap_device(stanza, REMOTE, EPOCH, alpha, _keys(BETA))
    with pytest.raises(IntegrityError):
        rk.unwrap_device(stanza, REMOTE, EPOCH + 1, alpha, _keys(ALPHA))
    with pytest.raises(IntegrityError):
        rk.unwrap_device(stanza, uuid.uuid4(), EPOCH, alpha, _keys(ALPHA))


def test_a_wrong_passphrase_or_a_changed_parameter_does_not_unwrap() -> None:
    stanza = bytes.fromhex(VECTORS["recovery"]["stanza"])[1:]
    with pytest.raises(IntegrityError):
        rk.unwrap_passphrase(stanza, REMOTE, EPOCH, "correct horse battery staple")
    changed = bytearray(stanza)
    changed[18] = 2  # p (1 in the vector): bound into the associated data
    with pytest.raises(IntegrityError):
        rk.unwrap_passphrase(bytes(changed), REMOTE, EPOCH, VECTORS["recovery"]["passphrase"])


def test_too_much_scrypt_work_is_refused_before_any() -> None:
    stanza = bytearray(bytes.fromhex(VECTORS["recovery"]["stanza"])[1:])
    stanza[16] = rk.MAX_LOG2_N + 1
    with pytest.raises(InvalidInput):
        rk.unwrap_passphrase(bytes(stanza), REMOTE, EPOCH, "anything")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d[:-1],  # a stanza cut short
        lambda d: d + b"\x00",  # a byte after the declared stanzas
        lambda d: b"SSRX" + d[4:],  # another magic
        lambda d: d[:4] + b"\x02" + d[5:],  # another version
        lambda d: d[:41] + struct.pack(">H", 4) + d[43:],  # more stanzas declared than present
        lambda d: d[:43] + b"\x07" + d[44:],  # a stanza of unknown type
        lambda d: d[:20],  # not even a header
    ],
    ids=["cut", "trailing", "magic", "version", "count", "type", "short"],
)
def test_a_malformed_key_object_is_refused(change: Any) -> None:
    with pytest.raises(IntegrityError):
        rk.parse_keys_object(change(bytes.fromhex(VECTORS["keys_object"]["hex"])))


def test_fresh_wraps_differ_and_all_open() -> None:
    device = rk.DeviceKeys.generate()
    did, key = uuid.uuid4(), bytes(range(32))
    one = rk.wrap_for_device(key, REMOTE, 1, did, device.x25519_public)
    two = rk.wrap_for_device(key, REMOTE, 1, did, device.x25519_public)
    assert one != two  # a fresh ephemeral key and nonce each time
    assert rk.unwrap_device(one[1:], REMOTE, 1, did, device) == rk.unwrap_device(two[1:], REMOTE, 1, did, device) == key
    assert "private" in repr(device) and device.x25519.hex() not in repr(device)
