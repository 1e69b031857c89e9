"""The vault's head outside the vault (issue 20, item 7; docs/keychain.md, "The vault's head").

The keychain entry keeps, beside the master key, the key table's state counter as of the last
head write; the key table records each write. A vault (or key table) put back from an older copy
records an older head than the keychain's: ``verify`` reports ``rollback``, writes are refused
with ``VaultRolledBack`` (exit 16), reads work, and the keychain's head is never written while
they disagree, until ``head accept``. A passphrase vault keeps nothing outside the vault: its
owner keeps the head (``head show``) and checks it (``verify --expect-head``).

The in-memory keyring stands in for the keychain here; tests/integration/test_real_keychain.py
does the same through the real Secret Service.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import PassphraseProvider, Vault, _keystore, errors
from sessionseal._keystore import SERVICE, MasterKeys, decode_keys, encode_keys
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

PASSPHRASE = "head test passphrase"


def _doc(title: str) -> dict[str, object]:
    return {"title": title, "status": "completed", "messages": [{"role": "user", "content": f"text of {title}"}]}


def _fresh_process() -> None:
    """What another process sees: the keychain read anew (the cache is per process)."""
    _keystore._cache.clear()


@pytest.fixture
def every_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL", "0")


@pytest.fixture
def keychain_vault(memory_keyring: MemoryKeyring, vault_path: Path, every_commit: None) -> Iterator[Path]:
    Vault.init(vault_path).close()
    yield vault_path
    _fresh_process()


def _entry(kr: MemoryKeyring, path: Path) -> str:
    vault_id = json.loads((path / "vault.json").read_text())["vault_id"]
    return kr.store[(SERVICE, vault_id)]


def _open(path: Path) -> Vault:
    _fresh_process()
    return Vault.open(path, auto_cleanup=False)


def _restore(backup: Path, path: Path) -> None:
    """A backup restore of the whole directory, as someone who can write it but has no key does it."""
    shutil.rmtree(path)
    shutil.copytree(backup, path, symlinks=True)


# -- the keychain entry ------------------------------------------------------------------------


def test_the_entry_carries_the_head_macd_under_the_current_key() -> None:
    keys = MasterKeys({3: bytes(range(32)), 4: bytes(range(1, 33))}, head=17)
    value = encode_keys(keys)
    assert value.startswith("sseal-mk1;3:") and ";head=17:" in value
    back = decode_keys(value)
    assert back.keys == keys.keys and back.head == 17
    # Without a head (entries of earlier versions, a passphrase vault's keys): as before.
    assert decode_keys(encode_keys(MasterKeys({1: bytes(32)}))).head == 0
    assert ";head=" not in encode_keys(MasterKeys({1: bytes(32)}))


@pytest.mark.parametrize(
    "edit",
    [
        lambda v: v.replace(";head=17:", ";head=18:"),  # the head moved by hand
        lambda v: v.replace(";head=17:", ";head=+17:"),
        lambda v: v.rpartition(":")[0] + ":" + "0" * 64,  # another MAC
        lambda v: v.rpartition(";")[0] + ";" + encode_keys(MasterKeys({4: bytes(32)}, head=17)).split(";")[-1],
        lambda v: v.split(";", 1)[0] + ";" + v.split(";")[-1],  # a head without keys
    ],
)
def test_an_edited_head_is_a_damaged_entry(edit: Callable[[str], str]) -> None:
    value = encode_keys(MasterKeys({3: bytes(range(32)), 4: bytes(range(1, 33))}, head=17))
    with pytest.raises(errors.KeyStoreError, match=r"damaged|not a sessionseal key"):
        decode_keys(edit(value))


# -- a keychain vault -----------------------------------------------------------------------


def test_a_whole_vault_rollback_is_seen_writes_are_refused_reads_work(
    memory_keyring: MemoryKeyring, keychain_vault: Path, tmp_path: Path
) -> None:
    path = keychain_vault
    with _open(path) as v:
        old = v.save(_doc("before the backup"))
    backup = tmp_path / "backup"
    shutil.copytree(path, backup)
    with _open(path) as v:
        v.save(_doc("after the backup"))
        newer = v.head()
    assert not newer.rolled_back and newer.key_store == newer.recorded[0] == newer.counter

    _restore(backup, path)
    entry = _entry(memory_keyring, path)
    with _open(path) as v:
        status = v.head()
        assert status.rolled_back and status.key_store == newer.key_store
        result = v.verify()
        assert not result.ok
        assert [(p.code, p.path) for p in result.errors] == [("rollback", "keytable.sst")]
        assert v.load(old).title == "before the backup"  # reads work
        listed, problems = v.list_with_problems()
        assert [s.title for s in listed] == ["before the backup"]
        assert len(problems) == 1 and "older than its head" in problems[0]  # what is missing is said
        for write in (
            lambda: v.save(_doc("a new one")),
            lambda: v.append(old, [{"role": "user", "content": "more"}]),
            lambda: v.rename(old, "renamed"),
            lambda: v.checkpoint(old),
            lambda: v.delete(old),
            v.rekey,
            lambda: v.set_config({}),
        ):
            with pytest.raises(errors.VaultRolledBack) as caught:
                write()
            assert caught.value.exit_code == 16
        repaired = v.verify(repair=True)
        assert not repaired.ok and repaired.repaired == []  # --repair changes nothing in it
    # The keychain's head was never written while they disagreed.
    assert _entry(memory_keyring, path) == entry
    with _open(path) as v:
        assert v.load(old).title == "before the backup"


def test_a_key_table_rolled_back_alone_is_seen(keychain_vault: Path) -> None:
    path = keychain_vault
    with _open(path) as v:
        v.save(_doc("one"))
    table = (path / "keytable.sst").read_bytes()
    with _open(path) as v:
        v.save(_doc("two"))
    (path / "keytable.sst").write_bytes(table)
    with _open(path) as v:
        assert v.head().rolled_back
        assert ("rollback", "keytable.sst") in [(p.code, p.path) for p in v.verify().errors]
        with pytest.raises(errors.VaultRolledBack):
            v.save(_doc("three"))


def test_accept_makes_the_restored_vault_the_vault_and_the_abandoned_one_older(
    memory_keyring: MemoryKeyring, keychain_vault: Path, tmp_path: Path
) -> None:
    path = keychain_vault
    with _open(path) as v:
        kept = v.save(_doc("kept"))
    backup, abandoned = tmp_path / "backup", tmp_path / "abandoned"
    shutil.copytree(path, backup)
    with _open(path) as v:
        for i in range(3):
            v.save(_doc(f"newer {i}"))
    shutil.copytree(path, abandoned)
    _restore(backup, path)
    with _open(path) as v:
        status = v.head(accept=True)
        assert status.accepted and not status.rolled_back
        assert status.key_store == status.recorded[0] == status.counter
        v.save(_doc("after accepting"))
        assert v.verify().ok
        assert v.load(kept).title == "kept"
        records = [r for r in v.audit_records() if r["action"] == "head.accept"]
        assert len(records) == 1 and records[0]["detail"]["changed"] is True
        # Accepting again changes nothing.
        assert not v.head(accept=True).accepted
    # The newer line, put back now, is older than the accepted head: its counters were passed.
    _restore(abandoned, path)
    with _open(path) as v:
        assert v.head().rolled_back
        with pytest.raises(errors.VaultRolledBack):
            v.save(_doc("onto the abandoned line"))


def test_a_rolled_back_vault_never_finishes_a_rotation_it_did_not_start(
    memory_keyring: MemoryKeyring, keychain_vault: Path, tmp_path: Path
) -> None:
    """The newest key of the keychain may be the newer vault's: dropping it would lose that vault."""
    path = keychain_vault
    with _open(path) as v:
        v.save(_doc("one"))
    shutil.copytree(path, tmp_path / "backup")
    with _open(path) as v:
        v.save(_doc("two"))
        master = v.parts.keys.fresh_master()
    # The key table of epoch 1 put back while the keychain holds epoch 1 and a newer one (the
    # newer vault's rotation was in flight), and the newer head.
    newer = MasterKeys({**master.keys, 2: bytes(range(32))}, master.head)
    v.parts.keys.provider.store(v.vault_id, newer)
    _restore(tmp_path / "backup", path)
    with _open(path) as v:
        assert v.head().rolled_back
        v.verify(repair=True)
    _fresh_process()
    assert decode_keys(_entry(memory_keyring, path)) == newer


def test_a_keychain_behind_the_table_is_a_head_write_cut_short_not_a_rollback(
    memory_keyring: MemoryKeyring, keychain_vault: Path
) -> None:
    path = keychain_vault
    with _open(path) as v:
        v.save(_doc("one"))
        master = v.parts.keys.fresh_master()
        assert master.head > 0
        # A process killed after the state recorded the head write, before the keychain got it.
        v.parts.keys.provider.store(v.vault_id, MasterKeys(master.keys, master.head - 1))
    with _open(path) as v:
        assert not v.head().rolled_back
        assert v.verify().ok
        v.save(_doc("two"))  # writes work, and catch the keychain up
        status = v.head()
        assert status.key_store == status.recorded[0] == status.counter


def test_the_head_is_written_at_every_rotation_and_otherwise_at_the_interval(
    memory_keyring: MemoryKeyring, vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL", "3600")
    Vault.init(vault_path).close()  # the first change writes one (none was ever written)
    with _open(vault_path) as v:
        sid = v.save(_doc("one"))
        first = v.head()
        assert first.key_store == first.recorded[0] > 0
        v.save(_doc("two"))
        v.rename(sid, "one, renamed")
        later = v.head()
        # Within the interval: the state moved on, the keychain's head did not (the window).
        assert later.counter > first.counter and later.key_store == first.key_store
        v.delete(sid)  # a rotation
        rotated = v.head()
        assert rotated.key_store == rotated.recorded[0] > later.key_store
    _fresh_process()


@pytest.mark.parametrize("value", ["", "-5", "soon", "nan", "inf"])
def test_an_unusable_interval_is_the_default(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._vault._keys import DEFAULT_HEAD_INTERVAL, head_interval

    monkeypatch.setenv("SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL", value)
    assert head_interval() == DEFAULT_HEAD_INTERVAL


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, vault_path: Path) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(vault_path))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.mark.usefixtures("memory_keyring", "every_commit")
def test_cli_keychain_head_show_refusal_and_accept(
    run: Callable[..., Result], vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    assert run("init").exit_code == 0
    assert run("save", "-", input=json.dumps(_doc("one"))).exit_code == 0
    shutil.copytree(vault_path, tmp_path / "backup")
    assert run("save", "-", input=json.dumps(_doc("two"))).exit_code == 0
    shown = json.loads(run("head", "show", "--json").output)
    assert shown["rolled_back"] is False and shown["keychain_head"] == shown["recorded_head"] > 0
    _restore(tmp_path / "backup", vault_path)
    _fresh_process()
    shown = json.loads(run("head", "show", "--json").output)
    assert shown["rolled_back"] is True and shown["keychain_head"] > shown["recorded_head"]
    refused = run("save", "-", input=json.dumps(_doc("three")))
    assert refused.exit_code == 16 and "head accept" in refused.output
    verified = run("verify", "--json")
    assert verified.exit_code == 15
    assert "rollback" in [p["code"] for p in json.loads(verified.output)["problems"]]
    assert run("list", "--json").exit_code == 0
    accepted = json.loads(run("head", "accept", "--json").output)
    assert accepted["accepted"] is True and accepted["rolled_back"] is False
    assert run("save", "-", input=json.dumps(_doc("three"))).exit_code == 0
    assert run("verify").exit_code == 0
    _fresh_process()


def _passphrase_vault_and_backup(vault_path: Path, backup: Path) -> None:
    """A passphrase vault with one session copied to *backup*, then a second session saved."""
    Vault.init(vault_path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        v.save(_doc("one"))
    shutil.copytree(vault_path, backup)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        v.save(_doc("two"))


def test_cli_passphrase_vault_kept_head(
    run: Callable[..., Result], vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _passphrase_vault_and_backup(vault_path, tmp_path / "backup")

    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASSPHRASE)
    shown = run("head", "show")
    assert shown.exit_code == 0
    head = shown.stdout.strip()
    assert head.startswith("sseal-head2:") and "undetectable from inside" in shown.stderr
    doc = json.loads(run("head", "show", "--json").output)
    assert doc["keychain_head"] is None and "undetectable" in doc["note"]
    # Every command moves the history on (its audit record): the second show prints a newer head
    # of the same vault (a later record of its audit chain), which holds the first.
    assert doc["head"].startswith("sseal-head2:") and int(doc["head"].split(":")[1]) > int(head.split(":")[1])
    assert run("verify", "--expect-head", doc["head"]).exit_code == 0
    assert run("verify", "--expect-head", head).exit_code == 0
    # A whole-vault rollback: consistent, undetectable from inside; the kept head shows it.
    _restore(tmp_path / "backup", vault_path)
    rolled = run("verify", "--expect-head", head, "--json")
    assert rolled.exit_code == 15
    assert ("rollback", "keytable.sst") in [(p["code"], p["path"]) for p in json.loads(rolled.output)["problems"]]
    assert run("verify").exit_code == 0
    # Not a head of this vault: bad input, never echoed.
    _, seq, _, check = head.split(":")
    for bad in ("sseal-head2:1:" + "0" * 32 + ":" + "0" * 16, f"sseal-head2:{seq}:{'ab' * 16}:{check}", "garbage"):
        r = run("verify", "--expect-head", bad)
        assert r.exit_code == 8 and bad not in r.output
    assert "Nothing to accept" in run("head", "accept").output


def test_cli_reads_of_a_restored_copy_do_not_hide_it_from_a_kept_head(
    run: Callable[..., Result], vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _passphrase_vault_and_backup(vault_path, tmp_path / "backup")
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASSPHRASE)
    head = run("head", "show").stdout.strip()
    _restore(tmp_path / "backup", vault_path)
    for _ in range(5):  # reads of the restored copy (each records its 'open')
        assert run("list").exit_code == 0
    assert run("verify", "--expect-head", head).exit_code == 15


# -- the kept head names a record of the audit history, not a counter ----------------------------


def _pp_open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


def _pp_vault(path: Path, backup: Path) -> str:
    """A passphrase vault with a backup of it taken before a second save; the head kept after."""
    Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    with _pp_open(path) as v:
        v.save(_doc("one"))
    shutil.copytree(path, backup)
    with _pp_open(path) as v:
        v.save(_doc("two"))
        return v.head().kept_head


def test_a_kept_head_is_a_record_of_the_audit_chain_and_later_heads_hold_it(vault_path: Path, tmp_path: Path) -> None:
    _pp_vault(vault_path, tmp_path / "backup")
    with _pp_open(vault_path) as v:
        head = v.head().kept_head
        prefix, seq, mac, check = head.split(":")
        assert (prefix, len(mac), len(check)) == ("sseal-head2", 32, 16) and head.isascii()
        anchored = v.parts.keys.keytable(fresh=True).state.audit  # the 'open' of head() itself
        assert anchored is not None and (anchored.seq, anchored.mac[:32]) == (int(seq), mac)
        for _ in range(3):
            v.list()
        status = v.head()
        assert status.descent(head) is None and not status.older_than(head)
        assert status.descent(status.kept_head) is None


def test_a_restored_copy_is_older_than_a_kept_head_whatever_it_did_since(vault_path: Path, tmp_path: Path) -> None:
    head = _pp_vault(vault_path, tmp_path / "backup")
    _restore(tmp_path / "backup", vault_path)
    with _pp_open(vault_path) as v:  # as restored: fewer records than the kept head names
        why = v.head().descent(head)
        assert why is not None and "ends at audit record" in why
    with _pp_open(vault_path) as v:
        for _ in range(10):  # reads and a write: the copy's history passes the kept head's place
            v.list()
        v.save(_doc("three"))
        status = v.head()
        assert int(status.kept_head.split(":")[1]) > int(head.split(":")[1])
        why = status.descent(head)
        assert why is not None and "another record" in why and head not in why


def test_a_restored_copy_with_the_newer_audit_log_grafted_on_is_older_than_a_kept_head(
    vault_path: Path, tmp_path: Path
) -> None:
    head = _pp_vault(vault_path, tmp_path / "backup")
    newer = tmp_path / "newer"
    shutil.copytree(vault_path, newer)
    _restore(tmp_path / "backup", vault_path)
    shutil.rmtree(vault_path / "audit")
    shutil.copytree(newer / "audit", vault_path / "audit")
    with _pp_open(vault_path) as v:
        # Its records are the vault's (MACed under its key), so the copy's next writer continues
        # from them, but says it adopted them: its key table never anchored the kept head's record.
        why = v.head().descent(head)
        assert why is not None and "adopted" in why
        adopted = [r for r in v.audit_records() if r["action"] == "audit.adopted"]
        assert len(adopted) == 1 and adopted[0]["detail"]["to"] >= int(head.split(":")[1])


def test_a_head_of_another_vault_or_an_old_format_is_bad_input(vault_path: Path, tmp_path: Path) -> None:
    head = _pp_vault(vault_path, tmp_path / "backup")
    other = tmp_path / "other"
    Vault.init(other, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    with _pp_open(other) as v:
        v.save(_doc("one"))
        v.save(_doc("two"))
        theirs = v.head().kept_head
    with _pp_open(vault_path) as v:
        status = v.head()
        for bad in (theirs, "sseal-head1:5:" + "ab" * 16, head.upper(), head + ":0", head.replace(":", ": ", 1)):
            with pytest.raises(errors.InvalidInput) as caught:
                status.descent(bad)
            assert bad not in str(caught.value)
        with pytest.raises(errors.InvalidInput, match="older format"):
            status.descent("sseal-head1:5:00")


def test_a_vault_not_yet_migrated_keeps_the_head_anchor_sst_vouches_for(vault: Vault) -> None:
    from tests._infra.legacy import untrack

    vault.save(_doc("one"))
    untrack(vault)
    status = vault.head()
    assert not status.tracked and int(status.kept_head.split(":")[1]) > 0
    vault.list()
    assert vault.head().descent(status.kept_head) is None


def test_a_head_whose_record_the_audit_retention_removed_cannot_be_vouched_for(vault: Vault) -> None:
    head = vault.head().kept_head
    vault.set_config({"audit": {"rotate_bytes": 65536, "keep_files": 1}})
    for _ in range(700):
        vault.list()
    status = vault.head()
    assert status.descent(status.kept_head) is None
    why = status.descent(head)
    assert why is not None and "retention removed" in why


def test_records_of_a_killed_writer_are_adopted_by_the_next_one_and_said_so(vault: Vault, vault_path: Path) -> None:
    auditor, keys = vault.parts.auditor, vault.parts.keys
    table = keys.keytable(fresh=True)
    before = table.state.audit
    assert before is not None
    # A writer killed after its append, before its commit moved the anchored head; then another
    # killed mid-line: the repair seals the torn line and says which records it adopted.
    auditor.log.append_many(table.vault_secret, [{"action": "list", "outcome": "ok"}], chain=auditor.chain(table))
    with (vault_path / "audit" / "audit.log").open("ab") as f:
        f.write(b'{"action":"li')
    report = vault.verify_audit(repair=True)
    assert report.ok and report.repaired
    actions = [(r["action"], r.get("detail")) for r in vault.audit_records()]
    assert ("audit.adopted", {"from": before.seq + 1, "to": before.seq + 1}) in actions
    assert [a for a, _ in actions][-3:-1] == ["audit.torn-tail", "audit.adopted"]
    vault.list()  # the next writer continues from the anchored head: nothing more to adopt
    assert [r["action"] for r in vault.audit_records()].count("audit.adopted") == 1
