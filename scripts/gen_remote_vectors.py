#!/usr/bin/env python3
"""Generate docs/spec/vectors/remote-v1.json: the remote's keys (docs/spec/remote-v1.md).

Fixed private keys, ephemeral keys, salts and nonces, so the bytes are reproducible: two
devices' keypairs and fingerprints, an epoch key wrapped for each of them and under a recovery
passphrase, the epoch key object that holds the three stanzas, the keys derived from the epoch
key for one device, and the changes a reader must refuse.  The scrypt stanza of the vectors uses
N = 2^14 to keep the test fast; the format carries N, and writers use 2^17.

``tests/unit/test_remote_keys_spec.py`` checks the committed file against the code, and decodes
every vector with ``cryptography`` alone.  Run this only when the format changes on purpose.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import _remotekeys as rk
from sessionseal import _remotelog as rl

OUT = Path(__file__).resolve().parents[1] / "docs" / "spec" / "vectors" / "remote-v1.json"

REMOTE = UUID("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
EPOCH = 3
EPOCH_KEY = bytes(range(0x40, 0x60))
PASSPHRASE = "correct horse battery stäple"  # noqa: S105 - a test vector; ä as one code point (NFC)
DEVICES = [
    ("alpha", UUID("11111111-1111-4111-8111-111111111111"), bytes([0x01]) * 32, bytes([0x02]) * 32),
    ("beta", UUID("22222222-2222-4222-8222-222222222222"), bytes([0x03]) * 32, bytes([0x04]) * 32),
]
EPHEMERAL = [bytes([0x05]) * 32, bytes([0x06]) * 32]
NONCES = [bytes([0x07]) * 12, bytes([0x08]) * 12, bytes([0x09]) * 12]
SALT = bytes([0x0A]) * 16
LOG2_N = 14


def vectors() -> dict[str, Any]:
    devices = []
    stanzas = []
    for i, (name, device, x_private, ed_private) in enumerate(DEVICES):
        keys = rk.DeviceKeys(x_private, ed_private)
        fp = rk.fingerprint(REMOTE, device, keys.x25519_public, keys.ed25519_public)
        stanza = rk.wrap_for_device(
            EPOCH_KEY, REMOTE, EPOCH, device, keys.x25519_public, ephemeral=EPHEMERAL[i], nonce=NONCES[i]
        )
        stanzas.append(stanza)
        devices.append(
            {
                "name": name,
                "device": str(device),
                "x25519_private": x_private.hex(),
                "x25519_public": keys.x25519_public.hex(),
                "ed25519_private": ed_private.hex(),
                "ed25519_public": keys.ed25519_public.hex(),
                "fingerprint": fp.hex(),
                "pairing_code": rk.pairing_code(fp),
                "ephemeral_private": EPHEMERAL[i].hex(),
                "stanza": stanza.hex(),
            }
        )
    recovery = rk.wrap_passphrase(EPOCH_KEY, REMOTE, EPOCH, PASSPHRASE, log2_n=LOG2_N, salt=SALT, nonce=NONCES[2])
    stanzas.append(recovery)
    maker = DEVICES[0][1]
    obj = rk.keys_object(REMOTE, EPOCH, maker, stanzas)
    derived = {purpose: rk.derive(EPOCH_KEY, REMOTE, maker, purpose).hex() for purpose in rk.PURPOSES}
    return {
        "description": "docs/spec/remote-v1.md: device keys, epoch key stanzas, the epoch key object, derived keys, "
        "change logs, a head, a content object",
        "remote": str(REMOTE),
        "epoch": EPOCH,
        "epoch_key": EPOCH_KEY.hex(),
        "devices": devices,
        "recovery": {
            "passphrase": PASSPHRASE,
            "log2_n": LOG2_N,
            "r": 8,
            "p": 1,
            "salt": SALT.hex(),
            "stanza": recovery.hex(),
        },
        "keys_object": {"maker": str(maker), "hex": obj.hex()},
        "derived": {"device": str(maker), **derived},
        # Each must fail to unwrap for device alpha: one byte flipped where it says.
        "tampered_device_stanza": [
            {"what": what, "offset": offset}
            for what, offset in (
                ("type byte", 0),
                ("recipient", 1),
                ("ephemeral public key", 17),
                ("nonce", 49),
                ("ciphertext", 61),
                ("tag", 108),
            )
        ],
        **log_vectors(),
        **wrap_vectors(),
    }


#: Alpha's first three entries and beta's first, as their plaintext documents.
ALPHA_ENTRIES = [
    {"kind": "epoch", "hlc": "0000018c0a000000", "epoch": EPOCH, "keys": "00" * 32, "reason": "first"},
    {
        "kind": "session.put",
        "hlc": "0000018c0a000001",
        "session": "5e551011-0000-4000-8000-000000000001",
        "object": "",
        "size": 29,
        "events": 1,
    },
    {
        "kind": "session.append",
        "hlc": "0000018c0b000000",
        "session": "5e551011-0000-4000-8000-000000000001",
        "base": 1,
        "object": "",
        "size": 29,
        "events": 1,
    },
]
BETA_ENTRIES = [
    {
        "kind": "session.meta",
        "hlc": "0000018c0a800000",
        "session": "5e551011-0000-4000-8000-000000000001",
        "field": "pinned",
        "value": True,
    }
]
#: A zstd frame stands here as fixed bytes: the object seals whatever frame it is given.
FRAME = b"(\xb5/\xfd fixed frame bytes of the vectors"
HLC = 0x0000018C0B000001


def log_vectors() -> dict[str, Any]:
    """Alpha's log of three entries, beta's of one, alpha's head witnessing beta, an object."""
    (alpha_name, alpha, ax, aed), (beta_name, beta, _, _) = DEVICES
    logs: dict[str, Any] = {}
    macs: dict[str, list[bytes]] = {}
    for name, device, entries, first_nonce in (
        (alpha_name, alpha, ALPHA_ENTRIES, 0x20),
        (beta_name, beta, BETA_ENTRIES, 0x30),
    ):
        prev, out, macs[name] = rl.ZERO_MAC, [], []
        for i, entry in enumerate(entries, start=1):
            data, mac = rl.seal_entry(
                EPOCH_KEY,
                REMOTE,
                device,
                epoch=EPOCH,
                seq=i,
                prev=prev,
                entry=entry,
                nonce=bytes([first_nonce + i]) * 12,
            )
            out.append({"seq": i, "entry": entry, "hex": data.hex(), "mac": mac.hex()})
            prev = mac
            macs[name].append(mac)
        logs[name] = out
    keys = rk.DeviceKeys(ax, aed)
    head = rl.sign_head(
        keys,
        REMOTE,
        alpha,
        epoch=EPOCH,
        seq=3,
        mac=macs[alpha_name][2],
        hlc=HLC,
        witness={beta: (1, macs[beta_name][0])},
    )
    name, obj = rl.seal_object(
        EPOCH_KEY, REMOTE, alpha, EPOCH, FRAME, object_id=bytes([0x40]) * 16, nonce=bytes([0x41]) * 12
    )
    return {
        "logs": logs,
        "head": {"device": alpha_name, "seq": 3, "hlc": HLC, "witness": {beta_name: 1}, "hex": head.hex()},
        "object": {"device": alpha_name, "frame": FRAME.hex(), "name": name, "hex": obj.hex()},
    }


#: A third device, gamma, enrolled at the moment alpha made the epoch: beta wraps it for gamma.
GAMMA = ("gamma", UUID("33333333-3333-4333-8333-333333333333"), bytes([0x0B]) * 32, bytes([0x0C]) * 32)


def wrap_vectors() -> dict[str, Any]:
    """Beta's wrap of alpha's key of the epoch for gamma ("Wraps"), and beta's ``device.wrap``
    entry naming it: its entry 2, chained from its entry 1 above."""
    _, gamma, gx, ged = GAMMA
    alpha, beta = DEVICES[0][1], DEVICES[1][1]
    public = rk.DeviceKeys(gx, ged).x25519_public
    stanza = rk.wrap_for_device(
        EPOCH_KEY, REMOTE, EPOCH, gamma, public, ephemeral=bytes([0x0D]) * 32, nonce=bytes([0x0E]) * 12
    )
    obj = rk.keys_object(REMOTE, EPOCH, alpha, [stanza])
    entry = {
        "kind": "device.wrap",
        "hlc": "0000018c0c000000",
        "device": gamma.hex,
        "epoch": EPOCH,
        "maker": alpha.hex,
        "keys": hashlib.sha256(obj).hexdigest(),
    }
    prev = bytes.fromhex(log_vectors()["logs"]["beta"][0]["mac"])
    data, mac = rl.seal_entry(
        EPOCH_KEY, REMOTE, beta, epoch=EPOCH, seq=2, prev=prev, entry=entry, nonce=bytes([0x32]) * 12
    )
    return {
        "wrap": {
            "writer": "beta",
            "recipient": {
                "name": GAMMA[0],
                "device": str(gamma),
                "x25519_private": gx.hex(),
                "x25519_public": public.hex(),
            },
            "maker": "alpha",
            "name": f"wrap/{gamma.hex}/{EPOCH:08x}-{alpha.hex}",
            "hex": obj.hex(),
            "entry": {"seq": 2, "entry": entry, "hex": data.hex(), "mac": mac.hex()},
        }
    }


def main() -> None:
    OUT.write_text(json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
