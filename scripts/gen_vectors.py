#!/usr/bin/env python3
"""Generate docs/spec/vectors/container-v1.json: the container's known-answer vectors.

Deterministic: fixed keys and nonces, raw (uncompressed) payloads, so the bytes do
not depend on the zstd version.  Run it only when the format changes on purpose;
tests/unit/test_container_spec.py checks the committed file against the code.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import _container
from sessionseal._container import FrameType, Kind

OUT = Path(__file__).resolve().parents[1] / "docs" / "spec" / "vectors" / "container-v1.json"

VAULT = UUID("6f1b6f8e-3c0e-4b7a-9a51-2f8d0e4c1a11")
SESSION = UUID("0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22")
KEK = bytes(range(32))
DEK = bytes(range(32, 64))
NONCES = [bytes([n] * 12) for n in (1, 2, 3)]
META = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"vector"}'
BODY = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"vector","messages":[]}'


def raw(data: bytes) -> bytes:
    return b"\x00" + data


def base() -> bytes:
    return _container.seal(
        kind=Kind.SESSION,
        vault_id=VAULT,
        object_id=SESSION,
        generation=7,
        kek=KEK,
        kek_epoch=0,
        frames=[(FrameType.META, raw(META)), (FrameType.BODY, raw(BODY))],
        dek=DEK,
        nonces=iter(NONCES),
    )


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def main() -> None:
    good = base()
    h = _container.HEADER_SIZE
    meta_len = 4 + struct.unpack_from(">I", good, h)[0]
    meta_frame, body_frame = good[h : h + meta_len], good[h + meta_len :]
    common = {"kek": KEK.hex(), "vault_id": str(VAULT), "object_id": str(SESSION)}
    vectors = [
        {
            "name": "session container, two raw frames",
            "expect": "success",
            **common,
            "dek": DEK.hex(),
            "nonces": [n.hex() for n in NONCES],
            "kind": Kind.SESSION,
            "generation": 7,
            "kek_epoch": 0,
            "frames": [
                {"type": FrameType.META, "payload": raw(META).hex()},
                {"type": FrameType.BODY, "payload": raw(BODY).hex()},
            ],
            "container": good.hex(),
        },
        {"name": "flipped bit in the body tag", "expect": "integrity failure", **common, "container": flip(good, len(good) - 1).hex()},
        {"name": "flipped bit in the generation", "expect": "integrity failure", **common, "container": flip(good, 50).hex()},
        {"name": "flipped bit in the wrapped data key", "expect": "integrity failure", **common, "container": flip(good, 80).hex()},
        {"name": "bad magic", "expect": "integrity failure", **common, "container": flip(good, 0).hex()},
        {"name": "newer format version", "expect": "unsupported version", **common,
         "container": (good[:8] + b"\x02" + good[9:]).hex()},
        {"name": "unknown flag set", "expect": "integrity failure", **common, "container": flip(good, 11).hex()},
        {"name": "frames reordered", "expect": "integrity failure", **common,
         "container": (good[:h] + body_frame + meta_frame).hex()},
        {"name": "last frame dropped", "expect": "integrity failure (missing body)", **common,
         "container": (good[:h] + meta_frame).hex()},
        {"name": "truncated inside the last frame", "expect": "integrity failure", **common, "container": good[:-5].hex()},
        {"name": "trailing garbage", "expect": "integrity failure", **common, "container": (good + b"\x00").hex()},
        {"name": "wrong key-encryption key", "expect": "integrity failure", **common, "kek": bytes(32).hex(),
         "container": good.hex()},
    ]
    OUT.write_text(json.dumps({"format": "sessionseal container v1", "vectors": vectors}, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUT}")


if __name__ == "__main__":
    main()
