"""What the audit log says about sessions, and to whom (docs/spec/audit-log.md, format 2).

A copy of the audit files names no session and measures none: ids, sizes, redaction counts,
file names and message counts are in subjects -- a tag keyed by the session's own key and a
box sealed under it.  With the vault's key they read back (``audit show``); once a session is
erased, nothing the vault and the current key hold recovers its id or what measured it.
``audit show`` checks the chain as it reads and marks every record it cannot vouch for.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import Vault, _crypto
from sessionseal._audit import (
    AuditLog,
    actor,
    box_ad,
    open_box,
    record_line,
    split_line,
    subject_keys,
    subject_tag,
    utc_now,
)
from sessionseal.cli import cli
from sessionseal.errors import IntegrityError, KeyStoreError
from tests.memkeyring import MemoryKeyring
from tests.unit.test_fixtures import ALL as FIXTURES
from tests.unit.test_fixtures import _copy

SECRET = "ghp_" + "Pr1v" * 9
AGENT_ID = "5b7e9a10-4c2d-4f8e-9a3b-1d2c3e4f5a6b"


def _audit_blob(vault_path: Path) -> bytes:
    """Every byte of every file in audit/: current, rotated, pending, anchor."""
    return b"".join(p.read_bytes() for p in sorted((vault_path / "audit").iterdir()) if p.is_file())


def _id_forms(sid: uuid.UUID | str) -> list[bytes]:
    u = uuid.UUID(str(sid))
    return [f.encode() for f in (str(u), u.hex)]


def _names_an_id(blob: bytes, sid: uuid.UUID | str) -> bool:
    low = blob.lower()
    return any(f in low for f in _id_forms(sid))


def _has_number(blob: bytes, n: int) -> bool:
    """*n* as a JSON number value anywhere (sizes are numbers; times are strings)."""
    return re.search(rb":" + str(n).encode() + rb"[,}\]]", blob) is not None


def _transcript(tmp_path: Path) -> Path:
    project = tmp_path / "claude" / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    lines = []
    for n, (role, text) in enumerate([("user", f"deploy with {SECRET}"), ("user", "and test it")]):
        lines.append(
            json.dumps(
                {
                    "type": role,
                    "uuid": f"u{n}",
                    "parentUuid": f"u{n - 1}" if n else None,
                    "sessionId": AGENT_ID,
                    "timestamp": f"2026-03-14T10:{n:02d}:00.000Z",
                    "cwd": "/home/dev/shop",
                    "message": {"role": role, "content": text},
                }
            )
        )
    path = project / f"{AGENT_ID}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _busy(vault: Vault, tmp_path: Path) -> dict[str, Any]:
    """Every kind of operation that names a session; returns the ids and the values measured."""
    a = vault.save({"title": "alpha plans", "messages": [{"role": "user", "content": f"token {SECRET}"}]})
    b = vault.save({"title": "beta", "messages": [{"role": "user", "content": "beta searchable words"}]})
    vault.load(a)
    vault.append(b, [{"role": "user", "content": "more searchable words"}])
    vault.checkpoint(a, "before")
    c = vault.fork(a)
    vault.link(b, parent=a)
    [outcome] = vault.import_transcripts([_transcript(tmp_path)])
    assert outcome.session_id is not None
    out = tmp_path / "quarterly-leak-plan.bundle"
    vault.export([a, b], passphrase="bundle pass phrase", out=out)
    hits = vault.search("searchable")
    assert {h.id for h in hits} == {str(b)}
    return {"a": a, "b": b, "c": c, "t": outcome.session_id, "bundle": out}


# -- a copy of the files names and measures nothing --------------------------------------


def test_the_audit_files_name_no_session_and_measure_none(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    ids = _busy(vault, tmp_path)
    vault.delete(ids["c"])
    entries, report = vault.audit_entries()
    assert report.ok and all(e["verified"] for e in entries)
    blob = _audit_blob(vault_path)
    for sid in (ids["a"], ids["b"], ids["c"], ids["t"], AGENT_ID):
        assert not _names_an_id(blob, sid), sid
    assert b"quarterly-leak-plan" not in blob and b"github-pat" not in blob and SECRET.encode() not in blob
    # Every size and count the key reads back is in no record in the clear.
    measured = [
        v
        for e in entries
        for s in e.get("subjects", [])
        for k, v in s.items()
        if k in ("bytes", "messages") and isinstance(v, int) and v > 2
    ]
    assert measured and not any(_has_number(blob, n) for n in measured)
    for e in entries:  # no clear field of format 2 holds what measures a session
        if e.get("v") == 2:
            raw_keys = set(next(r for r in vault.audit_records() if r.get("seq") == e["seq"]))
            assert not raw_keys & {"bytes", "redactions"}


def test_with_the_key_export_and_search_records_name_what_left_and_what_matched(vault: Vault, tmp_path: Path) -> None:
    ids = _busy(vault, tmp_path)
    entries, _ = vault.audit_entries()
    [export] = [e for e in entries if e["action"] == "export"]
    assert [(s["role"], s["id"]) for s in export["subjects"]] == [
        ("exported", str(ids["a"])),
        ("exported", str(ids["b"])),
    ]
    assert {s["file"] for s in export["subjects"]} == {"quarterly-leak-plan.bundle"}
    assert export["subjects"][0]["bytes"] == ids["bundle"].stat().st_size and export["detail"]["sessions"] == 2
    [search] = [e for e in entries if e["action"] == "search"]
    assert [(s["role"], s["id"]) for s in search["subjects"]] == [("match", str(ids["b"]))]
    assert search["detail"] == {"scanned": search["detail"]["scanned"], "hits": 1, "index": "fts", "stale": 0}
    [fork] = [e for e in entries if e["action"] == "fork"]
    assert fork["session"] == str(ids["c"]) and [s["id"] for s in fork["subjects"] if s["role"] == "from"] == [
        str(ids["a"])
    ]
    [imp] = [e for e in entries if e["action"] == "import-transcripts"]
    assert [(s["id"], s["action"]) for s in imp["subjects"]] == [(str(ids["t"]), "new")]
    assert set(imp["subjects"][0]["redactions"]) == {"github-pat"}


def test_audit_show_session_finds_a_sessions_records(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(path))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    with Vault.init(path) as v:
        ids = _busy(v, tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["audit", "show", "--session", str(ids["a"]), "--json"])
    assert r.exit_code == 0, r.output
    got = [json.loads(line) for line in r.output.splitlines()]
    assert [g["action"] for g in got] == ["save", "load", "checkpoint.create", "fork", "link", "export"]
    assert all(g["verified"] is True for g in got)
    assert got[0]["session"] == str(ids["a"]) and got[0]["redactions"] == {"github-pat": 1}
    r = runner.invoke(cli, ["audit", "show", "--action", "search"])
    assert r.exit_code == 0 and str(ids["b"]) in r.output and "yes" in r.output


# -- after an erasure ----------------------------------------------------------------------


def _every_current_key(vault: Vault) -> list[bytes]:
    """What someone holding a copy of the vault and its current master key can derive."""
    table = vault.parts.keys.keytable(fresh=True)
    keys = [table.vault_secret, *AuditLog.keys(table.vault_secret), *table.state.audit_keys.values()]
    for key in table.session_keys.values():
        keys += [key, *subject_keys(key)]
    return keys


def test_after_delete_no_record_recovers_the_erased_id_or_its_sizes(
    vault: Vault, vault_path: Path, tmp_path: Path
) -> None:
    ids = _busy(vault, tmp_path)
    a = ids["a"]
    vault.parts.auditor.configure()
    vault.parts.audit_log.max_file_bytes = 4096  # records about it sit in rotated files too
    for _ in range(6):
        vault.load(a)
    a_key = vault.parts.keys.keytable().session_keys[a]
    a_tag = subject_tag(subject_keys(a_key)[0])
    before = {e["seq"]: e for e in vault.audit_entries()[0]}
    sizes = {
        s["bytes"] for e in before.values() for s in e.get("subjects", []) if s.get("id") == str(a) and "bytes" in s
    }
    assert sizes and len(vault.parts.audit_log.files()) > 1

    vault.delete(a)

    blob = _audit_blob(vault_path)
    assert not _names_an_id(blob, a)
    assert not any(_has_number(blob, n) for n in sizes)
    # No key that the current master key reaches yields its tag or opens one of its boxes.
    held = _every_current_key(vault)
    assert a_tag not in {subject_tag(k) for k in held}
    for rec in vault.audit_records():
        for s in rec.get("subjects", []):
            if s["tag"] != a_tag or "box" not in s:
                continue
            for key in held:
                with pytest.raises(IntegrityError):
                    open_box(key, s["box"], box_ad(vault.vault_id, rec["seq"], rec["action"], s["role"], s["tag"]))
    # The chain still verifies; its records show an erased session, linked by its tag only.
    entries, report = vault.audit_entries()
    assert report.ok and all(e["verified"] for e in entries)
    for e in entries:
        for s in e.get("subjects", []):
            if s["tag"] == a_tag:
                assert s == {"role": s["role"], "tag": a_tag, "erased": True}
    [delete] = [e for e in entries if e["action"] == "delete"]
    assert delete["session"] == "(erased)" and delete["subjects"] == [{"role": "session", "tag": a_tag, "erased": True}]
    # What is left of the living session b in the same records still reads.
    [export] = [e for e in entries if e["action"] == "export"]
    assert [s.get("id") for s in export["subjects"]] == [None, str(ids["b"])]
    assert export["subjects"][1]["file"] == "quarterly-leak-plan.bundle"
    # The erased session's records are found by nothing: its id no longer filters anything.
    assert vault.audit_entries(session=a)[0] == []


def test_a_failure_before_the_key_names_no_session(
    vault: Vault, vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save({"title": "t", "messages": []})
    with monkeypatch.context() as m:

        def locked(*_: object, **__: object) -> None:
            raise KeyStoreError("the keychain is locked")

        m.setattr(vault.parts.keys, "keytable", locked)
        vault.parts.auditor.record("load", "denied", session=sid, error="KeyStoreError", nbytes=1234)
    # The key read that failed records the refused open; the operation's own record, which
    # would name its session, is not written where no key can seal it (pending.log).
    pending = vault_path / "audit" / "pending.log"
    blob = pending.read_bytes() if pending.exists() else b""
    assert not _names_an_id(blob, sid) and b"1234" not in blob and b'"action":"load"' not in blob


def test_pending_records_of_an_older_writer_are_dropped_and_counted(vault: Vault, vault_path: Path) -> None:
    sid = vault.save({"title": "t", "messages": []})
    pending = vault_path / "audit" / "pending.log"
    old = {"action": "load", "outcome": "denied", "session": str(sid), "bytes": 4321, "time": "2026-01-01T00:00:00Z"}
    pending.write_text(json.dumps(old) + "\n")
    pending.chmod(0o600)
    vault.list()
    blob = _audit_blob(vault_path)
    assert not _names_an_id(blob, sid) and not _has_number(blob, 4321)
    records = list(vault.audit_records())
    assert not [r for r in records if r.get("unkeyed")]
    [dropped] = [r for r in records if r["action"] == "audit.pending-dropped"]
    assert dropped["detail"] == {"dropped": 1} and vault.verify_audit().ok


# -- audit show marks what it cannot vouch for -----------------------------------------------


def _cli_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, uuid.UUID]:
    path = tmp_path / "vault"
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(path))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    with Vault.init(path) as v:
        sid = v.save({"title": "t", "messages": []})
        v.load(sid)
        v.list()
    return path, sid


def _show(*args: str) -> list[dict[str, Any]]:
    r = CliRunner().invoke(cli, ["audit", "show", "--json", *args])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]


def test_show_marks_an_edited_record_and_every_one_after_it(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _cli_vault(tmp_path, monkeypatch)
    log = path / "audit" / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    assert b'"action":"load"' in lines[2]
    lines[2] = lines[2].replace(b'"outcome":"ok"', b'"outcome":"no"')
    log.write_bytes(b"".join(lines))
    got = {g["seq"]: g for g in _show()}
    assert [got[s]["verified"] for s in (1, 2)] == [True, True]
    assert (got[3]["verified"], got[3]["problem"]) == (False, "bad-mac")
    assert len(got) > 3 and all(g["problem"] == "after-error" for s, g in got.items() if s > 3)
    r = CliRunner().invoke(cli, ["audit", "show"])
    assert r.exit_code == 0 and "NO (bad-mac)" in r.output and "NOT verified" in r.output
    assert "does not verify" in r.output  # the warning (stderr is mixed in by the runner)
    assert CliRunner().invoke(cli, ["audit", "verify"]).exit_code == 14  # unchanged


def test_show_marks_a_forged_record_and_a_moved_box(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, sid = _cli_vault(tmp_path, monkeypatch)
    log = path / "audit" / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    # Someone with the MAC key (not a key of the session's) re-chains a record whose box
    # was taken from another record: the chain holds, the box does not open in its place.
    with Vault.open(path) as v:
        audit_keys = v.parts.keys.keytable().state.audit_keys
        mac_key = audit_keys[max(audit_keys)]  # the key its records name ("k")
    save = json.loads(split_line(lines[1].rstrip(b"\n"))[0])  # type: ignore[index]
    load = json.loads(split_line(lines[2].rstrip(b"\n"))[0])  # type: ignore[index]
    assert (save["action"], load["action"]) == ("save", "load")
    load["subjects"] = save["subjects"]
    lines[2], _ = record_line(mac_key, load)
    prev = load
    for i in range(3, len(lines)):  # re-chain the rest so that only the box is wrong
        rec = json.loads(split_line(lines[i].rstrip(b"\n"))[0])  # type: ignore[index]
        rec["prev"] = json.loads(lines[i - 1])["mac"]
        lines[i], _ = record_line(mac_key, rec)
        prev = rec
    del prev
    log.write_bytes(b"".join(lines))
    got = {g["seq"]: g for g in _show()}
    assert (got[3]["verified"], got[3]["problem"]) == (False, "box")
    tag = save["subjects"][0]["tag"]
    assert got[3]["subjects"] == [{"role": "session", "tag": tag, "id": str(sid), "unreadable": True}]
    assert got[2]["verified"] is True


def test_show_marks_pending_records(vault: Vault, vault_path: Path) -> None:
    vault.list()
    # Another process refused before it had the key, after this one chained its records.
    pending = vault_path / "audit" / "pending.log"
    refused = {"action": "open", "outcome": "denied", "error": "WrongPassphrase", "time": utc_now(), **actor()}
    pending.write_text(json.dumps(refused) + "\n")
    pending.chmod(0o600)
    got, _ = vault.audit_entries()
    assert (got[-1]["action"], got[-1]["verified"], got[-1]["problem"]) == ("open", False, "pending")
    assert all(g["verified"] for g in got[:-1])
    vault.list()  # the next keyed append chains it: then it is vouched for, marked unkeyed
    got, _ = vault.audit_entries()
    [folded] = [g for g in got if g.get("unkeyed")]
    assert folded["verified"] is True and isinstance(folded["seq"], int)


# -- format 1 logs ------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_a_format_1_log_still_verifies_and_its_records_move_to_a_file_of_their_own(
    fixture: Path, tmp_path: Path
) -> None:
    path = _copy(fixture, tmp_path)
    expected = json.loads((fixture / "expected.json").read_text())
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        old = [r for r in v.audit_records() if r.get("v") == 1]
        assert old
        first = next(str(r["session"]) for r in old if isinstance(r.get("session"), str) and len(r["session"]) == 36)
        v.list()  # the first format 2 record: the format 1 records are rotated away first
        assert len(v.parts.audit_log.files()) == 2
        entries, report = v.audit_entries()
        assert report.ok and all(e["verified"] for e in entries)
        assert {e["v"] for e in entries} == {1, 2}
        assert v.audit_entries(session=first)[0]  # format 1 records are found by their clear id
        current = (path / "audit" / "audit.log").read_bytes()
        assert b'"v":1' not in current
    shutil.rmtree(path)


def test_box_encoding_is_unpadded_base64url_of_nonce_and_ciphertext() -> None:
    key = bytes(range(32))
    ad = box_ad(uuid.UUID(int=1), 7, "save", "session", "ab" * 16)
    from sessionseal._audit import seal_box

    box = seal_box(key, {"id": "x"}, ad, nonce=b"\x01" * 12)
    raw = base64.urlsafe_b64decode(box + "=" * (-len(box) % 4))
    assert "=" not in box and raw[:12] == b"\x01" * 12
    assert _crypto.decrypt(key, raw[:12], raw[12:], ad) == b'{"id":"x"}'
    assert open_box(key, box, ad) == {"id": "x"}
    with pytest.raises(IntegrityError):
        open_box(key, box, box_ad(uuid.UUID(int=1), 8, "save", "session", "ab" * 16))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_migrate_keeps_format_1_records_as_they_are(fixture: Path, tmp_path: Path) -> None:
    path = _copy(fixture, tmp_path)
    expected = json.loads((fixture / "expected.json").read_text())
    before = (path / "audit" / "audit.log").read_bytes()
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        v.migrate()
        assert v.verify_audit().ok
    rotated = [p for p in (path / "audit").glob("audit-*.log")]
    assert [p.read_bytes() for p in rotated] == [before]  # moved whole, not one byte rewritten
