#!/usr/bin/env python3
"""Generate docs/spec/vectors/recovery-kit-v2.json: a version-2 recovery kit (docs/spec/remote-v1.md,
"Recovery kit").

Fixed keys, salts and nonces, so the bytes are reproducible: the vault's master key of epoch 4
and one remote whose newest epoch is 3 (its key under the kit's passphrase, a type-2 stanza)
with epochs 1 and 2 wrapped under epoch 3's key, a witness vector of two devices, and the MAC
over the remote part.  scrypt uses N = 2^14 to keep the test fast; the format carries N, and
writers use 2^17.

``tests/unit/test_recovery_kit_v2.py`` checks the committed file against the code, and decodes
it with ``cryptography`` alone.  Run this only when the format changes on purpose.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import _kitremote, _recoverykit
from sessionseal import _remotekeys as rk

OUT = Path(__file__).resolve().parents[1] / "docs" / "spec" / "vectors" / "recovery-kit-v2.json"

VAULT = UUID("5e55105e-0000-4000-8000-00000000c0de")
REMOTE = UUID("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
MASTER_EPOCH = 4
MASTER_KEY = bytes(range(0x20, 0x40))
EPOCH_KEYS = {1: bytes([0x61]) * 32, 2: bytes([0x62]) * 32, 3: bytes(range(0x40, 0x60))}
PASSPHRASE = "correct horse battery stäple"  # noqa: S105 - a test vector; ä as one code point (NFC)
SALTS = [bytes([0x0A]) * 16, bytes([0x0B]) * 16]
NONCES = [bytes([0x07]) * 12, bytes([0x08]) * 12, bytes([0x0C]) * 12, bytes([0x0D]) * 12]
LOG2_N = 14
WITNESS = {
    UUID("11111111-1111-4111-8111-111111111111"): (7, bytes([0xAA]) * 32),
    UUID("22222222-2222-4222-8222-222222222222"): (2, bytes([0xBB]) * 32),
}
CREATED = "2026-12-07T03:00:00+00:00"


def kit() -> bytes:
    master = rk.wrap_passphrase(
        MASTER_KEY, VAULT, MASTER_EPOCH, PASSPHRASE, log2_n=LOG2_N, salt=SALTS[0], nonce=NONCES[0]
    )
    newest = EPOCH_KEYS[3]
    part = _recoverykit.remote_part(
        VAULT,
        name="cloud",
        url="s3://my-bucket/sessions",
        endpoint="https://s3.example.net",
        region=None,
        remote_id=REMOTE,
        epoch=3,
        epoch_key=newest,
        stanza=rk.wrap_passphrase(newest, REMOTE, 3, PASSPHRASE, log2_n=LOG2_N, salt=SALTS[1], nonce=NONCES[1]),
        older=_kitremote.wrap_older(newest, REMOTE, {1: EPOCH_KEYS[1], 2: EPOCH_KEYS[2]}, nonces=NONCES[2:]),
        witness=WITNESS,
    )
    return _recoverykit.encode(VAULT, MASTER_EPOCH, "keychain", master, created_at=CREATED, remotes=(part,))


def vectors() -> dict[str, Any]:
    return {
        "description": "A version-2 recovery kit (docs/spec/remote-v1.md, 'Recovery kit'); scrypt N=2^14 here",
        "passphrase": PASSPHRASE,
        "vault_id": VAULT.hex,
        "master_epoch": MASTER_EPOCH,
        "master_key": MASTER_KEY.hex(),
        "remote_id": REMOTE.hex,
        "epoch_keys": {str(e): k.hex() for e, k in sorted(EPOCH_KEYS.items())},
        "kit": kit().decode("utf-8"),
    }


def main() -> None:
    OUT.write_text(json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
