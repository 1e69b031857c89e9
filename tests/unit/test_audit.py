"""The audit log: every operation recorded, every kind of tampering detected (docs/spec/audit-log.md)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal._audit import actor, canonical, record_line, split_line, utc_now
from sessionseal.errors import IntegrityError, SessionNotFound, UnsafePermissions, WrongPassphrase
from tests._infra.forkscript import Forker, forker

SECRET = "ghp_" + "Zq8" * 12


def _log(vault_path: Path) -> Path:
    return vault_path / "audit" / "audit.log"


def _lines(vault_path: Path) -> list[bytes]:
    return _log(vault_path).read_bytes().splitlines(keepends=True)


def _write(vault_path: Path, lines: list[bytes]) -> None:
    _log(vault_path).write_bytes(b"".join(lines))


def _busy(vault: Vault) -> None:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": f"export GITHUB_TOKEN={SECRET}"}]})
    vault.load(sid)
    vault.list()
    vault.delete(sid)


def _problem(vault: Vault) -> str:
    report = vault.verify_audit()
    assert not report.ok
    return next(p for p in report.problems if p.severity == "error").what


def test_every_operation_appends_one_record(vault: Vault) -> None:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": f"export GITHUB_TOKEN={SECRET}"}]})
    save = next(r for r in vault.audit_entries()[0] if r["action"] == "save")
    # Read back with the session's key: its id, its size, its redaction counts.
    assert save["session"] == str(sid) and save["verified"] is True
    assert save["redactions"] == {"github-pat": 1} and save["bytes"] > 0
    assert {"user", "uid", "pid", "host", "program", "version", "time", "seq", "prev"} <= set(save)
    vault.load(sid)
    vault.list()
    vault.delete(sid)
    actions = [r["action"] for r in vault.audit_records()]
    assert actions == ["init", "save", "load", "list", "delete"]
    assert vault.verify_audit().ok


def test_no_secret_or_title_ever_reaches_the_audit_files(vault: Vault, vault_path: Path) -> None:
    vault.save({"title": "deploy with hunter2-Password!", "messages": [{"role": "user", "content": SECRET}]})
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal; what matters is what was logged
        vault.load(SECRET)
    blob = b"".join(p.read_bytes() for p in (vault_path / "audit").iterdir())
    assert SECRET.encode() not in blob and b"hunter2" not in blob
    assert any(r.get("session") == "(not a session id)" for r in vault.audit_records())


def test_failures_are_recorded_with_their_class(vault: Vault) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011
        vault.load("00000000-0000-0000-0000-000000000000")
    last = list(vault.audit_records())[-1]
    assert (last["action"], last["outcome"], last["error"]) == ("load", "error", "SessionNotFound")


def test_a_failed_operation_is_recorded_once_by_the_outermost_call(vault: Vault) -> None:
    """One record per operation (docs/design.md, "The house"): a public call that fails inside
    another audited step (append's sanitize-and-write, set_status's archive) is recorded once."""
    sid = vault.save({"title": "t", "messages": []})
    missing = "00000000-0000-0000-0000-000000000000"
    before = len(list(vault.audit_records()))
    with pytest.raises(SessionNotFound):
        vault.append(missing, [{"role": "user", "content": "hello"}])
    with pytest.raises(SessionNotFound):
        vault.set_status(missing, "archived")
    new = [(r["action"], r["outcome"], r.get("error")) for r in list(vault.audit_records())[before:]]
    assert new == [("append", "error", "SessionNotFound"), ("set-status", "error", "SessionNotFound")]
    # A status change that archives is recorded as the archive it is, once.
    before = len(list(vault.audit_records()))
    assert vault.set_status(sid, "archived") is True
    assert [r["action"] for r in list(vault.audit_records())[before:]] == ["archive"]


def test_a_record_is_canonical_json_with_its_mac_last() -> None:
    line, mac = record_line(b"\x01" * 32, {"seq": 1, "action": "init", "prev": "0" * 64})
    doc = json.loads(line)
    assert doc["mac"] == mac and line.endswith(f',"mac":"{mac}"}}\n'.encode())
    body, got = split_line(line.rstrip(b"\n"))  # type: ignore[misc]
    assert got == mac and body == canonical({"seq": 1, "action": "init", "prev": "0" * 64})


# ---------------------------------------------------------------------------- tampering


def test_an_edited_field_is_detected(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    lines = _lines(vault_path)
    lines[2] = lines[2].replace(b'"outcome":"ok"', b'"outcome":"no"')
    _write(vault_path, lines)
    assert "MAC" in _problem(vault)


def test_a_deleted_record_is_detected(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    lines = _lines(vault_path)
    del lines[2]
    _write(vault_path, lines)
    assert "missing or out of order" in _problem(vault)


def test_an_inserted_forged_record_is_detected(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    lines = _lines(vault_path)
    forged, _ = record_line(b"\x00" * 32, {**json.loads(lines[1]), "action": "list"})
    lines.insert(2, forged)
    _write(vault_path, lines)
    assert "MAC" in _problem(vault)


def test_swapped_records_are_detected(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    lines = _lines(vault_path)
    lines[2], lines[3] = lines[3], lines[2]
    _write(vault_path, lines)
    assert "missing or out of order" in _problem(vault)


def test_a_cut_tail_is_detected(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    _write(vault_path, _lines(vault_path)[:-2])
    assert "cut off" in _problem(vault)


def test_an_older_copy_of_the_whole_log_is_detected(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    vault.list()
    shutil.copy(_log(vault_path), tmp_path / "old.log")
    _busy(vault)
    shutil.copy(tmp_path / "old.log", _log(vault_path))
    assert "older copy" in _problem(vault)


def test_a_removed_log_is_detected_by_the_head_in_the_key_table(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    assert not (vault_path / "audit" / "anchor.sst").exists()  # the head is in the key table's state
    _log(vault_path).unlink()
    assert "cut off" in _problem(vault)


def test_a_removed_anchor_of_a_vault_of_before_is_detected(tmp_path: Path) -> None:
    # A vault whose state is not tracked yet keeps its head in audit/anchor.sst, as before.
    from tests.unit.test_fixtures import ALL, _copy

    path = _copy(ALL[0], tmp_path)
    passphrase = json.loads((ALL[0] / "expected.json").read_text())["passphrase"]
    with Vault.open(path, passphrase=passphrase) as v:
        v.list()
        assert v.verify_audit().ok
        (path / "audit" / "anchor.sst").unlink()
        assert "anchor" in _problem(v)


def test_a_torn_last_line_is_reported_and_sealed(vault: Vault, vault_path: Path) -> None:
    _busy(vault)
    with open(_log(vault_path), "ab") as f:
        f.write(b'{"action":"sa')
    report = vault.parts.auditor.verify()
    assert report.ok and any(p.severity == "warning" for p in report.problems)
    report = vault.parts.auditor.verify(repair=True)
    assert report.repaired and report.ok and not report.problems
    assert vault.verify_audit().ok
    assert any(r["action"] == "audit.torn-tail" for r in vault.audit_records())


def test_the_next_writer_seals_a_torn_line_itself(vault: Vault, vault_path: Path) -> None:
    vault.list()
    with open(_log(vault_path), "ab") as f:
        f.write(b'{"half a rec')
    vault.list()
    assert vault.verify_audit().ok


# ---------------------------------------------------------------------------- keys, rotation, processes


def test_failures_before_the_key_is_available_are_folded_into_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "v"
    Vault.init(path, key_provider=PassphraseProvider("right", log2_n=14)).close()  # scrypt's floor: not about it
    bad = Vault.open(path, key_provider=PassphraseProvider("wrong"))
    with pytest.raises(WrongPassphrase):
        bad.list()
    bad.close()
    assert (path / "audit" / "pending.log").exists()
    good = Vault.open(path, key_provider=PassphraseProvider("right"))
    good.list()
    records = list(good.audit_records())
    denied = [r for r in records if r.get("outcome") == "denied"]
    assert denied and denied[0]["unkeyed"] is True and denied[0]["error"] == "WrongPassphrase"
    assert not (path / "audit" / "pending.log").exists()
    assert good.verify_audit().ok
    good.close()


@pytest.mark.parametrize("value", [b"Infinity", b"NaN", b"-Infinity", b"1e999"])
def test_a_pending_record_holding_a_number_no_record_can_hold_is_dropped_not_a_crash(
    vault: Vault, vault_path: Path, value: bytes
) -> None:
    # Found by the fuzz suite: Python's json reads these, canonical() refuses to write them, and
    # the ValueError escaped from the next append.
    refused = {"action": "open", "outcome": "denied", "error": "WrongPassphrase", "time": utc_now(), **actor()}
    good = canonical(refused)
    pending = vault_path / "audit" / "pending.log"
    pending.write_bytes(b'{"action":"open","pid":' + value + b"}\n" + good + b"\n")
    pending.chmod(0o600)
    vault.list()
    records = list(vault.audit_records())
    assert [r["action"] for r in records if r.get("unkeyed")] == ["open"]
    assert vault.verify_audit().ok


def test_reading_the_config_and_destroying_the_key_are_recorded(vault: Vault) -> None:
    vault.config()
    assert list(vault.audit_records())[-1]["action"] == "config.show"
    vault.destroy()
    # Recorded while the key still existed: the last keyed record says the key went.
    assert list(vault.audit_records())[-1]["action"] == "destroy"


def test_a_refused_open_is_recorded_once_the_vault_is_safe_again(vault: Vault, vault_path: Path) -> None:
    vault.list()
    os.chmod(vault_path, 0o750)  # noqa: S103 - group-readable: refused, yet nobody else can write into it
    with pytest.raises(UnsafePermissions):
        Vault.open(vault_path, key_provider=vault.parts.keys.provider)
    os.chmod(vault_path, 0o700)
    with Vault.open(vault_path, key_provider=vault.parts.keys.provider) as again:
        again.list()
        refused = [r for r in again.audit_records() if r.get("error") == "UnsafePermissions"]
        assert [(r["action"], r["outcome"], r["unkeyed"]) for r in refused] == [("open", "denied", True)]
        assert again.verify_audit().ok


def test_nothing_is_written_into_a_vault_that_others_can_write(vault: Vault, vault_path: Path) -> None:
    vault.list()
    before = sorted((p.name, p.stat().st_size) for p in (vault_path / "audit").iterdir())
    os.chmod(vault_path, 0o777)  # noqa: S103 - the hostile mode under test
    try:
        with pytest.raises(UnsafePermissions):
            Vault.open(vault_path, key_provider=vault.parts.keys.provider)
    finally:
        os.chmod(vault_path, 0o700)
    assert sorted((p.name, p.stat().st_size) for p in (vault_path / "audit").iterdir()) == before


def test_a_damaged_vault_file_is_recorded_as_an_integrity_failure(vault: Vault, vault_path: Path) -> None:
    vault.list()
    good = (vault_path / "vault.json").read_bytes()
    (vault_path / "vault.json").write_bytes(b"{not json")
    with pytest.raises(IntegrityError):
        Vault.open(vault_path, key_provider=vault.parts.keys.provider)
    (vault_path / "vault.json").write_bytes(good)
    with Vault.open(vault_path, key_provider=vault.parts.keys.provider) as again:
        again.list()
        assert any(r.get("error") == "IntegrityError" and r["action"] == "open" for r in again.audit_records())


def test_rotation_continues_the_chain_and_retention_keeps_it_verifiable(vault: Vault, vault_path: Path) -> None:
    vault.set_config({"audit": {"rotate_bytes": 65536, "keep_files": 2}})
    for _ in range(700):
        vault.list()
    rotated = sorted(p.name for p in (vault_path / "audit").glob("audit-*.log"))
    assert len(rotated) == 2  # older files went by the audit log's own retention
    report = vault.verify_audit()
    assert report.ok, [p.describe() for p in report.problems]
    assert report.first_seq is not None and report.first_seq > 1  # the chain starts at the anchor's base
    head = vault.parts.keys.keytable(fresh=True).state.audit  # anchored in the key table (issue 20)
    assert head is not None and head.base_seq == report.first_seq - 1
    assert report.last_seq is not None and head.seq == report.last_seq + 1  # and the audit.verify record
    assert not (vault_path / "audit" / "anchor.sst").exists()


_WRITER = textwrap.dedent(
    """
    import sys
    from sessionseal import PassphraseProvider, Vault
    v = Vault.open(sys.argv[1], key_provider=PassphraseProvider("pw"))
    for _ in range(int(sys.argv[2])):
        v.list()
    """
)


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forker]:
    """The writers: real processes, forked from one that imported sessionseal
    (tests/_infra/forkscript.py), instead of an interpreter started for each."""
    with forker(tmp_path_factory.mktemp("audit-children")) as f:
        yield f


def test_concurrent_writers_keep_the_chain_valid(tmp_path: Path, children: Forker) -> None:
    path = tmp_path / "v"
    # scrypt at its floor (the key file's cost, which every writer's open pays): not about it.
    Vault.init(path, key_provider=PassphraseProvider("pw", log2_n=14)).close()
    procs = [children.popen(_WRITER, path, 15) for _ in range(4)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    v = Vault.open(path, key_provider=PassphraseProvider("pw"))
    report = v.verify_audit()
    assert report.ok, [p.describe() for p in report.problems]
    assert report.records >= 1 + 4 * 16
    v.close()


def test_a_killed_writer_never_breaks_earlier_records(tmp_path: Path, children: Forker) -> None:
    path = tmp_path / "v"
    Vault.init(path, key_provider=PassphraseProvider("pw", log2_n=14)).close()
    for delay in (0.3, 0.5, 0.7):
        proc = children.popen(_WRITER, path, 100000)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc.communicate(timeout=30)
        v = Vault.open(path, key_provider=PassphraseProvider("pw"))
        report = v.verify_audit(repair=True)
        assert report.ok, [p.describe() for p in report.problems]
        v.close()


def test_cli_verify_exits_14_and_names_the_first_bad_record(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sessionseal.cli import cli

    env = {"SESSIONSEAL_VAULT": str(tmp_path / "v"), "SESSIONSEAL_PASSPHRASE": "pw"}
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--key-provider", "passphrase"], env=env).exit_code == 0
    assert runner.invoke(cli, ["list"], env=env).exit_code == 0
    info = json.loads(runner.invoke(cli, ["info", "--json"], env=env).output)
    assert info["audit_log_path"] == str(tmp_path / "v" / "audit" / "audit.log")
    ok = runner.invoke(cli, ["audit", "verify"], env=env)
    assert ok.exit_code == 0 and "audit log OK" in ok.output
    shown = runner.invoke(cli, ["audit", "show", "--json", "--action", "list"], env=env)
    assert [json.loads(line)["action"] for line in shown.output.splitlines()] == ["list"]
    lines = _lines(tmp_path / "v")
    lines[1] = lines[1].replace(b'"outcome":"ok"', b'"outcome":"no"')
    _write(tmp_path / "v", lines)
    bad = runner.invoke(cli, ["audit", "verify"], env=env)
    assert bad.exit_code == 14 and "line 2" in bad.output and "record 2" in bad.output


def test_rotation_never_replaces_a_rotated_file_even_after_long_records(vault: Vault, vault_path: Path) -> None:
    vault.parts.auditor.configure()
    vault.parts.audit_log.max_file_bytes = 4096
    for i in range(60):
        # Records longer than any fixed header read: the rotated file is still named by its first seq.
        vault.parts.auditor.record("list", detail={f"k{j}": i for j in range(80)})
    rotated = sorted((vault_path / "audit").glob("audit-*.log"))
    assert len(rotated) >= 5
    report = vault.verify_audit()
    assert report.ok, [p.describe() for p in report.problems]
    assert report.records == 1 + 60  # init and the appends, none lost to a rotation


def test_audit_settings_are_read_without_validating_the_whole_config() -> None:
    """Every command appends an audit record, so the audit section is read from the stored
    document directly when it has the shape the models write; anything else is validated."""
    from sessionseal._audit import AuditLog
    from sessionseal._config import AuditConfig, VaultConfig
    from sessionseal._configfile import audit_settings

    defaults = AuditConfig()
    log = AuditLog(None, None, uuid.uuid4())  # type: ignore[arg-type]  # no I/O before the first append
    assert (log.max_file_bytes, log.keep_files, log.syslog) == (
        defaults.rotate_bytes,
        defaults.keep_files,
        defaults.syslog,
    )
    stored = VaultConfig.model_validate({"audit": {"rotate_bytes": 65536, "syslog": True}}).model_dump_json()
    assert audit_settings(stored.encode()) == (65536, 0, True)
    odd = [b"[]", b"{}", b'{"audit": {"rotate_bytes": "1"}}', b"not json"]
    odd.append(b'{"audit": {"rotate_bytes": 1.5, "keep_files": 0, "syslog": false}}')
    for body in odd:
        assert audit_settings(body) is None


# ---------------------------------------------------------------------------- the anchored head (issue 20)


def test_mac_keys_follow_the_master_key_and_an_older_table_cannot_forge_later_records(
    vault: Vault, vault_path: Path
) -> None:
    from sessionseal._audit import AuditLog

    vault.list()
    secret = vault.parts.keys.keytable().vault_secret  # what any older copy of the key table yields
    vault.rekey()
    vault.list()
    state = vault.parts.keys.keytable().state
    epochs = [r["k"] for r in vault.audit_records()]
    assert epochs[0] == 1 and epochs == sorted(epochs) and epochs[-1] == max(state.audit_keys) >= 2
    assert len(state.audit_keys) == 2  # one key per epoch, the older one kept to verify its records
    assert vault.verify_audit().ok
    lines = _lines(vault_path)
    last = json.loads(lines[-1])
    forged = {k: v for k, v in last.items() if k not in ("mac", "k")}
    forged.update(seq=last["seq"] + 1, prev=last["mac"], action="delete", v=2)
    line, _ = record_line(AuditLog.keys(secret)[0], forged)
    _write(vault_path, [*lines, line])
    vault.list()  # the next writer does not adopt it: it is not under a key of the state's
    report = vault.verify_audit()
    assert [p.code for p in report.problems if p.severity == "error"][:1] == ["key-epoch"]


def test_a_log_put_back_from_before_a_rekey_fails_and_the_next_writer_does_not_hide_it(
    vault: Vault, vault_path: Path, tmp_path: Path
) -> None:
    vault.list()
    shutil.copytree(vault_path / "audit", tmp_path / "old-audit")
    vault.rekey()
    vault.list()
    for p in (vault_path / "audit").iterdir():
        p.unlink()
    for p in (tmp_path / "old-audit").iterdir():
        shutil.copy(p, vault_path / "audit" / p.name)
    vault.list()  # writes on from the anchored head: a gap, not a new history
    report = vault.verify_audit()
    assert not report.ok and {p.code for p in report.problems} & {"out-of-sequence", "truncated"}


def test_a_wiped_log_of_a_vault_with_sessions_fails_even_before_the_next_record(vault: Vault, vault_path: Path) -> None:
    vault.save({"title": "t", "messages": []})
    shutil.rmtree(vault_path / "audit")
    report = vault.parts.auditor.verify()  # no record written since
    assert [p.code for p in report.problems] == ["truncated"]
