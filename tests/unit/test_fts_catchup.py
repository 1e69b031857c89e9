"""The full-text index catches up with a write it missed (issue 23; docs/reliability.md, "The
full-text index"): an append is indexed as a record of its turn only when the index holds the
session as it was before it; otherwise the session is rewritten and indexed whole. Before, a
turn's record on top of a missed write made the session look current without its missed words
(search then neither streamed it nor found it). tests/integration/test_fts_crash.py kills real
writers at these steps."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault
from sessionseal._vault import _fulltext


def _current_and_found(vault: Vault, sid: uuid.UUID, word: str) -> tuple[bool, bool]:
    name = vault.parts.ctx.path / "sessions" / (vault.parts.keys.file_name(sid) + ".sst")
    st = os.stat(name)
    with vault.parts.fulltext.view() as view:
        assert view is not None
        current = view.stamps.get(sid) == (st.st_ino, st.st_size, st.st_mtime_ns)
        return current, sid in {h.session_id for h in view.index.search(word)}


def _missing_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's next update fails (a full disk, a kill): the session write stands."""
    real = _fulltext.FullText._record

    def fail_once(self: _fulltext.FullText, *a: object, **kw: object) -> bool:
        monkeypatch.setattr(_fulltext.FullText, "_record", real)
        raise OSError("no space left")

    monkeypatch.setattr(_fulltext.FullText, "_record", fail_once)


def test_an_append_after_a_missed_save_indexes_the_session_whole(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.save({"title": "other", "messages": [{"role": "user", "content": "other"}]})  # the index exists
    _missing_once(monkeypatch)
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "quinceword"}]})
    assert _current_and_found(vault, sid, "quinceword") == (False, False)  # stale: streamed
    vault.append(sid, [{"role": "assistant", "content": "later"}])
    assert _current_and_found(vault, sid, "quinceword") == (True, True)
    assert _current_and_found(vault, sid, "later") == (True, True)


def test_an_append_after_a_missed_append_indexes_the_session_whole(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "first"}]})
    _missing_once(monkeypatch)
    vault.append(sid, [{"role": "assistant", "content": "missedword"}])
    assert _current_and_found(vault, sid, "missedword") == (False, False)
    vault.append(sid, [{"role": "assistant", "content": "third"}])
    assert _current_and_found(vault, sid, "missedword") == (True, True)
    assert _current_and_found(vault, sid, "first") == (True, True)


def test_appends_in_a_row_stay_records_of_their_turns(vault: Vault) -> None:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "first"}]})
    generation = vault.list()[0].generation
    for i in range(3):
        vault.append(sid, [{"role": "assistant", "content": f"turn{i}"}])
    assert vault.list()[0].generation == generation  # not rewritten: the index held each step
    assert _current_and_found(vault, sid, "turn2") == (True, True)


@pytest.mark.parametrize("copy", [shutil.copy2, shutil.copy], ids=["mtimes-kept", "mtimes-new"])
def test_an_append_in_a_vault_restored_from_a_file_copy_is_a_record_of_its_turn(
    vault: Vault, provider: KeychainProvider, tmp_path: Path, copy: Callable[[str, str], object]
) -> None:
    """A vault put back from a file copy (a restore from restic or borg, a snapshot moved into
    place) holds the same versions in new files: new inodes, and often new mtimes, so every
    stamp the index holds differs from its file's. What the file holds decides the append's
    check (its generation, where its last group ends), so the turn is a record of its own and
    the session is not rewritten: a rewrite is a new version, which sync sends whole and
    another device that appended too takes as a fork (docs/sync.md, "Backups")."""
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "firstword"}]})
    vault.append(sid, [{"role": "assistant", "content": "secondword"}])
    generation, path = vault.list()[0].generation, vault.path
    vault.close()
    path.rename(tmp_path / "aside")
    shutil.copytree(tmp_path / "aside", path, symlinks=True, copy_function=copy)
    with Vault.open(path, key_provider=provider) as restored:
        assert _current_and_found(restored, sid, "firstword") == (False, True)  # a stamp is a cache key only
        restored.append(sid, [{"role": "assistant", "content": "thirdword"}])
        assert restored.list()[0].generation == generation  # not rewritten
        for word in ("firstword", "secondword", "thirdword"):
            assert _current_and_found(restored, sid, word) == (True, True)
