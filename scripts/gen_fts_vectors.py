#!/usr/bin/env python3
"""Generate docs/spec/vectors/fts-v1.json: the full-text index's known-answer vectors.

Fixed keys, DEKs and nonces (injected here only; production draws them at random), raw
(uncompressed) payloads so the bytes do not depend on the zstd version. The vectors hold the
inputs, the derived keys, each frame's plaintext payload and the whole files; the queries'
answers close them. tests/unit/test_fts_vectors.py checks the code against this file, and
decodes the file by the spec alone (docs/spec/fts-v1.md) with ``cryptography`` directly.

Run it only when the format changes on purpose.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import _container, _fts
from sessionseal._container import HEADER_SIZE
from sessionseal._container import parse_unverified_header as parse
from sessionseal._fts import _format

OUT = Path(__file__).resolve().parents[1] / "docs" / "spec" / "vectors" / "fts-v1.json"
VAULT = UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
SEGMENT = UUID("5e5e5e5e-0000-4000-8000-000000000001")
SEGMENT_KEY = bytes(range(0x20, 0x40))
SEGMENT_DEK = bytes(range(0x40, 0x60))
DELTA_KEY = bytes(range(0x60, 0x80))
DELTA_DEK = bytes(range(0x80, 0xA0))
DOCS: list[dict[str, Any]] = [
    {
        "session_id": "00000000-0000-4000-8000-00000000000a",
        "generation": 1,
        "fields": [[1, "Fix the parser"], [2, "Why does parse_args fail?"], [8, "ValueError: bad flag"]],
    },
    {
        "session_id": "00000000-0000-4000-8000-00000000000b",
        "generation": 3,
        "fields": [[1, "Déjà vu"], [4, "The parser is fine; the flag was wrong."]],
    },
]
DELTA: list[dict[str, Any]] = [
    {
        "session_id": "00000000-0000-4000-8000-00000000000b",
        "generation": 3,
        "stamp": [1234, 5678, 1700000000000000000],
        "fields": [[2, "and the parser?"]],
    },
    {
        "session_id": "00000000-0000-4000-8000-00000000000a",
        "generation": 2,
        "stamp": [1235, 99, 1700000000000000001],
        "fields": [[2, "a new version"]],
    },
]
#: The manifest (docs/spec/fts-v1.md, "Manifest", format 2): under a master key of epoch 1,
#: naming the segment and the delta log above, the two sessions' stamps, one retired file.
MASTER_KEY = bytes(range(0xA0, 0xC0))
MANIFEST_DEK = bytes(range(0xC0, 0xE0))
MANIFEST: dict[str, Any] = {
    "kek_epoch": 1,
    "generation": 7,
    "delta_id": "de17a000-0000-4000-8000-000000000002",
    "retire_after": 1,
    "retired": {"0123456789abcdef0123456789abcdef.seg": "5a" * 16},
    "segment": {"words": 20, "size": 1234},
    "stamps": {
        "00000000-0000-4000-8000-00000000000a": [1 << 20, 1235, 99, 1700000000000000001],
        "00000000-0000-4000-8000-00000000000b": [3 << 20, 1234, 5678, 1700000000000000000],
    },
}
#: The delta log's heads checkpoint (docs/spec/fts-v1.md, "Heads checkpoint"): the log above,
#: named by the manifest's delta id, covering both of its records.
HEADS_DEK = bytes(range(0xE0, 0x100))
QUERIES = ["parser", "pars*", "flag AND NOT title:fix", "title:déjà OR value", "user:parser", "version", "fix"]


def nonces(first: int) -> Iterator[bytes]:
    """Nonce i of a file is 12 bytes of value first + i."""
    i = first
    while True:
        yield bytes([i % 256]) * 12
        i += 1


def doc_of(d: dict[str, Any]) -> _fts.Doc:
    return _fts.Doc(UUID(d["session_id"]), d["generation"], [(f, t) for f, t in d["fields"]])


def segment() -> bytes:
    return _fts.build_segment(
        VAULT,
        SEGMENT,
        SEGMENT_KEY,
        [_fts.analyze(doc_of(d)) for d in DOCS],
        compress=False,
        dek=SEGMENT_DEK,
        nonces=nonces(1),
    )


def delta_records() -> list[_fts.DeltaRecord]:
    out = []
    for d in DELTA:
        a = _fts.analyze(doc_of(d))
        out.append(_fts.DeltaRecord(a.entry, (d["stamp"][0], d["stamp"][1], d["stamp"][2]), a.terms))
    return out


def delta_log() -> bytes:
    data = _fts.new_delta(VAULT, DELTA_KEY, 1, dek=DELTA_DEK, nonce=bytes([0xD0]) * 12)
    header = data[:HEADER_SIZE]
    for i, rec in enumerate(delta_records()):
        data += _fts.delta_frame(header, DELTA_DEK, i, rec, compress=False, nonce=bytes([0xD1 + i]) * 12)
    return data


def manifest_payload() -> bytes:
    """The manifest's payload of format 2, as the vault's writer encodes it."""
    from sessionseal._vault._ftsfiles import Manifest, SegmentInfo

    m = MANIFEST
    seg = SegmentInfo(SEGMENT, SEGMENT_KEY, [UUID(d["session_id"]) for d in DOCS], **m["segment"])
    stamps = {UUID(k): (v[0], v[1], v[2], v[3]) for k, v in m["stamps"].items()}
    retired = {n: bytes.fromhex(t) for n, t in m["retired"].items()}
    man = Manifest([seg], UUID(m["delta_id"]), DELTA_KEY, stamps, retired, m["retire_after"])
    return man.encode()


def manifest() -> bytes:
    """``fts/manifest.sst``: kind 8, object id zero, the payload raw (the writer compresses)."""
    return _container.seal(
        kind=_container.Kind.FTS_MANIFEST,
        vault_id=VAULT,
        object_id=UUID(int=0),
        generation=MANIFEST["generation"],
        kek=MASTER_KEY,
        kek_epoch=MANIFEST["kek_epoch"],
        frames=[(_container.FrameType.BODY, _container.encode_payload(manifest_payload(), compress=False))],
        dek=MANIFEST_DEK,
        nonces=nonces(0xE0),
    )


def heads() -> bytes:
    """``fts/<delta id>.heads``: kind 10, object id the log's id, the payload raw."""
    from sessionseal._vault._ftsheads import Heads, seal_heads

    log = delta_log()
    fold = {UUID(r["session_id"]).bytes: (r["generation"], *r["stamp"]) for r in DELTA}
    h = Heads(log[:HEADER_SIZE], len(DELTA), len(log), log[-16:], fold)
    return seal_heads(
        VAULT,
        UUID(MANIFEST["delta_id"]),
        DELTA_KEY,
        h,
        compress=False,
        dek=HEADS_DEK,
        nonces=[bytes([0xF0]) * 12, bytes([0xF1]) * 12],
    )


def frames(data: bytes) -> list[dict[str, Any]]:
    """Offset, type and size of each frame (the file's own framing, not decrypted)."""
    out, pos = [], HEADER_SIZE
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append({"offset": pos, "type": data[pos + 4], "size": 4 + length})
        pos += 4 + length
    return out


def vectors() -> dict[str, Any]:
    keys = _format.SubKeys.of(SEGMENT_KEY)
    analyzed = [_fts.analyze(doc_of(d)) for d in DOCS]
    seg = segment()
    seg_terms = sorted({t for a in analyzed for t in a.terms}, key=str.encode)
    n_buckets = _format.bucket_count(len(seg_terms))
    delta = delta_log()
    return {
        "comment": "Generated by scripts/gen_fts_vectors.py; checked by tests/unit/test_fts_vectors.py.",
        "vault_id": str(VAULT),
        "segment": {
            "segment_id": str(SEGMENT),
            "key": SEGMENT_KEY.hex(),
            "dek": SEGMENT_DEK.hex(),
            "nonces": "nonce i (0: the DEK wrap, then frame 0, 1, ...) is 12 bytes of value 1 + i",
            "seal_key": keys.seal.hex(),
            "terms_key": keys.terms.hex(),
            "docs": DOCS,
            "terms": {
                t: {
                    "bucket": _format.slot(keys.terms, 0, t, n_buckets),
                    "postings": [[i, a.terms[t].tf, a.terms[t].mask] for i, a in enumerate(analyzed) if t in a.terms],
                }
                for t in seg_terms
            },
            "lengths": [list(a.entry.lengths) for a in analyzed],
            "payloads_hex": [f.data.hex() for f in _container.open_frames(seg, parse(seg), keys.seal)[1]],
            "frames": frames(seg),
            "file_hex": seg.hex(),
        },
        "delta": {
            "key": DELTA_KEY.hex(),
            "dek": DELTA_DEK.hex(),
            "nonces": "the DEK wrap: 12 bytes 0xd0; record i: 12 bytes of value 0xd1 + i",
            "records": DELTA,
            "payloads_hex": [_format.encode_delta(r).hex() for r in delta_records()],
            "file_hex": delta.hex(),
        },
        "manifest": {
            **MANIFEST,
            "master_key": MASTER_KEY.hex(),
            "dek": MANIFEST_DEK.hex(),
            "nonces": "the DEK wrap: 12 bytes 0xe0; the BODY frame: 12 bytes 0xe1",
            "payload_hex": manifest_payload().hex(),
            "file_hex": manifest().hex(),
        },
        "heads": {
            "log_id": MANIFEST["delta_id"],
            "kek": hkdf_heads().hex(),
            "dek": HEADS_DEK.hex(),
            "nonces": "the DEK wrap: 12 bytes 0xf0; the BODY frame: 12 bytes 0xf1",
            "count": len(DELTA),
            "end": len(delta),
            "tail_hex": delta[-16:].hex(),
            "fold": {
                r["session_id"]: [r["generation"], *r["stamp"]]
                for r in sorted(DELTA, key=lambda r: UUID(r["session_id"]).bytes)
            },
            "payload_hex": _container.open_frames(heads(), parse(heads()), hkdf_heads())[1][0].data.hex(),
            "file_hex": heads().hex(),
        },
        "queries": {
            q: [
                [str(h.session_id), h.fields]
                for h in _fts.FtsIndex([_reader(seg)], _fts.read_delta(delta, VAULT, DELTA_KEY)).search(q)
            ]
            for q in QUERIES
        },
    }


def hkdf_heads() -> bytes:
    from sessionseal import _crypto
    from sessionseal._vault._ftsheads import LABEL_HEADS

    return _crypto.derive_key(DELTA_KEY, LABEL_HEADS)


def _reader(seg: bytes) -> _fts.SegmentReader:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "vector.seg"
    path.write_bytes(seg)
    return _fts.SegmentReader(path, VAULT, SEGMENT, SEGMENT_KEY)


if __name__ == "__main__":
    OUT.write_text(json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
