"""Retention through the real keychain: what cleanup removes is crypto-erased (docs/retention.md).

The same property as for 'delete' (test_crypto_erase.py), for a whole cleanup run with one
key rotation: a copy of the vault taken before the run yields none of the removed
sessions with what the keychain holds afterwards, while the kept ones still load.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest

from sessionseal import Vault, errors
from sessionseal._keystore import SERVICE, decode_keys

GONE = "the old deploy key story, to be forgotten"


def _old(title: str, days: int, **extra: object) -> dict[str, object]:
    t = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    doc: dict[str, object] = {"title": title, "status": "completed", "created_at": t, "updated_at": t}
    return {**doc, "messages": [{"role": "user", "content": f"{title}: {GONE if days > 30 else 'kept'}"}], **extra}


def test_cleanup_through_the_real_keychain_leaves_old_copies_useless(real_backend: None, tmp_path: Path) -> None:
    live, copy = tmp_path / "live", tmp_path / "copy"
    with Vault.init(live) as v:
        gone = [v.save(_old(f"old{i}", 60 + i), touch=False) for i in range(3)]
        kept = v.save(_old("recent", 5), touch=False)
        pinned = v.save(_old("pinned", 400, pinned=True), touch=False)
        vault_id = v.vault_id
    shutil.copytree(live, copy)
    with Vault.open(live) as v:
        result = v.cleanup({"max_age": "30d"})
        assert set(result.removed) == set(gone)
        assert v.load(kept).title == "recent" and v.load(pinned).title == "pinned"
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert list(held.keys) == [result.epoch]  # one rotation for the run, the old key is gone
    with Vault.open(copy, auto_cleanup=False) as c:
        for sid in gone:
            with pytest.raises(errors.KeyStoreError):
                c.load(sid)
    assert GONE.encode() not in b"".join(p.read_bytes() for p in live.rglob("*") if p.is_file())
    Vault.open(live).destroy()


def test_automatic_cleanup_at_open_through_the_real_keychain(real_backend: None, tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.init(path) as v:
        old = v.save(_old("old", 90), touch=False)
        recent = v.save(_old("recent", 2), touch=False)
        v.set_config({"retention": {"max_age": "30d", "auto_interval": "12h"}})
    with Vault.open(path) as v:
        assert v.last_auto_cleanup is not None and v.last_auto_cleanup.removed == [old]
        assert [s.id for s in v.list()] == [recent]
    with Vault.open(path) as v:
        assert v.last_auto_cleanup is None
        v.destroy()
