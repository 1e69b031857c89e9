"""The full-text index catches up with a write it missed (issue 23; docs/reliability.md, "The
full-text index"): an append is indexed as a record of its turn only when the index holds the
session as it was before it; otherwise the session is rewritten and indexed whole. Before, a
turn's record on top of a missed write made the session look current without its missed words
(search then neither streamed it nor found it). tests/integration/test_fts_crash.py kills real
writers at these steps."""

from __future__ import annotations

import os
import uuid

import pytest

from sessionseal import Vault
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
