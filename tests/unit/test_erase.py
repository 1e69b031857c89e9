"""Crypto-erase and master-key rotation with the in-memory keyring (docs/secure-deletion.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, PassphraseProvider, Vault, errors
from sessionseal._keystore import MasterKeys
from sessionseal._keytable import KEYTABLE


def _s(text: str) -> dict[str, object]:
    return {"title": text, "messages": [{"role": "user", "content": text}]}


def _epochs(provider: KeychainProvider | PassphraseProvider, vault: Vault) -> list[int]:
    reload = getattr(provider, "reload", None)
    return sorted((reload or provider.load)(vault.vault_id).keys)


def test_delete_rotates_the_master_key_and_keeps_only_the_new_one(vault: Vault, provider: KeychainProvider) -> None:
    a, b = vault.save(_s("a")), vault.save(_s("b"))
    before = vault.parts.keys.keytable().kek_epoch
    vault.delete(a)
    assert _epochs(provider, vault) == [before + 1] == [vault.parts.keys.keytable().kek_epoch]
    assert vault.load(b).title == "b"
    record = next(r for r in vault.audit_records() if r["action"] == "delete")
    assert (record["action"], record["detail"]) == ("delete", {"epoch": before + 1, "overwritten": True})


def test_an_old_copy_of_the_vault_no_longer_opens(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    sid = vault.save(_s("secret plans"))
    shutil.copytree(vault_path, tmp_path / "copy")
    vault.rekey()
    with (
        Vault.open(tmp_path / "copy", key_provider=vault.parts.keys.provider) as old,
        pytest.raises(errors.KeyStoreError),
    ):
        old.load(sid)
    assert vault.load(sid).title == "secret plans"


def test_rekey_with_the_passphrase_provider(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.init(path, key_provider=PassphraseProvider("pw", log2_n=14)) as v:
        sid = v.save(_s("x"))
        assert v.rekey() == 2 and v.rekey() == 3
    with Vault.open(path, passphrase="pw") as v:
        assert v.load(sid).title == "x"
        assert _epochs(v.parts.keys.provider, v) == [3]  # type: ignore[arg-type]


def test_a_rotation_killed_after_the_table_was_rewritten_is_finished_on_first_use(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    sid = vault.save(_s("x"))
    table = vault.parts.keys.keytable()
    old = provider.load(vault.vault_id)
    new_key = bytes(range(32))
    # Steps 1 and 2 of a rotation, then the "kill": the key store still holds the old key.
    provider.store(vault.vault_id, MasterKeys({**old.keys, 2: new_key}))
    table.write(vault.parts.ctx.root, new_key, 2)
    assert _epochs(provider, vault) == [1, 2]
    with Vault.open(vault_path, key_provider=provider) as again:
        assert again.load(sid).title == "x"
        assert _epochs(provider, again) == [2]
        assert any(r["action"] == "rekey.finish" for r in again.audit_records())


def test_a_rotation_killed_before_the_table_was_rewritten_drops_the_unused_key(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    sid = vault.save(_s("x"))
    old = provider.load(vault.vault_id)
    provider.store(vault.vault_id, MasterKeys({**old.keys, 2: bytes(32)}))  # step 1 only
    with Vault.open(vault_path, key_provider=provider) as again:
        assert again.load(sid).title == "x"
        assert _epochs(provider, again) == [1]


def test_delete_overwrites_the_file_before_unlinking_it(vault: Vault, vault_path: Path) -> None:
    sid = vault.save(_s("y" * 5000))
    name = vault.parts.keys.file_name(sid) + ".sst"
    keep = (vault_path / "sessions" / name).open("rb")  # a reader holding the inode sees the overwrite
    try:
        vault.delete(sid)
        assert not (vault_path / "sessions" / name).exists()
        assert keep.read() == b""  # truncated after the zeros were written and synced
    finally:
        keep.close()
    assert (vault_path / KEYTABLE).exists()


def test_a_rotation_after_a_killed_one_never_leaves_three_keys(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    sid = vault.save(_s("x"))
    old = provider.load(vault.vault_id)
    provider.store(vault.vault_id, MasterKeys({**old.keys, 2: bytes(32)}))  # killed after step 1
    seen: list[list[int]] = []
    real_store = provider.store

    def spy(vault_id: object, keys: MasterKeys) -> None:
        seen.append(sorted(keys.keys))
        real_store(vault_id, keys)  # type: ignore[arg-type]

    provider.store = spy  # type: ignore[method-assign]
    vault.rekey()
    assert seen == [[1, 3], [3]]
    assert vault.load(sid).title == "x"


def test_a_failed_rotation_keeps_the_session(vault: Vault, provider: KeychainProvider) -> None:
    sid = vault.save(_s("x"))

    def broken(vault_id: object, keys: MasterKeys) -> None:
        raise errors.KeyUnavailable("the keychain is locked")

    provider.store = broken  # type: ignore[method-assign]
    with pytest.raises(errors.KeyUnavailable):
        vault.delete(sid)
    assert vault.load(sid).title == "x"
    assert [s.id for s in vault.list()] == [sid]


def test_temp_files_of_dead_writers_are_shredded_and_live_ones_left(vault: Vault, vault_path: Path) -> None:
    import os
    import subprocess
    import sys

    from sessionseal._fs import TMP_PREFIX

    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    names = {
        "dead": f"{TMP_PREFIX}{dead.stdout.strip()}-aaaa",  # a key file a killed rotation was writing
        "mine": f"{TMP_PREFIX}{os.getpid()}-bbbb",
        "odd": f"{TMP_PREFIX}not-a-pid",
    }
    for name in names.values():
        (vault_path / name).write_bytes(b"wrapped old master key")
        (vault_path / name).chmod(0o600)
    vault.rekey()  # a rotation sweeps the vault root first
    assert not (vault_path / names["dead"]).exists()
    assert (vault_path / names["mine"]).exists() and (vault_path / names["odd"]).exists()


def test_shred_moves_the_name_away_first(vault: Vault, vault_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    sid = vault.save(_s("x"))
    name = vault.parts.keys.file_name(sid) + ".sst"
    seen: list[list[str]] = []
    real = os.ftruncate

    def spy(fd: int, length: int) -> None:
        seen.append(sorted(os.listdir(vault_path / "sessions")))
        real(fd, length)

    monkeypatch.setattr(os, "ftruncate", spy)
    assert vault.parts.ctx.sessions.shred(name)
    assert seen and name not in seen[0] and any(n.startswith(".tmp-") for n in seen[0])
    assert os.listdir(vault_path / "sessions") == []


def test_the_key_table_is_compacted_when_its_deltas_pile_up(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal import _keytable

    monkeypatch.setattr(_keytable, "_COMPACT_AFTER", 3)
    ids = [vault.save(_s(f"s{i}")) for i in range(6)]
    table = vault.parts.keys.keytable(fresh=True)
    assert table._frames <= 4 and table.kek_epoch == 1
    assert [vault.load(sid).title for sid in ids] == [f"s{i}" for i in range(6)]
