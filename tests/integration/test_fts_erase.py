"""The full-text index at a crypto-erase, through a real Secret Service (docs/secure-deletion.md,
docs/spec/fts-v1.md "Rotation and erasure"): after ``delete``, no file of ``fts/`` that the keys
the vault and the keychain hold now can open returns the erased session or its words, and a copy
of ``fts/`` taken before the delete opens with none of them."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import keyring
import pytest

from sessionseal import Vault, errors
from sessionseal._fs import Dir
from sessionseal._fts import SegmentReader, read_delta
from sessionseal._keystore import SERVICE, MasterKeys, decode_keys
from sessionseal._vault import _fulltext
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, Manifest

GONE = "quokkalaunchcode"


def _session(title: str, text: str) -> dict[str, object]:
    return {"title": title, "messages": [{"role": "user", "content": text}]}


def _readable(fts: Path, vault_id: uuid.UUID, held: MasterKeys) -> tuple[set[uuid.UUID], set[str]]:
    """Every session and term any file of *fts* gives with the keys *held* leads to."""
    d = Dir(fts)
    try:
        man = Manifest.load(d, vault_id, held)
    finally:
        d.close()
    keys = [s.key for s in man.segments] + [man.delta_key]
    sessions: set[uuid.UUID] = set()
    terms: set[str] = set()
    for p in sorted(fts.iterdir()):
        for key in keys:
            try:
                if p.suffix == ".seg":
                    with SegmentReader(p, vault_id, uuid.UUID(hex=p.stem), key) as r:
                        for a in r.read_all():
                            sessions.add(a.entry.session_id)
                            terms |= set(a.terms)
                elif p.suffix == ".delta":
                    for rec in read_delta(p.read_bytes(), vault_id, key, torn_tail_ok=True):
                        sessions.add(rec.doc.session_id)
                        terms |= set(rec.terms)
            except errors.IntegrityError:
                continue
    return sessions, terms


def test_delete_erases_the_sessions_words_from_the_index_and_its_old_copies(
    real_backend: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 3)  # the session is in a segment and the delta log
    live, old = tmp_path / "live", tmp_path / "old-fts"
    with Vault.init(live) as v:
        gone = v.save(_session("launch plan", GONE))
        kept = [v.save(_session("t", f"kept{i}")) for i in range(3)]
        v.append(gone, [{"role": "assistant", "content": "noted " + GONE}])
        vault_id = v.vault_id
    shutil.copytree(live / FTS_DIR, old)  # a backup of the index, taken before the delete
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    sessions, terms = _readable(live / FTS_DIR, vault_id, held)
    assert gone in sessions and GONE in terms

    with Vault.open(live) as v:
        v.delete(gone)
        with v.parts.fulltext.view() as view:
            assert view is not None and view.index.search(GONE) == []
            assert {h.session_id for h in view.index.search("kept1")} == {kept[1]}

    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert len(held.keys) == 1
    sessions, terms = _readable(live / FTS_DIR, vault_id, held)
    assert gone not in sessions and GONE not in terms and set(kept) <= sessions
    d = Dir(old)
    try:
        with pytest.raises(errors.IntegrityError):
            Manifest.load(d, vault_id, held)  # the old manifest, and every key in it, is gone
    finally:
        d.close()
    assert (old / MANIFEST).exists()
    Vault.open(live).destroy()
