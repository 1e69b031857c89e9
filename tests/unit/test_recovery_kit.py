"""``sessionseal key export|import --recovery-kit`` (issue 26, "Keys": the recovery story of a
single-machine vault; docs/sync.md, "Recovery kit"; docs/spec/remote-v1.md, "Recovery kit").

The spec: a kit holds the master key of the epoch the key table is under, wrapped under a
passphrase of its own (scrypt + AES-GCM, a type-2 stanza bound to the vault's id and the epoch),
written 0600 and never printed; on a machine whose key store has no key of the vault, ``key
import`` checks the kit opens the vault's key table and stores the key, and the vault reads;
a wrong passphrase (12), another vault's kit, another epoch's, a non-kit, or a key store that
holds another key of the vault (8) change nothing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner, Result

from sessionseal import PassphraseProvider, Vault, _keystore, _recoverykit, _remotekeys
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput, WrongPassphrase
from tests.memkeyring import MemoryKeyring

KIT_PW = "kit passphrase, long enough"


class Machine:
    """One machine's key store: an in-memory keychain the product takes for the OS keychain."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keyring = MemoryKeyring()
        self._monkeypatch = monkeypatch

    def use(self) -> None:
        keyring.set_keyring(self.keyring)
        self._monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: self.keyring)
        _keystore._cache.clear()  # a fresh process's view

    def run(self, vault: Path, *args: str, env: dict[str, str] | None = None) -> Result:
        self.use()
        return CliRunner().invoke(cli, ["--vault", str(vault), *args], env=env or {})


@pytest.fixture
def machines(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Machine, Machine]]:
    previous = keyring.get_keyring()
    try:
        yield Machine(monkeypatch), Machine(monkeypatch)
    finally:
        keyring.set_keyring(previous)
        _keystore._cache.clear()


def _pw_file(tmp_path: Path, text: str = KIT_PW, name: str = "kitpw") -> Path:
    p = tmp_path / name
    p.write_text(text)
    p.chmod(0o600)
    return p


def _vault_with_sessions(machine: Machine, path: Path) -> list[str]:
    assert machine.run(path, "init").exit_code == 0
    ids = []
    for i in range(3):
        doc = json.dumps({"title": f"s{i}", "messages": [{"role": "user", "content": f"hello {i}"}]})
        res = CliRunner().invoke(cli, ["--vault", str(path), "save"], input=doc)
        assert res.exit_code == 0, res.stderr
        ids.append(res.stdout.strip())
    return ids


def _show(machine: Machine, vault: Path, sid: str) -> dict[str, object]:
    res = machine.run(vault, "show", sid, "--json")
    assert res.exit_code == 0, res.stderr
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def test_a_kit_restores_a_keychain_vault_on_a_machine_whose_keychain_never_held_its_key(
    machines: tuple[Machine, Machine], tmp_path: Path
) -> None:
    a, b = machines
    vault = tmp_path / "vault"
    ids = _vault_with_sessions(a, vault)
    kit = tmp_path / "kit.json"
    res = a.run(
        vault, "key", "export", "--recovery-kit", str(kit), "--kit-passphrase-file", str(_pw_file(tmp_path)), "--json"
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["epoch"] == 1
    assert stat.S_IMODE(kit.stat().st_mode) == 0o600
    # The key is in the kit only wrapped: neither it nor the keychain value appears anywhere printed.
    value = a.keyring.get_password("sessionseal", _vault_id(vault))
    assert value is not None
    master = base64.b64decode(value.split(";")[1].split(":")[1])
    for text in (kit.read_bytes(), res.stdout.encode(), res.stderr.encode()):
        assert master not in text and base64.b64encode(master) not in text and master.hex().encode() not in text
    expected = {sid: _show(a, vault, sid) for sid in ids}

    # The fresh machine: a copy of the vault (restored from a backup) and an empty keychain.
    copy = tmp_path / "restored"
    shutil.copytree(vault, copy, symlinks=True)
    assert b.run(copy, "list").exit_code == 5  # no key here: exit 5, the keychain has none
    res = b.run(
        copy, "key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", str(_pw_file(tmp_path)), "--json"
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"epoch": 1, "stored": True}
    assert {sid: _show(b, copy, sid) for sid in ids} == expected
    assert b.run(copy, "verify", "--read-data").exit_code == 0
    # Again: the key is there already, nothing changes.
    res = b.run(
        copy, "key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", str(_pw_file(tmp_path)), "--json"
    )
    assert (res.exit_code, json.loads(res.stdout)["stored"]) == (0, False)
    actions = [json.loads(line)["action"] for line in b.run(copy, "audit", "show", "--json").stdout.splitlines()]
    assert "key.export" in actions and actions.count("key.import") == 2


def _vault_id(vault: Path) -> str:
    return str(json.loads((vault / "vault.json").read_text())["vault_id"])


def test_refusals_change_nothing(machines: tuple[Machine, Machine], tmp_path: Path) -> None:
    a, b = machines
    vault, other = tmp_path / "vault", tmp_path / "other"
    ids = _vault_with_sessions(a, vault)
    _vault_with_sessions(a, other)
    kit, other_kit = tmp_path / "kit.json", tmp_path / "other.json"
    pw = str(_pw_file(tmp_path))
    assert a.run(vault, "key", "export", "--recovery-kit", str(kit), "--kit-passphrase-file", pw).exit_code == 0
    assert a.run(other, "key", "export", "--recovery-kit", str(other_kit), "--kit-passphrase-file", pw).exit_code == 0
    # An existing file is never written over.
    res = a.run(vault, "key", "export", "--recovery-kit", str(kit), "--kit-passphrase-file", pw)
    assert res.exit_code == 8
    copy = tmp_path / "restored"
    shutil.copytree(vault, copy)

    def refused(kit_path: Path, pw_path: str, code: int) -> None:
        res = b.run(copy, "key", "import", "--recovery-kit", str(kit_path), "--kit-passphrase-file", pw_path)
        assert res.exit_code == code, res.stderr
        assert res.stderr.startswith("sessionseal: error: ") and res.stderr.count("\n") == 1, res.stderr
        assert res.stdout == ""
        assert b.keyring.get_password("sessionseal", _vault_id(copy)) is None

    res = b.run(tmp_path / "nowhere", "key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", pw)
    assert res.exit_code == 10 and res.stderr.count("\n") == 1, res.stderr  # restore the vault first
    refused(kit, str(_pw_file(tmp_path, "wrong passphrase!", "bad")), 12)

    refused(other_kit, pw, 8)  # another vault's
    not_a_kit = tmp_path / "nothing.json"
    not_a_kit.write_text('{"format": "sessionseal-keyfile"}')
    refused(not_a_kit, pw, 8)
    edited = tmp_path / "edited.json"
    doc = json.loads(kit.read_text())
    stanza = bytearray(base64.b64decode(doc["master_key"]))
    stanza[-1] ^= 1
    doc["master_key"] = base64.b64encode(bytes(stanza)).decode()
    edited.write_text(json.dumps(doc))
    refused(edited, pw, 12)  # AES-GCM cannot tell an edited kit from a wrong passphrase
    doc["epoch"] = 2
    edited.write_text(json.dumps(doc))
    refused(edited, pw, 8)  # a kit's epoch must be the key table's

    # A key store that holds another key of the vault is never changed.
    b.use()
    another = a.keyring.get_password("sessionseal", _vault_id(other))
    assert another is not None
    b.keyring.set_password("sessionseal", _vault_id(copy), another)
    before = b.keyring.get_password("sessionseal", _vault_id(copy))
    res = b.run(copy, "key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", pw)
    assert res.exit_code == 8
    assert b.keyring.get_password("sessionseal", _vault_id(copy)) == before
    assert ids


def test_a_kit_opens_the_copies_of_its_epoch_only(machines: tuple[Machine, Machine], tmp_path: Path) -> None:
    # Crypto-erase, as docs/secure-deletion.md says: a kit made before a delete restores a
    # snapshot made then (the session erased since included), and not the vault after the delete.
    a, b = machines
    vault = tmp_path / "vault"
    ids = _vault_with_sessions(a, vault)
    pw = str(_pw_file(tmp_path))
    assert a.run(vault, "snapshot", "--to", str(tmp_path / "snap")).exit_code == 0
    assert (
        a.run(vault, "key", "export", "--recovery-kit", str(tmp_path / "kit1"), "--kit-passphrase-file", pw).exit_code
        == 0
    )
    assert a.run(vault, "delete", ids[0], "--yes").exit_code == 0
    after = tmp_path / "after"
    shutil.copytree(vault, after)
    res = b.run(after, "key", "import", "--recovery-kit", str(tmp_path / "kit1"), "--kit-passphrase-file", pw)
    assert res.exit_code == 8 and "epoch 1" in res.stderr and "epoch 2" in res.stderr
    res = b.run(
        tmp_path / "snap", "key", "import", "--recovery-kit", str(tmp_path / "kit1"), "--kit-passphrase-file", pw
    )
    assert res.exit_code == 0, res.stderr
    assert _show(b, tmp_path / "snap", ids[0])["title"] == "s0"  # erased since, readable in the old copy with its kit


def test_a_passphrase_vault_that_lost_its_key_file_gets_a_new_one(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    with Vault.init(vault, key_provider=PassphraseProvider("the old one", log2_n=14)) as v:
        sid = str(v.save({"title": "t", "messages": [{"role": "user", "content": "hi"}]}))
        epoch = v.backups.export_kit(tmp_path / "kit", KIT_PW)
    (vault / "keyfile.json").unlink()
    with pytest.raises(WrongPassphrase):
        _import(vault, tmp_path / "kit", "not it", b"new vault passphrase")
    assert _import(vault, tmp_path / "kit", KIT_PW, b"new vault passphrase") == (epoch, True)
    with Vault.open(vault, key_provider=PassphraseProvider("new vault passphrase")) as v:
        assert json.loads(v.load_json(sid))["title"] == "t"
    with pytest.raises(InvalidInput):  # it has a key file now: never replaced
        _import(vault, tmp_path / "kit", KIT_PW, b"another")


def _import(vault: Path, kit: Path, kit_pw: str, vault_pw: bytes) -> tuple[int, bool]:
    from sessionseal import import_recovery_kit

    return import_recovery_kit(vault, kit.read_bytes(), kit_pw, passphrase=vault_pw)


def test_the_kit_format_binds_the_vault_and_the_epoch() -> None:
    import uuid

    vid, key = uuid.uuid4(), os.urandom(32)
    data = _recoverykit.make(vid, 3, "keychain", key, KIT_PW)
    kit = _recoverykit.parse(data)
    assert (kit.vault_id, kit.epoch, kit.key_provider) == (vid, 3, "keychain")
    assert _recoverykit.open_kit(kit, KIT_PW) == key
    # The stanza is _remotekeys' type 2 with the vault's id and the epoch as its associated data.
    assert _remotekeys.unwrap_passphrase(kit.stanza[1:], vid, 3, KIT_PW) == key
    for moved in (
        _recoverykit.Kit(uuid.uuid4(), 3, "keychain", "", kit.stanza),
        _recoverykit.Kit(vid, 4, "keychain", "", kit.stanza),
    ):
        with pytest.raises(WrongPassphrase):
            _recoverykit.open_kit(moved, KIT_PW)
    assert base64.b64encode(key) not in data and key.hex().encode() not in data
