"""After ``delete``, ``cleanup`` (and a rekey after either), no fts file opened with every key
the vault still holds (the manifest under the key store's master keys, each segment and delta
log under every key that manifest names) gives a term, the session id or a stamp of the erased
session; and a copy of ``fts/`` taken before the erase opens with none of those keys
(docs/secure-deletion.md; docs/spec/fts-v1.md, "Rotation and erasure"). Through the key file
(the passphrase provider's key store); tests/integration/test_fts_erase.py does it through a
real Secret Service, tests/integration/test_fts_crash.py under SIGKILL."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from sessionseal import Vault, errors
from sessionseal._fs import Dir
from sessionseal._fts import SegmentReader, read_delta
from sessionseal._vault._ftsfiles import FTS_DIR, Manifest
from tests._infra import ftscrash
from tests.integration.test_fts_crash import _build

WORDS = ("victimword", "victimappend")


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=ftscrash.PASSPHRASE, auto_cleanup=False)


def _opens(p: Path, vault: Vault, key: bytes) -> None:
    if p.suffix == ".seg":
        SegmentReader(p, vault.vault_id, uuid.UUID(hex=p.stem), key).close()
    elif p.suffix == ".delta":
        read_delta(p.read_bytes(), vault.vault_id, key)


def _opens_with_none_of_the_keys_held(old: Path, vault: Vault) -> None:
    master = vault.parts.keys.fresh_master()
    old_dir, live_dir = Dir(old), Dir(vault.parts.ctx.path / FTS_DIR)
    try:
        with pytest.raises(errors.IntegrityError):
            Manifest.load(old_dir, vault.vault_id, master)
        man = Manifest.load(live_dir, vault.vault_id, master)
    finally:
        old_dir.close()
        live_dir.close()
    keys = [s.key for s in man.segments] + [man.delta_key]
    for p in sorted(old.iterdir()):
        if p.suffix in (".seg", ".delta"):
            for key in keys:
                with pytest.raises(errors.IntegrityError):
                    _opens(p, vault, key)


@pytest.mark.parametrize("how", ["delete", "cleanup", "delete+rekey", "cleanup+rekey"])
def test_nothing_the_keys_held_open_gives_the_erased_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    path, old = tmp_path / "vault", tmp_path / "old-fts"
    ids = _build(path, monkeypatch)
    victim = ids["victim"]
    with _open(path) as v:
        st = os.stat(path / "sessions" / (v.parts.keys.file_name(victim) + ".sst"))
        victim_stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        sessions, terms, stamps = ftscrash.readable_now(v)
        assert victim in sessions and set(WORDS) <= terms and victim_stamp in stamps  # the probe sees it
    shutil.copytree(path / FTS_DIR, old)  # a backup of fts/ taken before the erase

    with _open(path) as v:
        if how.startswith("delete"):
            v.delete(victim)
        else:
            assert victim in v.cleanup(ftscrash.CLEANUP_POLICY).removed
        if how.endswith("+rekey"):
            v.rekey()
    with _open(path) as v:
        assert len(v.parts.keys.fresh_master().keys) == 1  # the old epoch left the key store
        sessions, terms, stamps = ftscrash.readable_now(v)
        assert victim not in sessions
        assert not set(WORDS) & terms and "victim" not in terms  # its title's word too
        assert victim_stamp not in stamps
        assert {ids["zero"], ids["two"], ids["three"]} <= sessions and "alphaword" in terms  # the rest stays
        for p in (path / FTS_DIR).iterdir():  # nor in the clear, of course
            raw = p.read_bytes()
            assert victim.bytes not in raw and victim.hex.encode() not in raw
            assert not any(w.encode() in raw for w in WORDS)
        _opens_with_none_of_the_keys_held(old, v)
        with v.parts.fulltext.view() as view:
            assert view is not None and victim not in view.index.docs and view.index.search("victimword") == []
    # The old copy put back in place of fts/: no index (its epoch is gone), never the erased words.
    shutil.rmtree(path / FTS_DIR)
    shutil.copytree(old, path / FTS_DIR)
    with _open(path) as v, v.parts.fulltext.view() as view:
        assert view is None
