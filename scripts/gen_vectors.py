#!/usr/bin/env python3
"""Generate the known-answer vectors in docs/spec/vectors/.

* ``container-v1.json``: the container (tests/unit/test_container_spec.py).  Fixed keys
  and nonces, raw (uncompressed) payloads, so the bytes do not depend on the zstd version.
* ``audit-log-v1.json``: the audit log's key derivation, canonical bodies, MACs, lines and
  a tamper matrix with the problem ``audit verify`` must report first
  (tests/unit/test_audit_spec.py).
* ``audit-log-v2.json``: format 2 records chained on from a format 1 record: the subjects'
  keys, tags and boxes (fixed nonces), and the box cases a reader must refuse.
* ``audit-log-v3.json``: format 3 records (a vault whose state is anchored in its key table):
  MACs under the audit key of each epoch across a rotation, the anchored head, the cases
  ``audit verify`` must reject, and which ``pending.log`` lines may be chained.
* ``keytable-state-v1.json``: the key table's ``TABLE_STATE`` payloads (the canonical JSON
  before zstd; docs/spec/container-v1.md, "Key table state"): a ``full`` frame, two ``delta``
  frames, the state after each, and payloads a reader must refuse (tests/unit/test_state.py).

Run it only when a format changes on purpose; the tests check the committed files
against the code.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import _audit, _container, _state
from sessionseal._container import FrameType, Kind

OUT = Path(__file__).resolve().parents[1] / "docs" / "spec" / "vectors" / "container-v1.json"
AUDIT_OUT = OUT.with_name("audit-log-v1.json")
AUDIT_V2_OUT = OUT.with_name("audit-log-v2.json")
AUDIT_V3_OUT = OUT.with_name("audit-log-v3.json")
STATE_OUT = OUT.with_name("keytable-state-v1.json")

VAULT = UUID("6f1b6f8e-3c0e-4b7a-9a51-2f8d0e4c1a11")
SESSION = UUID("0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22")
KEK = bytes(range(32))
DEK = bytes(range(32, 64))
META = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"vector"}'
BODY = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"vector","messages":[]}'
#: The appended vectors: the same wrap and first two frames, then two appended groups.
APPEND_NONCES = [bytes([n] * 12) for n in (1, 2, 3, 4, 5, 6, 7)]
NONCES = APPEND_NONCES[:3]  # the wrap, META and BODY of the first version
EVENTS = b'{"ops":[{"op":"message","value":{"role":"user","content":[{"type":"text","text":"hi"}]}}]}'
META2 = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"vector","message_count":1}'
EVENTS2 = b'{"ops":[{"op":"set","value":{"title":"renamed"}}]}'
META3 = b'{"id":"0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c22","title":"renamed","message_count":1}'
APPENDED = [
    (FrameType.META, META),
    (FrameType.BODY, BODY),
    (FrameType.EVENTS, EVENTS),
    (FrameType.META, META2),
    (FrameType.EVENTS, EVENTS2),
    (FrameType.META, META3),
]


def raw(data: bytes) -> bytes:
    return b"\x00" + data


def base() -> bytes:
    # The first version alone: the same key and nonces as the appended vector's first frames.
    return appended(frames=APPENDED[:2])


def appended(session: UUID = SESSION, frames: list[tuple[int, bytes]] = APPENDED) -> bytes:
    return _container.seal(
        kind=Kind.SESSION,
        vault_id=VAULT,
        object_id=session,
        generation=7,
        kek=KEK,
        kek_epoch=0,
        frames=[(t, raw(p)) for t, p in frames],
        dek=DEK,
        nonces=iter(APPEND_NONCES),
    )


def split_frames(data: bytes) -> list[bytes]:
    out, pos = [], _container.HEADER_SIZE
    while pos < len(data):
        end = pos + 4 + struct.unpack_from(">I", data, pos)[0]
        out.append(data[pos:end])
        pos = end
    return out


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
        {
            "name": "flipped bit in the body tag",
            "expect": "integrity failure",
            **common,
            "container": flip(good, len(good) - 1).hex(),
        },
        {
            "name": "flipped bit in the generation",
            "expect": "integrity failure",
            **common,
            "container": flip(good, 50).hex(),
        },
        {
            "name": "flipped bit in the wrapped data key",
            "expect": "integrity failure",
            **common,
            "container": flip(good, 80).hex(),
        },
        {"name": "bad magic", "expect": "integrity failure", **common, "container": flip(good, 0).hex()},
        {
            "name": "newer format version",
            "expect": "unsupported version",
            **common,
            "container": (good[:8] + b"\x02" + good[9:]).hex(),
        },
        {"name": "unknown flag set", "expect": "integrity failure", **common, "container": flip(good, 11).hex()},
        {
            "name": "frames reordered",
            "expect": "integrity failure",
            **common,
            "container": (good[:h] + body_frame + meta_frame).hex(),
        },
        {
            "name": "last frame dropped",
            "expect": "integrity failure (missing body)",
            **common,
            "container": (good[:h] + meta_frame).hex(),
        },
        {
            "name": "truncated inside the last frame",
            "expect": "integrity failure",
            **common,
            "container": good[:-5].hex(),
        },
        {
            "name": "trailing bytes that cannot start a frame",
            "expect": "integrity failure",
            **common,
            "container": (good + b"\x00\x00\x00\x01\x03").hex(),
        },
        {
            "name": "wrong key-encryption key",
            "expect": "integrity failure",
            **common,
            "kek": bytes(32).hex(),
            "container": good.hex(),
        },
    ]
    vectors += appended_vectors(common)
    vectors += checkpoint_vectors(common, good)
    OUT.write_text(json.dumps({"format": "sessionseal container v1", "vectors": vectors}, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUT}")
    audit()
    audit_v2()
    audit_v3()
    bundle()
    key_table_state()


def bundle() -> None:
    """A bundle (docs/spec/bundle-v1.md): scrypt 2^14, raw payloads, fixed salt, id, key, nonces."""
    from sessionseal import _export

    docs = [BODY]
    manifest = {"format": "sessionseal bundle", "sessions": [str(SESSION)]}
    salt, bundle_id, dek = bytes(range(200, 216)), UUID("5b0d1e00-0000-4000-8000-00000000b0b0"), bytes(range(96, 128))
    nonces = [bytes([n] * 12) for n in (20, 21, 22)]
    good = _export.seal_bundle(
        docs,
        manifest,
        b"vector passphrase",
        log2_n=14,
        compress=False,
        _fixed=(salt, bundle_id, dek, iter(nonces)),
    )
    doc: dict[str, Any] = {
        "format": "sessionseal bundle v1",
        "passphrase": "vector passphrase",
        "log2_n": 14,
        "salt": salt.hex(),
        "bundle_id": str(bundle_id),
        "dek": dek.hex(),
        "nonces": [n.hex() for n in nonces],
        "manifest": manifest,
        "documents": [d.decode() for d in docs],
        "bundle": good.hex(),
        "failures": [
            {"name": "wrong passphrase", "passphrase": "not it", "expect": "wrong passphrase", "bundle": good.hex()},
            {
                "name": "flipped bit in the last frame",
                "expect": "integrity failure",
                "bundle": flip(good, len(good) - 1).hex(),
            },
            {"name": "flipped bit in the salt", "expect": "wrong passphrase", "bundle": flip(good, 20).hex()},
            {
                "name": "flipped bit in the session count",
                "expect": "wrong passphrase",
                "bundle": flip(good, 28 + 51).hex(),
            },
            {
                "name": "last session frame dropped",
                "expect": "integrity failure",
                "bundle": good[: 28 + _container.HEADER_SIZE + 4 + struct.unpack_from(">I", good, 28 + 116)[0]].hex(),
            },
            {
                "name": "scrypt cost 2^40",
                "expect": "integrity failure",
                "bundle": (good[:9] + b"\x28" + good[10:]).hex(),
            },
            {
                "name": "newer bundle version",
                "expect": "unsupported version",
                "bundle": (good[:8] + b"\x02" + good[9:]).hex(),
            },
        ],
    }
    out = OUT.with_name("bundle-v1.json")
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote a bundle and {len(doc['failures'])} failure cases to {out}")


def appended_vectors(common: dict[str, str]) -> list[dict[str, object]]:
    """A session with two appended groups, and what a reader must do with each kind of damage."""
    full = appended()
    h = _container.HEADER_SIZE
    f = split_frames(full)  # META, BODY, EVENTS, META2, EVENTS2, META3
    head = full[:h]
    other = split_frames(appended(UUID("0a4d55a8-d1e0-4d2b-8c6e-5b1e9a7f3c99")))
    committed_first = [{"type": t, "payload": raw(p).hex()} for t, p in APPENDED[:4]]
    return [
        {
            "name": "session container with two appended groups",
            "expect": "success",
            **common,
            "dek": DEK.hex(),
            "nonces": [n.hex() for n in APPEND_NONCES],
            "kind": Kind.SESSION,
            "generation": 7,
            "kek_epoch": 0,
            "frames": [{"type": t, "payload": raw(p).hex()} for t, p in APPENDED],
            "container": full.hex(),
        },
        {
            "name": "torn append: cut inside the last META",
            "expect": "torn append ignored",
            **common,
            "frames": committed_first,
            "container": full[:-3].hex(),
        },
        {
            "name": "torn append: EVENTS without its META",
            "expect": "torn append ignored",
            **common,
            "frames": committed_first,
            "container": (head + b"".join(f[:5])).hex(),
        },
        {
            "name": "torn append: cut inside the length of the next frame",
            "expect": "torn append ignored",
            **common,
            "frames": committed_first,
            "container": (head + b"".join(f[:4]) + f[4][:3]).hex(),
        },
        {
            "name": "appended group dropped from the middle",
            "expect": "integrity failure",
            **common,
            "container": (head + b"".join(f[:2] + f[4:])).hex(),
        },
        {
            "name": "appended frames swapped",
            "expect": "integrity failure",
            **common,
            "container": (head + b"".join([f[0], f[1], f[3], f[2], f[4], f[5]])).hex(),
        },
        {
            "name": "appended group of another session",
            "expect": "integrity failure",
            **common,
            "container": (head + b"".join(f[:2] + other[2:4])).hex(),
        },
        {
            "name": "flipped bit in an appended EVENTS frame",
            "expect": "integrity failure",
            **common,
            "container": (head + b"".join(f[:2]) + flip(f[2], 20) + b"".join(f[3:])).hex(),
        },
        {
            "name": "two EVENTS frames in a row",
            "expect": "integrity failure",
            **common,
            "container": appended(frames=[*APPENDED[:3], (FrameType.EVENTS, EVENTS2), (FrameType.META, META3)]).hex(),
        },
    ]


CKPT_DEK = bytes(range(64, 96))
CKPT_NONCES = [bytes([n] * 12) for n in (8, 9, 10, 11, 12)]
CKPT_META = b'{"number":3,"name":"before refactor","reason":"manual"}'


def checkpoint(frames: list[tuple[int, bytes]], number: int = 3) -> bytes:
    return _container.seal(
        kind=Kind.CHECKPOINT,
        vault_id=VAULT,
        object_id=SESSION,
        generation=number,
        kek=KEK,
        kek_epoch=0,
        frames=[(t, raw(p)) for t, p in frames],
        dek=CKPT_DEK,
        nonces=iter(CKPT_NONCES),
    )


def checkpoint_vectors(common: dict[str, str], session: bytes) -> list[dict[str, object]]:
    """A checkpoint (kind 6): opened as checkpoint *number* of the session ("checkpoint": n)."""
    frames = [(FrameType.META, CKPT_META), (FrameType.BODY, BODY)]
    cp = checkpoint(frames)
    return [
        {
            "name": "checkpoint container, number 3",
            "expect": "success",
            **common,
            "checkpoint": 3,
            "dek": CKPT_DEK.hex(),
            "nonces": [n.hex() for n in CKPT_NONCES[:3]],
            "kind": Kind.CHECKPOINT,
            "generation": 3,
            "kek_epoch": 0,
            "frames": [{"type": t, "payload": raw(p).hex()} for t, p in frames],
            "container": cp.hex(),
        },
        {
            "name": "checkpoint opened as another number",
            "expect": "integrity failure",
            **common,
            "checkpoint": 4,
            "container": cp.hex(),
        },
        {"name": "checkpoint opened as a session", "expect": "integrity failure", **common, "container": cp.hex()},
        {
            "name": "session opened as a checkpoint of its generation",
            "expect": "integrity failure",
            **common,
            "checkpoint": 7,
            "container": session.hex(),
        },
        {
            "name": "checkpoint with an appended group",
            "expect": "integrity failure",
            **common,
            "checkpoint": 3,
            "container": checkpoint([*frames, (FrameType.EVENTS, EVENTS), (FrameType.META, META2)]).hex(),
        },
    ]


def audit() -> None:
    secret = bytes(range(100, 132))
    mac_key, anchor_key = _audit.AuditLog.keys(secret)
    who = {"user": "ren\u00e9e", "uid": 1001, "pid": 4242, "host": "ws-7", "program": "sessionseal", "version": "0.1.0"}
    bodies: list[dict[str, object]] = [
        {"action": "init", "outcome": "ok", "time": "2026-11-21T09:00:00.000000Z"},
        {
            "action": "save",
            "outcome": "ok",
            "time": "2026-11-21T09:00:01.250000Z",
            "session": str(SESSION),
            "bytes": 5120,
            "redactions": {"github-pat": 2, "aws-access-key-id": 1},
        },
        {
            "action": "load",
            "outcome": "error",
            "error": "SessionNotFound",
            "time": "2026-11-21T09:00:02.000000Z",
            "session": "(not a session id)",
        },
        {
            "action": "open",
            "outcome": "denied",
            "error": "WrongPassphrase",
            "time": "2026-11-21T09:00:03.000000Z",
            "unkeyed": True,
        },
    ]
    records: list[dict[str, Any]] = []
    lines, prev = [], "0" * 64
    for seq, extra in enumerate(bodies, 1):
        fields = {"v": 1, "seq": seq, "prev": prev, **who, **extra}
        line, mac = _audit.record_line(mac_key, fields)
        records.append({"fields": fields, "body": _audit.canonical(fields).decode(), "mac": mac, "line": line.decode()})
        lines.append(line)
        prev = mac
    anchor = {"seq": len(lines), "mac": prev}

    def forged(i: int, **change: object) -> bytes:
        # A record re-MACed under a key the attacker does not have.
        fields = {**records[i]["fields"], **change}
        return _audit.record_line(b"\x00" * 32, fields)[0]

    def resealed(i: int, **change: object) -> bytes:
        # A record whose MAC is right but whose place in the chain is not.
        return _audit.record_line(mac_key, {**records[i]["fields"], **change})[0]

    def uncanonical(i: int) -> bytes:
        # What a buggy writer with the key would store: a right MAC over a non-canonical body.
        body = _audit.canonical(records[i]["fields"]).replace(b'{"action"', b'{ "action"')
        mac = _audit.record_mac(mac_key, body).encode()
        return body[:-1] + b',"mac":"' + mac + b'"}\n'

    edited = lines[1].replace(b'"bytes":5120', b'"bytes":5121')
    tampered = [
        ("a field edited", [lines[0], edited, *lines[2:]], anchor, 2, "bad-mac"),
        ("a record deleted", [lines[0], *lines[2:]], anchor, 3, "out-of-sequence"),
        ("a forged record inserted", [lines[0], forged(0, seq=2, action="delete"), *lines[1:]], anchor, 2, "bad-mac"),
        ("two records swapped", [lines[0], lines[2], lines[1], lines[3]], anchor, 3, "out-of-sequence"),
        ("the tail cut off", lines[:2], anchor, 4, "truncated"),
        ("replaced by an older copy", lines[:3], anchor, 4, "truncated"),
        (
            "a record re-chained to another predecessor",
            [lines[0], resealed(1, prev=records[0]["fields"]["prev"]), *lines[2:]],
            anchor,
            2,
            "broken-chain",
        ),
        (
            "a record re-encoded (not canonical)",
            [lines[0], lines[1].replace(b'{"action"', b'{ "action"'), *lines[2:]],
            anchor,
            2,
            "bad-mac",
        ),
        (
            "a validly MACed record that is not canonical",
            [lines[0], uncanonical(1), *lines[2:]],
            anchor,
            2,
            "not-canonical",
        ),
        (
            "a whole log with a different history",
            [resealed(0, time="2026-01-01T00:00:00.000000Z")],
            {"seq": 1, "mac": records[0]["mac"]},
            1,
            "replaced",
        ),
        ("a garbage line in the middle", [lines[0], b"not a record\n", *lines[1:]], anchor, None, "bad-line"),
    ]
    doc = {
        "format": "sessionseal audit log v1",
        "vault_secret": secret.hex(),
        "mac_key": mac_key.hex(),
        "anchor_key": anchor_key.hex(),
        "records": records,
        "log": b"".join(lines).decode(),
        "anchor": anchor,
        "tampered": [
            {"name": name, "log": b"".join(log).decode(), "anchor": anc, "first_bad_seq": seq, "problem": code}
            for name, log, anc, seq, code in tampered
        ],
    }
    AUDIT_OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {len(records)} records and {len(tampered)} tamper cases to {AUDIT_OUT}")


def audit_v2() -> None:
    secret = bytes(range(100, 132))
    mac_key, anchor_key = _audit.AuditLog.keys(secret)
    who = {"user": "dev", "uid": 1001, "pid": 4242, "host": "ws-7", "program": "sessionseal", "version": "0.2.0"}
    ids = [SESSION, UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")]
    keys = [bytes(range(200, 232)), bytes(range(1, 33))]
    sessions = []
    for sid, key in zip(ids, keys, strict=True):
        tag_key, box_key = _audit.subject_keys(key)
        sessions.append(
            {
                "id": str(sid),
                "key": key.hex(),
                "tag_key": tag_key.hex(),
                "box_key": box_key.hex(),
                "tag": _audit.subject_tag(tag_key),
            }
        )
    # (time, action, clear fields, subjects: (role, session index, values or None))
    plan: list[tuple[str, str, dict[str, object], list[tuple[str, int, dict[str, object] | None]]]] = [
        (
            "2026-11-21T09:00:01.250000Z",
            "save",
            {"outcome": "ok"},
            [
                (
                    "session",
                    0,
                    {"id": str(ids[0]), "bytes": 5120, "redactions": {"aws-access-key-id": 1, "github-pat": 2}},
                )
            ],
        ),
        (
            "2026-11-21T09:00:02.000000Z",
            "export",
            {"outcome": "ok", "detail": {"file": True, "format": "bundle", "plaintext": False, "sessions": 2}},
            [
                (
                    "exported",
                    i,
                    {"id": str(ids[i]), "file": "handover.bundle", "format": "bundle", "bytes": 9001, "sessions": 2},
                )
                for i in (0, 1)
            ],
        ),
        (
            "2026-11-21T09:00:03.000000Z",
            "search",
            {"outcome": "ok", "detail": {"hits": 1, "scanned": 2}},
            [("match", 1, None)],
        ),
        (
            "2026-11-21T09:00:04.000000Z",
            "load",
            {"outcome": "error", "error": "SessionNotFound", "session": "(not in the vault)"},
            [],
        ),
        (
            "2026-11-21T09:00:05.000000Z",
            "delete",
            {"outcome": "ok", "detail": {"epoch": 3, "overwritten": True}},
            [("session", 0, None)],
        ),
    ]
    # Record 1 is a format 1 record, as a log upgraded in place starts: format 2 chains on from it.
    v1 = {
        "v": 1,
        "seq": 1,
        "prev": "0" * 64,
        **who,
        "action": "init",
        "outcome": "ok",
        "time": "2026-11-21T09:00:00.000000Z",
    }
    line, prev = _audit.record_line(mac_key, v1)
    records: list[dict[str, Any]] = [
        {"fields": v1, "body": _audit.canonical(v1).decode(), "mac": prev, "line": line.decode(), "subjects": []}
    ]
    lines = [line]
    nonce = 0
    for seq, (time, action, clear, subjects) in enumerate(plan, 2):
        entries, inputs = [], []
        for role, i, values in subjects:
            tag = sessions[i]["tag"]
            entry: dict[str, object] = {"role": role, "tag": tag}
            given: dict[str, object] = {"role": role, "session": i, "values": values}
            if values is not None:
                nonce += 1
                n = bytes([nonce]) * 12
                ad = _audit.box_ad(VAULT, seq, action, role, tag)
                entry["box"] = _audit.seal_box(_audit.subject_keys(keys[i])[1], values, ad, nonce=n)
                given.update(nonce=n.hex(), ad=ad.decode())
            entries.append(entry)
            inputs.append(given)
        fields = {"v": 2, "seq": seq, "prev": prev, **who, "time": time, "action": action, **clear}
        if entries:
            fields["subjects"] = entries
        line, mac = _audit.record_line(mac_key, fields)
        records.append(
            {
                "fields": fields,
                "body": _audit.canonical(fields).decode(),
                "mac": mac,
                "line": line.decode(),
                "subjects": inputs,
            }
        )
        lines.append(line)
        prev = mac
    anchor = {"seq": len(lines), "mac": prev}

    # A box moved into another record by someone with the MAC key (the vault secret) but
    # not the session's key: the chain verifies, the box does not open in its new place.
    moved_fields = {**records[2]["fields"], "subjects": [records[1]["fields"]["subjects"][0]]}
    moved_line, _ = _audit.record_line(mac_key, moved_fields)
    doc = {
        "format": "sessionseal audit log v2",
        "vault_id": str(VAULT),
        "vault_secret": secret.hex(),
        "mac_key": mac_key.hex(),
        "anchor_key": anchor_key.hex(),
        "labels": {
            "tag": _audit.LABEL_TAG.decode(),
            "box": _audit.LABEL_BOX.decode(),
            "tag_input": _audit.TAG_INPUT.decode(),
        },
        "sessions": sessions,
        "records": records,
        "log": b"".join(lines).decode(),
        "anchor": anchor,
        "moved_box": {"seq": 3, "line": moved_line.decode(), "expect": "the box does not open"},
    }
    AUDIT_V2_OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {len(records)} records to {AUDIT_V2_OUT}")


def audit_v3() -> None:
    """Format 3: the MAC key of each record is the audit key of its epoch ``k`` (issue 20)."""
    secret = bytes(range(140, 172))
    keys = {1: bytes(range(10, 42)), 2: bytes(range(60, 92))}
    created = "2026-11-22T08:00:00.000000Z"
    who = {"user": "dev", "uid": 1001, "pid": 4242, "host": "ws-7", "program": "sessionseal", "version": "0.3.0"}
    refused = {**who, "pid": 4300, "action": "open", "outcome": "denied", "error": "WrongPassphrase"}
    plan: list[tuple[int, dict[str, object]]] = [
        (1, {"action": "init", "outcome": "ok", "detail": {"key_provider": "keychain"}, **who}),
        (1, {"action": "list", "outcome": "ok", "detail": {"problems": 0, "sessions": 0}, **who}),
        (2, {"action": "rekey", "outcome": "ok", "detail": {"epoch": 2, "from_epoch": 1}, **who}),
        (2, {**refused, "unkeyed": True, "time": "2026-11-22T08:00:03.500000Z"}),
        (2, {"action": "audit.pending-dropped", "outcome": "ok", "detail": {"dropped": 1}, **who}),
        (2, {"action": "list", "outcome": "ok", "detail": {"problems": 0, "sessions": 0}, **who}),
    ]
    records: list[dict[str, Any]] = []
    lines: list[bytes] = []
    prev = "0" * 64
    for seq, (k, rec) in enumerate(plan, 1):
        fields = {"time": f"2026-11-22T08:00:0{seq}.000000Z", **rec, "v": 3, "k": k, "seq": seq, "prev": prev}
        line, mac = _audit.record_line(keys[k], fields)
        body = _audit.canonical(fields).decode()
        records.append({"fields": fields, "key_epoch": k, "body": body, "mac": mac, "line": line.decode()})
        lines.append(line)
        prev = mac
    head = {"seq": len(lines), "mac": prev, "base_seq": 0, "base_mac": "0" * 64}

    def made(seq: int, k: int, key: bytes, **change: object) -> bytes:
        """Record *seq* re-made with *change*, MACed under *key* (chained on from record seq-1)."""
        fields = {**records[seq - 1]["fields"], **change}
        if k == 0:
            fields.pop("k")
        else:
            fields["k"] = k
        return _audit.record_line(key, fields)[0]

    legacy_key, _ = _audit.AuditLog.keys(secret)
    restarted = dict(records[1]["fields"], seq=1, prev="0" * 64, k=2)
    tampered: list[tuple[str, list[bytes], dict[str, Any] | None, bool, int | None, str]] = [
        ("the log rolled back to an older copy", lines[:3], head, False, 6, "truncated"),
        ("the log removed", [], head, False, 6, "truncated"),
        ("the log removed before any record was anchored", [], None, True, None, "log-missing"),
        (
            "a record MACed under the vault secret's key after keyed ones",
            [*lines[:5], made(6, 0, legacy_key)],
            head,
            False,
            6,
            "key-epoch",
        ),
        (
            "a record naming an epoch the vault does not hold",
            [*lines[:5], made(6, 9, bytes(32))],
            head,
            False,
            6,
            "key-epoch",
        ),
        ("a record under an older epoch", [*lines[:5], made(6, 1, keys[1])], head, False, 6, "key-epoch"),
        (
            "a chain started again without its init",
            [_audit.record_line(keys[2], restarted)[0]],
            None,
            True,
            1,
            "no-init",
        ),
        (
            "record 1 older than the vault",
            [made(1, 1, keys[1], time="2026-01-01T00:00:00.000000Z")],
            None,
            True,
            1,
            "before-creation",
        ),
    ]
    after, now = "2026-11-22T08:00:06.000000Z", "2026-11-22T09:00:00.000000Z"
    fine = {**refused, "time": "2026-11-22T08:30:00.000000Z"}
    pending = [
        ("a refused open of the fixed shape", fine, True),
        ("another action", {**fine, "action": "delete"}, False),
        ("outcome ok", {**fine, "outcome": "ok"}, False),
        ("an error class sessionseal does not have", {**fine, "error": "Forged"}, False),
        ("another user", {**fine, "user": "mallory"}, False),
        ("another uid", {**fine, "uid": 4242}, False),
        ("a field more", {**fine, "session": "(withheld)"}, False),
        ("a field less", {k: v for k, v in fine.items() if k != "host"}, False),
        ("before the last chained record", {**fine, "time": "2026-11-22T08:00:05.000000Z"}, False),
        ("in the future", {**fine, "time": "2026-11-22T10:00:00.000000Z"}, False),
    ]
    doc = {
        "format": "sessionseal audit log v3",
        "vault_id": str(VAULT),
        "vault_secret": secret.hex(),
        "audit_keys": {str(k): v.hex() for k, v in keys.items()},
        "created": created,
        "records": records,
        "log": b"".join(lines).decode(),
        "head": head,
        "tampered": [
            {
                "name": name,
                "log": b"".join(log).decode(),
                "head": h,
                "sessions": sessions,
                "first_bad_seq": seq,
                "problem": code,
            }
            for name, log, h, sessions, seq, code in tampered
        ],
        "pending": {
            "owner": {"uid": who["uid"], "user": who["user"]},
            "after": after,
            "now": now,
            "cases": [{"name": n, "record": r, "chained": c} for n, r, c in pending],
        },
    }
    AUDIT_V3_OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {len(records)} records and {len(tampered)} tamper cases to {AUDIT_V3_OUT}")


def _state_json(state: _state.VaultState) -> dict[str, Any]:
    """The state as the vectors show it (what a reader must hold after the frames)."""
    doc: dict[str, Any] = json.loads(_state.encode_full(state))
    return {**doc, "t": None}


def key_table_state() -> None:
    """The key table's anchored state (issue 20): payloads, and the state after each."""
    a, b, c = (bytes([n]) * 16 for n in (0xA1, 0xB2, 0xC3))
    full = _state.VaultState(
        tracked=True,
        counter=41,
        marks={a: (3, 1290), b: (1, 377)},
        tombs={bytes(range(16))},
        config=(2, "5e" * 32),
        audit=_state.AuditHead(118, "7d" * 32),
        audit_keys={1: bytes(range(32)), 2: bytes(range(32, 64))},
        index=9,
        head=(40, 1796550000),
    )
    steps: list[tuple[str, bytes]] = [("full", _state.encode_full(full))]
    deltas = [
        _state.StateChange(marks={c: (1, 512), a: (3, 1500)}, audit=_state.AuditHead(119, "8e" * 32)),
        _state.StateChange(
            unmarks={b}, tombs={bytes(range(16, 32))}, untombs={bytes(range(16))}, config=(3, "6f" * 32), index=10
        ),
    ]
    state = _state.VaultState()
    out = []
    for name, payload in steps + [(f"delta {i + 1}", _state.encode_change(42 + i, d)) for i, d in enumerate(deltas)]:
        _state.decode_frame(state, payload)
        out.append({"name": name, "payload": payload.decode(), "state_after": _state_json(state)})
    refused = [
        ("a delta that skips a counter", _state.encode_change(45, deltas[0])),
        ("a delta replayed", _state.encode_change(43, deltas[0])),
        (
            "a mark that is not [generation, size]",
            b'{"counter":44,"marks":{"' + a.hex().encode() + b'":[1]},"t":"delta"}',
        ),
        ("an id of 15 bytes", b'{"counter":44,"t":"delta","unmarks":["' + a.hex()[:30].encode() + b'"]}'),
        ("an unknown frame kind", b'{"counter":44,"t":"snapshot"}'),
        ("not JSON", b"\x00"),
    ]
    doc = {
        "format": "sessionseal key table state v1 (TABLE_STATE payloads before zstd)",
        "frames": out,
        "refused_after_frames": [{"name": n, "payload": p.decode("latin-1")} for n, p in refused],
    }
    STATE_OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {len(out)} state frames and {len(refused)} refused payloads to {STATE_OUT}")


if __name__ == "__main__":
    main()
