"""docs/spec/fts-v1.md's test vectors: the writer reproduces their bytes, and the file decodes by
the spec alone (``cryptography`` used directly, not the package), and the package reads them."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sessionseal import _fts
from sessionseal.errors import IntegrityError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "docs" / "spec" / "vectors" / "fts-v1.json").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
import gen_fts_vectors as gen  # noqa: E402  (the generator's fixed inputs)

SEG: dict[str, Any] = VECTORS["segment"]
DELTA: dict[str, Any] = VECTORS["delta"]
VAULT = UUID(VECTORS["vault_id"])


def hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def spec_frames(data: bytes, kek: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """container-v1 read by the spec: unwrap the DEK under header[0:56], each frame's aad is
    header || u64 index || u8 type; payload = encoding byte 0 (raw) || data."""
    header = data[:116]
    assert header[:8] == b"\x89SSEAL\r\n" and header[8] == 1
    dek = AESGCM(kek).decrypt(header[56:68], header[68:116], header[:56])
    out, pos, index = [], 116, 0
    while pos < len(data):
        length, ftype = struct.unpack_from(">IB", data, pos)
        nonce, ct = data[pos + 5 : pos + 17], data[pos + 17 : pos + 4 + length]
        payload = AESGCM(dek).decrypt(nonce, ct, header + struct.pack(">QB", index, ftype))
        assert payload[0] == 0  # raw in the vectors
        out.append((ftype, payload[1:]))
        pos, index = pos + 4 + length, index + 1
    return header, out


def test_the_sub_keys_are_hkdf_of_the_segment_key_with_the_spec_labels() -> None:
    key = bytes.fromhex(SEG["key"])
    assert hkdf(key, b"sessionseal v1 fts seal").hex() == SEG["seal_key"]
    assert hkdf(key, b"sessionseal v1 fts terms").hex() == SEG["terms_key"]


def test_the_writer_reproduces_the_vector_bytes() -> None:
    assert gen.segment().hex() == SEG["file_hex"]
    assert gen.delta_log().hex() == DELTA["file_hex"]
    assert gen.vectors() == VECTORS


def test_the_segment_decodes_by_the_spec_alone() -> None:
    data = bytes.fromhex(SEG["file_hex"])
    header, frames = spec_frames(data, bytes.fromhex(SEG["seal_key"]))
    kind, flags, vault, obj, generation, epoch = struct.unpack_from(">BH16s16sQI", header, 9)
    assert (kind, flags, UUID(bytes=vault), UUID(bytes=obj), generation, epoch) == (
        9,
        0,
        VAULT,
        UUID(SEG["segment_id"]),
        1,
        0,
    )
    assert [t for t, _ in frames] == [f["type"] for f in SEG["frames"]]
    assert [p.hex() for _, p in frames] == [h[2:] for h in SEG["payloads_hex"]]
    # FTS_HEAD: version, the doc table, then the bucket and prefix tables.
    head = frames[0][1]
    assert head[0] == 1
    (n,) = struct.unpack_from(">I", head, 1)
    docs = [struct.unpack_from(">16sQIIII", head, 5 + 40 * i) for i in range(n)]
    assert [(str(UUID(bytes=d[0])), d[1]) for d in docs] == [(d["session_id"], d["generation"]) for d in SEG["docs"]]
    assert [list(d[2:]) for d in docs] == SEG["lengths"]
    nb, npf = struct.unpack_from(">II", head, 5 + 40 * n)
    where = [struct.unpack_from(">QI", head, 13 + 40 * n + 12 * i) for i in range(nb + npf)]
    first = SEG["frames"][1]["offset"]
    assert [(first + o, s) for o, s in where] == [(f["offset"], f["size"]) for f in SEG["frames"][1:]]
    # FTS_PREFIX: the word-like terms of the bucket their first 3 characters choose, and their dfs.
    for j in range(npf):
        prefix = frames[1 + nb + j][1]
        count, size = struct.unpack_from(">II", prefix, 0)
        terms = prefix[8 : 8 + size].decode().split("\n") if count else []
        assert len(prefix) == 8 + size + 4 * count
        for t in terms:
            mac = hmac.new(bytes.fromhex(SEG["terms_key"]), b"\x01" + t[:3].encode(), hashlib.sha256).digest()
            assert int.from_bytes(mac[:8], "big") % npf == j
        want = [len(SEG["terms"][t]["postings"]) for t in terms]
        assert list(struct.unpack_from(f">{count}I", prefix, 8 + size)) == want
    # FTS_BUCKET, in columns: the terms, their dfs, the widths, then ordinal deltas, tfs, masks.
    terms_key = bytes.fromhex(SEG["terms_key"])
    kinds = {1: "B", 2: "H", 4: "I"}
    for b in range(nb):
        bucket = frames[1 + b][1]
        count, size = struct.unpack_from(">II", bucket, 0)
        terms = bucket[8 : 8 + size].decode().split("\n")
        at = 8 + size
        assert len(terms) == count
        assert terms == sorted(terms, key=str.encode)
        dfs = struct.unpack_from(f">{count}I", bucket, at)
        wd, wt = bucket[at + 4 * count], bucket[at + 4 * count + 1]
        total, at = sum(dfs), at + 4 * count + 2
        deltas = struct.unpack_from(f">{total}{kinds[wd]}", bucket, at)
        tfs = struct.unpack_from(f">{total}{kinds[wt]}", bucket, at + wd * total)
        masks = bucket[at + (wd + wt) * total :]
        assert len(masks) == total
        first = 0
        for term, df in zip(terms, dfs, strict=True):
            mac = hmac.new(terms_key, b"\x00" + term.encode(), hashlib.sha256).digest()
            assert int.from_bytes(mac[:8], "big") % nb == b == SEG["terms"][term]["bucket"]
            ords = [sum(deltas[first : first + i + 1]) for i in range(df)]
            got = zip(ords, tfs[first : first + df], masks[first : first + df], strict=True)
            assert [list(x) for x in got] == SEG["terms"][term]["postings"]
            first += df
        assert sorted(terms) == sorted(t for t, v in SEG["terms"].items() if v["bucket"] == b)


def test_the_delta_log_decodes_by_the_spec_alone() -> None:
    data = bytes.fromhex(DELTA["file_hex"])
    header, frames = spec_frames(data, hkdf(bytes.fromhex(DELTA["key"]), b"sessionseal v1 fts seal"))
    assert header[9] == 10 and header[28:44] == bytes(16)
    assert [t for t, _ in frames] == [12] * len(DELTA["records"])
    for (_t, payload), want, rec in zip(frames, DELTA["payloads_hex"], DELTA["records"], strict=True):
        assert payload.hex() == want
        version, sid, gen_, *rest = struct.unpack_from(">B16sQIIIIQQQI", payload, 0)
        assert (version, str(UUID(bytes=sid)), gen_, rest[4:7]) == (
            1,
            rec["session_id"],
            rec["generation"],
            rec["stamp"],
        )


def test_the_package_reads_the_vectors_and_answers_the_queries(tmp_path: Path) -> None:
    path = tmp_path / "v.seg"
    path.write_bytes(bytes.fromhex(SEG["file_hex"]))
    with _fts.SegmentReader(path, VAULT, UUID(SEG["segment_id"]), bytes.fromhex(SEG["key"])) as seg:
        seg.verify()
        records = _fts.read_delta(bytes.fromhex(DELTA["file_hex"]), VAULT, bytes.fromhex(DELTA["key"]))
        index = _fts.FtsIndex([seg], records)
        for q, want in VECTORS["queries"].items():
            assert [[str(h.session_id), h.fields] for h in index.search(q)] == want, q


def test_a_wrong_key_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.seg"
    path.write_bytes(bytes.fromhex(SEG["file_hex"]))
    with pytest.raises(IntegrityError):
        _fts.SegmentReader(path, VAULT, UUID(SEG["segment_id"]), bytes(32))
    with pytest.raises(IntegrityError):
        _fts.read_delta(bytes.fromhex(DELTA["file_hex"]), VAULT, bytes(32))


MAN: dict[str, Any] = VECTORS["manifest"]


def test_the_manifest_decodes_by_the_spec_alone() -> None:
    """fts/manifest.sst, format 2: kind 8, object id zero, the kek the master key of its epoch,
    one BODY frame whose payload is the binary layout of docs/spec/fts-v1.md, "Manifest"."""
    data = bytes.fromhex(MAN["file_hex"])
    header, frames = spec_frames(data, bytes.fromhex(MAN["master_key"]))
    assert header[9] == 8 and header[28:44] == bytes(16) and header[12:28] == VAULT.bytes
    assert struct.unpack_from(">QI", header, 44) == (MAN["generation"], MAN["kek_epoch"])
    ((ftype, payload),) = frames
    assert ftype == 2 and payload.hex() == MAN["payload_hex"]  # BODY
    fmt, delta_id, delta_key, retire_after, r = struct.unpack_from(">B16s32sQI", payload, 0)
    assert (fmt, str(UUID(bytes=delta_id)), delta_key.hex(), retire_after) == (
        2,
        MAN["delta_id"],
        DELTA["key"],
        MAN["retire_after"],
    )
    at, retired = 61, {}
    for _ in range(r):
        n = payload[at]
        retired[payload[at + 1 : at + 1 + n].decode("ascii")] = payload[at + 1 + n : at + 17 + n].hex()
        at += 17 + n
    assert retired == MAN["retired"]
    (s,) = struct.unpack_from(">I", payload, at)
    segs = [struct.unpack_from(">16s32sQQI", payload, at + 4 + 68 * i) for i in range(s)]
    at += 4 + 68 * s
    assert [(str(UUID(bytes=i)), k.hex(), w, z) for i, k, w, z, _c in segs] == [
        (SEG["segment_id"], SEG["key"], MAN["segment"]["words"], MAN["segment"]["size"])
    ]
    (m,) = struct.unpack_from(">I", payload, at)
    assert m == sum(c for *_x, c in segs)
    sessions = [str(UUID(bytes=payload[at + 4 + 16 * i : at + 20 + 16 * i])) for i in range(m)]
    assert sessions == [d["session_id"] for d in SEG["docs"]]
    at += 4 + 16 * m
    (n,) = struct.unpack_from(">I", payload, at)
    ids = [str(UUID(bytes=payload[at + 4 + 16 * i : at + 20 + 16 * i])) for i in range(n)]
    vals = struct.unpack_from(f">{4 * n}Q", payload, at + 4 + 16 * n)
    assert at + 4 + 48 * n == len(payload)  # nothing after the stamps
    assert {sid: list(vals[4 * i : 4 * i + 4]) for i, sid in enumerate(ids)} == MAN["stamps"]


def test_the_package_reads_the_manifest_vector(tmp_path: Path) -> None:
    from sessionseal._fs import Dir
    from sessionseal._keystore import MasterKeys
    from sessionseal._vault._ftsfiles import MANIFEST, Manifest

    (tmp_path / "fts").mkdir(mode=0o700)
    (tmp_path / "fts" / MANIFEST).write_bytes(bytes.fromhex(MAN["file_hex"]))
    (tmp_path / "fts" / MANIFEST).chmod(0o600)
    fts = Dir(tmp_path / "fts")
    try:
        man = Manifest.load(fts, VAULT, MasterKeys({MAN["kek_epoch"]: bytes.fromhex(MAN["master_key"])}))
        with pytest.raises(IntegrityError):
            Manifest.load(fts, VAULT, MasterKeys({MAN["kek_epoch"]: bytes(32)}))
    finally:
        fts.close()
    assert (str(man.delta_id), man.delta_key.hex(), man.generation) == (
        MAN["delta_id"],
        DELTA["key"],
        MAN["generation"],
    )
    assert [(str(s.id), s.key.hex(), [str(x) for x in s.sessions]) for s in man.segments] == [
        (SEG["segment_id"], SEG["key"], [d["session_id"] for d in SEG["docs"]])
    ]
    assert {str(k): list(v) for k, v in man.stamps.items()} == MAN["stamps"]
    assert {n: t.hex() for n, t in man.retired.items()} == MAN["retired"]


def test_the_heads_checkpoint_decodes_by_the_spec_alone() -> None:
    """docs/spec/fts-v1.md, "Heads checkpoint": kind 10 under HKDF(delta key, "sessionseal v1 fts
    heads"), object id the log's id, generation the records covered, one BODY frame."""
    h = VECTORS["heads"]
    kek = hkdf(bytes.fromhex(DELTA["key"]), b"sessionseal v1 fts heads")
    assert kek.hex() == h["kek"]
    header, frames = spec_frames(bytes.fromhex(h["file_hex"]), kek)
    kind, flags, vault, obj, generation, epoch = struct.unpack_from(">BH16s16sQI", header, 9)
    assert (kind, flags, UUID(bytes=vault), UUID(bytes=obj), generation, epoch) == (
        10,
        0,
        VAULT,
        UUID(h["log_id"]),
        h["count"],
        0,
    )
    assert [t for t, _ in frames] == [2]  # BODY
    payload = frames[0][1]
    assert "00" + payload.hex() == h["payload_hex"]
    log = bytes.fromhex(DELTA["file_hex"])
    version, log_header, count, end, tail, n = struct.unpack_from(">B116sIQ16sI", payload, 0)
    assert (version, log_header, count, end, tail) == (1, log[:116], 2, len(log), log[-16:])
    assert (end, tail.hex()) == (h["end"], h["tail_hex"])
    ids = [payload[149 + 16 * i : 165 + 16 * i] for i in range(n)]
    assert ids == sorted(ids)
    vals = struct.unpack_from(f">{4 * n}Q", payload, 149 + 16 * n)
    assert len(payload) == 149 + 48 * n
    fold = {str(UUID(bytes=sid)): list(vals[4 * i : 4 * i + 4]) for i, sid in enumerate(ids)}
    assert fold == h["fold"]
    # The fold of the log's records, by the spec's rule (a later record at or above replaces).
    want: dict[str, list[int]] = {}
    for r in DELTA["records"]:
        if r["session_id"] not in want or r["generation"] >= want[r["session_id"]][0]:
            want[r["session_id"]] = [r["generation"], *r["stamp"]]
    assert fold == want


def test_the_package_reads_the_heads_vector_and_refuses_another_log_or_key() -> None:
    from sessionseal._vault._ftsheads import open_heads

    h = VECTORS["heads"]
    data, key = bytes.fromhex(h["file_hex"]), bytes.fromhex(DELTA["key"])
    got = open_heads(data, VAULT, UUID(h["log_id"]), key)
    assert {str(UUID(bytes=k)): list(v) for k, v in got.fold.items()} == h["fold"]
    for log_id, k in ((UUID(int=1), key), (UUID(h["log_id"]), bytes(32)), (UUID(int=0), key)):
        with pytest.raises(IntegrityError):
            open_heads(data, VAULT, log_id, k)
    for i in range(len(data)):  # every byte is authenticated
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            open_heads(bytes(bad), VAULT, UUID(h["log_id"]), key)
