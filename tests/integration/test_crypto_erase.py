"""Crypto-erase and rekey (docs/secure-deletion.md): through the real keychain, and under SIGKILL.

The property: after ``delete``, nothing the vault and the keychain hold *now* can decrypt
the deleted session, not even from a copy of the vault's files taken *before* the delete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keyring
import pytest

from sessionseal import PassphraseProvider, Vault, errors
from sessionseal._container import parse_unverified_header
from sessionseal._keystore import SERVICE, MasterKeys, decode_keys
from sessionseal._keytable import KEYTABLE, KeyTable
from sessionseal._passphrase import KEYFILE

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSPHRASE = "erase tests"
GONE = "the launch code is 7431-ALPHA-erased"
KEPT = "this one stays"


def _session(text: str) -> dict[str, object]:
    return {"title": text, "messages": [{"role": "user", "content": text}]}


def test_a_deleted_session_cannot_be_recovered_from_an_old_copy(real_backend: None, tmp_path: Path) -> None:
    live, copy = tmp_path / "live", tmp_path / "copy"
    with Vault.init(live) as v:
        gone, kept = v.save(_session(GONE)), v.save(_session(KEPT))
        vault_id = v.vault_id
        gone_file = copy / "sessions" / (v._file_name(gone) + ".sst")
    shutil.copytree(live, copy)  # a backup, a snapshot, the remnants on an SSD
    with Vault.open(live) as v:
        v.delete(gone)
        assert v.load(kept).messages[0].content[0].text == KEPT  # type: ignore[union-attr]
        with pytest.raises(errors.SessionNotFound):
            v.load(gone)

    # Everything the keychain holds for this vault now:
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert len(held.keys) == 1
    # ... opens no copy of the old key table,
    old_table = copy / KEYTABLE
    header = parse_unverified_header(old_table.read_bytes())
    assert header.kek_epoch not in held.keys
    with pytest.raises(errors.SessionSealError):
        _load_table(copy, vault_id, held)
    # ... and the live table no longer has the session's key, so its old file is noise.
    with Vault.open(live) as v:
        assert gone not in v._keytable().session_keys
        shutil.copy2(gone_file, live / "sessions" / gone_file.name)
        with pytest.raises(errors.SessionSealError):
            v.load(gone)
        (live / "sessions" / gone_file.name).unlink()
    # The copy, opened with the keychain as it is now, yields nothing.
    with Vault.open(copy) as c, pytest.raises(errors.KeyStoreError):
        c.load(gone)
    # Nor is the text anywhere in the live vault's files.
    assert GONE.encode() not in b"".join(p.read_bytes() for p in live.rglob("*") if p.is_file())
    Vault.open(live).destroy()


def _load_table(path: Path, vault_id: object, master: MasterKeys) -> KeyTable:
    from sessionseal._fs import Dir

    d = Dir(path)
    try:
        return KeyTable.load(d, vault_id, master)  # type: ignore[arg-type]
    finally:
        d.close()


def test_rekey_through_the_real_keychain_keeps_every_session(real_backend: None, tmp_path: Path) -> None:
    with Vault.init(tmp_path / "v") as v:
        ids = [v.save(_session(f"session {i}")) for i in range(3)]
        first = v._keytable().kek_epoch
        assert v.rekey() == first + 1
        vault_id = v.vault_id
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert sorted(held.keys) == [first + 1]
    from sessionseal import _keystore

    _keystore._cache.clear()  # a new process: the key comes from the keychain
    with Vault.open(tmp_path / "v") as v:
        assert [v.load(i).title for i in ids] == ["session 0", "session 1", "session 2"]
        rekeys = [r for r in v.audit_records() if r["action"] == "rekey"]
        assert [(r["detail"]["from_epoch"], r["detail"]["epoch"]) for r in rekeys] == [(first, first + 1)]
        v.destroy()


ROTATOR = textwrap.dedent(
    """
    import sys
    from sessionseal import Vault
    with Vault.open(sys.argv[1], passphrase=sys.argv[2]) as v:
        ids = sys.argv[3:]
        for i in range(10_000):
            if ids and i % 3 == 2:
                v.delete(ids.pop())
                print("deleted", flush=True)
            else:
                v.rekey()
                print("rekeyed", flush=True)
    """
)


def _epochs(path: Path) -> list[int]:
    return sorted(int(e) for e in json.loads((path / KEYFILE).read_text())["keys"])


def test_sigkill_during_rekey_and_delete_never_loses_a_kept_session(tmp_path: Path) -> None:
    rng = random.Random(5)
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        keep = {str(v.save(_session(f"keep {i}"))) for i in range(4)}
        for i in range(30):
            v.save(_session(f"victim {i}"))
    for _ in range(12):
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            victims = [str(s.id) for s in v.list() if str(s.id) not in keep]
        proc = subprocess.Popen(
            [sys.executable, "-c", ROTATOR, str(path), PASSPHRASE, *victims],
            env={**os.environ, "PYTHONPATH": SRC},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.3, 0.9))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        acknowledged = set(victims[len(victims) - out.split().count("deleted") :])
        # A rotation in flight leaves at most the old key and the new one.
        epochs = _epochs(path)
        assert 1 <= len(epochs) <= 2
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            listed = {str(s.id) for s in v.list()}  # first use finishes a killed rotation
            assert keep <= listed and not (acknowledged & listed)
            assert sorted(v.load(k).title for k in keep) == [f"keep {i}" for i in range(4)]
            assert v.verify_audit().ok
        assert len(_epochs(path)) == 1
