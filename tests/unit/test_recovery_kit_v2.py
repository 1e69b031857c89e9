"""docs/spec/remote-v1.md, "Recovery kit", version 2 (``docs/spec/vectors/recovery-kit-v2.json``):
the writer reproduces the vector's bytes; the kit decodes by the spec alone (``cryptography``
used directly, not the package); and the package refuses an edited kit: a wrong passphrase or
an edited stanza (``WrongPassphrase``, exit 12), an edited URL, witness or older key
(``IntegrityError``, exit 4), a malformed or unknown shape (``InvalidInput``, exit 8), a newer
version (``UnsupportedVersion``, exit 13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import sys
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sessionseal import _kitremote, _recoverykit, _remotekeys
from sessionseal.errors import IntegrityError, InvalidInput, UnsupportedVersion, WrongPassphrase

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((ROOT / "docs" / "spec" / "vectors" / "recovery-kit-v2.json").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
import gen_kit_vectors as gen  # noqa: E402  (the generator's fixed inputs)

KIT: bytes = VECTORS["kit"].encode("utf-8")
PASSPHRASE: str = VECTORS["passphrase"]
REMOTE = uuid.UUID(VECTORS["remote_id"])
EPOCH_KEYS = {int(e): bytes.fromhex(k) for e, k in VECTORS["epoch_keys"].items()}


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _type2(stanza: bytes, bound_to: uuid.UUID, epoch: int) -> bytes:
    """A type-2 stanza opened by the spec: scrypt, then AES-GCM with a = SSRK || 1 || id || epoch || 2 || params."""
    assert stanza[0] == 2 and len(stanza) == 80
    salt, log2_n, r, p = stanza[1:17], stanza[17], stanza[18], stanza[19]
    nonce, sealed = stanza[20:32], stanza[32:]
    w = Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(unicodedata.normalize("NFC", PASSPHRASE).encode())
    aad = b"SSRK" + bytes([1]) + bound_to.bytes + struct.pack(">I", epoch) + bytes([2]) + stanza[1:20]
    return AESGCM(w).decrypt(nonce, sealed, aad)


def test_the_generator_reproduces_the_committed_vector() -> None:
    assert gen.vectors() == VECTORS


def test_the_kit_decodes_by_the_spec_alone() -> None:
    doc = json.loads(KIT)
    assert (doc["format"], doc["version"]) == ("sessionseal-recovery-kit", 2)
    vault = uuid.UUID(doc["vault_id"])
    master = _type2(base64.b64decode(doc["master_key"]), vault, doc["epoch"])
    assert master.hex() == VECTORS["master_key"]
    (part,) = doc["remotes"]
    newest = _type2(base64.b64decode(part["epoch_key"]), uuid.UUID(hex=part["remote_id"]), part["epoch"])
    assert newest == EPOCH_KEYS[part["epoch"]]
    # The older epochs: u32 epoch || nonce || AES-GCM under HKDF(K_newest, R, label), a = SSKO || 1 || R || epoch.
    kek = _hkdf(newest, REMOTE.bytes, b"sessionseal recovery kit v2 older epochs")
    raw, older = base64.b64decode(part["older_keys"]), {}
    for at in range(0, len(raw), 64):
        (epoch,) = struct.unpack(">I", raw[at : at + 4])
        aad = b"SSKO" + bytes([1]) + REMOTE.bytes + struct.pack(">I", epoch)
        older[epoch] = AESGCM(kek).decrypt(raw[at + 4 : at + 16], raw[at + 16 : at + 64], aad)
    assert older == {1: EPOCH_KEYS[1], 2: EPOCH_KEYS[2]}
    # The MAC: HMAC-SHA256 under HKDF(K_newest, R, label) of the canonical JSON of the part
    # without "mac", with the kit's "vault_id" (32 hex digits) added.
    body = {k: v for k, v in part.items() if k != "mac"} | {"vault_id": vault.hex}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    mac_key = _hkdf(newest, REMOTE.bytes, b"sessionseal recovery kit v2 remote")
    assert hmac.compare_digest(hmac.new(mac_key, canonical, hashlib.sha256).hexdigest(), part["mac"])


def test_the_package_opens_it() -> None:
    kit = _recoverykit.parse(KIT)
    assert _recoverykit.open_kit(kit, PASSPHRASE).hex() == VECTORS["master_key"]  # key import still works
    unlocked = _kitremote.unlock(kit, PASSPHRASE)
    assert unlocked.keys == EPOCH_KEYS and "4041" not in repr(unlocked)
    assert unlocked.part.witness[uuid.UUID("11111111-1111-4111-8111-111111111111")] == (7, bytes([0xAA]) * 32)


def _edit(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(KIT)
    change(doc)
    return json.dumps(doc).encode()


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _part(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda doc: change(doc["remotes"][0])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (_part(lambda r: r.__setitem__("url", "s3://another-bucket/sessions")), IntegrityError),
        (_part(lambda r: r.__setitem__("endpoint", "https://evil.example")), IntegrityError),
        (_part(lambda r: r["witness"]["11111111111141118111111111111111"].__setitem__(0, 6)), IntegrityError),
        (_part(lambda r: r.__setitem__("older_keys", _flip(r["older_keys"], 10))), IntegrityError),
        (_part(lambda r: r.__setitem__("epoch_key", _flip(r["epoch_key"], 40))), WrongPassphrase),
        (_part(lambda r: r.__setitem__("epoch", 4)), WrongPassphrase),  # the stanza is bound to its epoch
        (_part(lambda r: r.__setitem__("remote_id", "0" * 32)), WrongPassphrase),  # ... and its remote
    ],
)
def test_an_edited_remote_part_is_refused(change: Callable[[dict[str, Any]], None], error: type[Exception]) -> None:
    with pytest.raises(error):
        _kitremote.unlock(_recoverykit.parse(_edit(change)), PASSPHRASE)


def test_a_wrong_passphrase_is_refused() -> None:
    with pytest.raises(WrongPassphrase):
        _kitremote.unlock(_recoverykit.parse(KIT), "not the passphrase")


@pytest.mark.parametrize(
    "change",
    [
        _part(lambda r: r.__setitem__("extra", 1)),  # a field the version does not know
        _part(lambda r: r.pop("witness")),
        _part(lambda r: r.__setitem__("witness", {"11": [1, "00" * 32]})),
        _part(lambda r: r["witness"]["11111111111141118111111111111111"].__setitem__(0, 0)),
        lambda doc: doc.__setitem__("remotes", []),
        lambda doc: doc.__setitem__("version", 1),  # version 1 carries no remotes
    ],
)
def test_a_malformed_kit_is_damaged(change: Callable[[dict[str, Any]], None]) -> None:
    with pytest.raises(InvalidInput, match="damaged"):
        _recoverykit.parse(_edit(change))


def test_a_newer_version_asks_for_an_upgrade() -> None:
    with pytest.raises(UnsupportedVersion):
        _recoverykit.parse(_edit(lambda doc: doc.__setitem__("version", 3)))


def test_a_version_one_kit_has_no_remote_to_restore() -> None:
    vault = uuid.uuid4()
    stanza = _remotekeys.wrap_passphrase(bytes(32), vault, 1, "pw", log2_n=10)
    v1 = _recoverykit.encode(vault, 1, "keychain", stanza, created_at="2026-12-07T03:00:00+00:00")
    kit = _recoverykit.parse(v1)
    assert json.loads(v1)["version"] == 1 and kit.remotes == ()
    with pytest.raises(InvalidInput, match="carries no remote"):
        _kitremote.pick(kit, None)
