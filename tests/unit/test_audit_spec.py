"""The audit log, as docs/spec/audit-log.md specifies it: the committed known-answer vectors.

The vectors fix the key derivation, the canonical body, the MAC and the stored line of
four records, and a tamper matrix: each case is a log (and anchor) that ``audit verify``
must reject, naming the first bad record and the problem code the spec lists.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionseal import _audit
from sessionseal._audit import Anchor, AuditLog, canonical, record_line, split_line
from sessionseal._fs import Dir

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "audit-log-v1.json"
DOC: dict[str, Any] = json.loads(VECTORS.read_text())
VAULT_ID = uuid.UUID("6f1b6f8e-3c0e-4b7a-9a51-2f8d0e4c1a11")


def _verify(tmp_path: Path, log: str, anchor: dict[str, Any]) -> _audit.VerifyReport:
    """Write *log* and a genuine anchor into a fresh audit directory and verify it."""
    root_path = tmp_path / "vault"
    os.mkdir(root_path, 0o700)
    root = Dir(root_path)
    locks = root.sub("locks", create=True)
    audit = root.sub("audit", create=True)
    secret = bytes.fromhex(DOC["vault_secret"])
    _, anchor_key = AuditLog.keys(secret)
    log_obj = AuditLog(root, locks, VAULT_ID)
    audit.write_atomic(_audit.CURRENT, log.encode("ascii"))
    log_obj._write_anchor(audit, anchor_key, Anchor(seq=anchor["seq"], mac=anchor["mac"]))
    try:
        return log_obj.verify(secret)
    finally:
        log_obj.close()
        audit.close()
        locks.close()
        root.close()


def test_keys_derive_from_the_vault_secret_with_hkdf_labels() -> None:
    mac_key, anchor_key = AuditLog.keys(bytes.fromhex(DOC["vault_secret"]))
    assert (mac_key.hex(), anchor_key.hex()) == (DOC["mac_key"], DOC["anchor_key"])


@pytest.mark.parametrize("record", DOC["records"], ids=lambda r: r["fields"]["action"])
def test_each_record_has_the_published_body_mac_and_line(record: dict[str, Any]) -> None:
    key = bytes.fromhex(DOC["mac_key"])
    assert canonical(record["fields"]).decode() == record["body"]
    line, mac = record_line(key, record["fields"])
    assert (line.decode(), mac) == (record["line"], record["mac"])
    # A reader gets the exact body bytes back from the line, without re-encoding.
    assert split_line(line.rstrip(b"\n")) == (record["body"].encode(), record["mac"])
    assert record["line"].isascii() and json.loads(record["line"])["mac"] == record["mac"]


def test_records_chain_through_prev() -> None:
    records = DOC["records"]
    assert records[0]["fields"]["prev"] == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after["fields"]["prev"] == before["mac"]
    assert DOC["log"] == "".join(r["line"] for r in records)
    assert DOC["anchor"] == {"seq": len(records), "mac": records[-1]["mac"]}


def test_the_published_log_verifies(tmp_path: Path) -> None:
    report = _verify(tmp_path, DOC["log"], DOC["anchor"])
    assert report.ok and report.problems == []
    assert (report.records, report.first_seq, report.last_seq) == (4, 1, 4)


@pytest.mark.parametrize("case", DOC["tampered"], ids=lambda c: c["name"].replace(" ", "-"))
def test_every_tampering_is_reported_at_its_first_bad_record(tmp_path: Path, case: dict[str, Any]) -> None:
    report = _verify(tmp_path, case["log"], case["anchor"])
    assert not report.ok
    first = next(p for p in report.problems if p.severity == "error")
    assert (first.code, first.seq) == (case["problem"], case["first_bad_seq"])
    assert first.describe()  # a one-line message for the CLI


# -- format 2: subjects (docs/spec/audit-log.md, "Subjects") -----------------------------------

V2: dict[str, Any] = json.loads(VECTORS.with_name("audit-log-v2.json").read_text())


def test_v2_subject_keys_and_tags_derive_from_each_sessions_key() -> None:
    from sessionseal._audit import subject_keys, subject_tag

    assert AuditLog.keys(bytes.fromhex(V2["vault_secret"]))[0].hex() == V2["mac_key"]
    for s in V2["sessions"]:
        tag_key, box_key = subject_keys(bytes.fromhex(s["key"]))
        assert (tag_key.hex(), box_key.hex(), subject_tag(tag_key)) == (s["tag_key"], s["box_key"], s["tag"])


@pytest.mark.parametrize("record", V2["records"], ids=lambda r: f"{r['fields']['seq']}-{r['fields']['action']}")
def test_v2_each_record_has_the_published_boxes_body_mac_and_line(record: dict[str, Any]) -> None:
    from sessionseal._audit import box_ad, open_box, seal_box

    fields = record["fields"]
    for given, entry in zip(record["subjects"], fields.get("subjects", []), strict=True):
        s = V2["sessions"][given["session"]]
        assert (entry["role"], entry["tag"]) == (given["role"], s["tag"])
        if given["values"] is None:
            assert "box" not in entry
            continue
        ad = box_ad(uuid.UUID(V2["vault_id"]), fields["seq"], fields["action"], given["role"], s["tag"])
        assert ad.decode() == given["ad"]
        box_key = bytes.fromhex(s["box_key"])
        assert seal_box(box_key, given["values"], ad, nonce=bytes.fromhex(given["nonce"])) == entry["box"]
        assert open_box(box_key, entry["box"], ad) == given["values"]
    key = bytes.fromhex(V2["mac_key"])
    line, mac = record_line(key, fields)
    assert (canonical(fields).decode(), line.decode(), mac) == (record["body"], record["line"], record["mac"])
    # Nothing that identifies or measures a session is in the clear of a format 2 record.
    if fields["v"] == 2:
        assert not {"bytes", "redactions"} & set(fields)
        for s in V2["sessions"]:
            assert s["id"] not in record["line"] and uuid.UUID(s["id"]).hex not in record["line"]


def test_v2_records_chain_on_from_a_format_1_record_and_verify(tmp_path: Path) -> None:
    records = V2["records"]
    assert records[0]["fields"]["v"] == 1 and {r["fields"]["v"] for r in records[1:]} == {2}
    for before, after in itertools.pairwise(records):
        assert after["fields"]["prev"] == before["mac"]
    assert V2["log"] == "".join(r["line"] for r in records)
    global DOC
    saved, DOC = DOC, V2  # _verify takes the secret from DOC
    try:
        report = _verify(tmp_path, V2["log"], V2["anchor"])
    finally:
        DOC = saved
    assert report.ok and (report.records, report.last_seq) == (len(records), len(records))


def test_v2_a_box_moved_to_another_record_does_not_open() -> None:
    from sessionseal._audit import box_ad, open_box
    from sessionseal.errors import IntegrityError

    case = V2["moved_box"]
    moved = json.loads(case["line"])
    [entry] = moved["subjects"]
    s = next(s for s in V2["sessions"] if s["tag"] == entry["tag"])
    ad = box_ad(uuid.UUID(V2["vault_id"]), moved["seq"], moved["action"], entry["role"], entry["tag"])
    with pytest.raises(IntegrityError):
        open_box(bytes.fromhex(s["box_key"]), entry["box"], ad)


# -- format 3: the audit keys of the vault's anchored state (issue 20) --------------------

V3: dict[str, Any] = json.loads(VECTORS.with_name("audit-log-v3.json").read_text())


def _chain(head: dict[str, Any] | None, *, sessions: bool = False) -> _audit.Chain:
    keys = {int(k): bytes.fromhex(v) for k, v in V3["audit_keys"].items()}
    return _audit.Chain(
        keys=keys,
        head=None if head is None else Anchor(head["seq"], head["mac"], head["base_seq"], head["base_mac"]),
        created=V3["created"],
        sessions=sessions,
    )


def _verify_v3(tmp_path: Path, log: str, chain: _audit.Chain) -> _audit.VerifyReport:
    """Write *log* into a fresh audit directory (no anchor.sst: the head is *chain*'s) and verify it."""
    root_path = tmp_path / "vault"
    os.mkdir(root_path, 0o700)
    root = Dir(root_path)
    locks = root.sub("locks", create=True)
    audit = root.sub("audit", create=True)
    log_obj = AuditLog(root, locks, uuid.UUID(V3["vault_id"]))
    if log:
        audit.write_atomic(_audit.CURRENT, log.encode("ascii"))
    try:
        return log_obj.verify(bytes.fromhex(V3["vault_secret"]), chain=chain, sessions=chain.sessions)
    finally:
        log_obj.close()
        audit.close()
        locks.close()
        root.close()


@pytest.mark.parametrize("record", V3["records"], ids=lambda r: f"{r['fields']['seq']}-{r['fields']['action']}")
def test_v3_each_record_is_maced_under_the_audit_key_of_its_epoch(record: dict[str, Any]) -> None:
    fields = record["fields"]
    assert fields["v"] == 3 and fields["k"] == record["key_epoch"]
    line, mac = record_line(bytes.fromhex(V3["audit_keys"][str(fields["k"])]), fields)
    assert (canonical(fields).decode(), line.decode(), mac) == (record["body"], record["line"], record["mac"])


def test_v3_the_chain_crosses_a_rotation_and_verifies_against_the_anchored_head(tmp_path: Path) -> None:
    records = V3["records"]
    assert [r["key_epoch"] for r in records] == sorted(r["key_epoch"] for r in records)  # never down
    assert records[0]["fields"]["action"] == "init" and V3["head"]["mac"] == records[-1]["mac"]
    report = _verify_v3(tmp_path, V3["log"], _chain(V3["head"]))
    assert report.ok and (report.records, report.last_seq) == (len(records), len(records))


@pytest.mark.parametrize("case", V3["tampered"], ids=lambda c: c["name"])
def test_v3_every_tampered_log_is_rejected_at_the_published_record(tmp_path: Path, case: dict[str, Any]) -> None:
    report = _verify_v3(tmp_path, case["log"], _chain(case["head"], sessions=case["sessions"]))
    assert not report.ok
    first = next(p for p in report.problems if p.severity == "error")
    assert (first.code, first.seq) == (case["problem"], case["first_bad_seq"])


@pytest.mark.parametrize("case", V3["pending"]["cases"], ids=lambda c: c["name"])
def test_v3_only_refused_opens_of_the_fixed_shape_are_chained_from_pending(case: dict[str, Any]) -> None:
    from sessionseal._audit import parse_time, refusal

    p = V3["pending"]
    got = refusal(
        case["record"],
        owner=(p["owner"]["uid"], p["owner"]["user"]),
        after=parse_time(p["after"]),
        now=parse_time(p["now"]),  # type: ignore[arg-type]
    )
    assert (got is not None) == case["chained"]
