"""A batch of saves of new sessions (a pull's; docs/design.md, "Write ordering", rule 3): each
file is written to its temp file under its session lock, the batch's temp files are fsynced at
once, then named, and only then indexed and marked.  Before its flush no session of the batch is
there; a failed fsync names none of them and leaves no temp file; a second save of a session in
one batch is named after the first."""

from __future__ import annotations

import errno
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import Vault, _container, _fs
from sessionseal.errors import StorageError
from sessionseal.models import Session


def _session(i: int, text: str = "hello") -> Session:
    return Session.model_validate(
        {"id": str(uuid.UUID(int=i + 1)), "title": f"s{i}", "messages": [{"role": "user", "content": f"{text} {i}"}]}
    )


def _store(vault: Vault) -> Any:
    return vault._store  # the store's batch is what this test is about


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "sessions").iterdir())


def test_a_batch_names_its_files_only_at_its_flush(vault: Vault) -> None:
    store = _store(vault)
    sessions = [_session(i) for i in range(5)]
    store.add_keys([s.id for s in sessions])
    with store.batch():
        for s in sessions:
            store.save(s, touch=False)
        # Written, not named: a temp file each, but the last save's, written at the next save or
        # the flush (its BODY compressed by a thread meanwhile); no session file yet.
        assert [n for n in _files(vault.path) if n.endswith(".sst")] == []
        assert len([n for n in _files(vault.path) if n.startswith(".tmp-")]) == 4
    assert len([n for n in _files(vault.path) if n.endswith(".sst")]) == 5
    assert [n for n in _files(vault.path) if n.startswith(".tmp-")] == []
    assert not any(store.marked(s.id) for s in sessions)  # noted: durable with the next record
    assert {s.id for s in vault.list()} == {s.id for s in sessions}
    assert all(store.marked(s.id) for s in sessions)  # the list's record committed them
    hits = vault.search("hello")
    assert (len(hits), hits.source, hits.stale) == (5, "fts", 0)  # the full-text index has them all
    assert vault.verify(read_data=True).errors == []


def test_a_batch_told_its_sessions_has_their_lock_files_made_ahead_and_saves_them_alike(vault: Vault) -> None:
    store = _store(vault)
    sessions = [_session(i) for i in range(40)]
    store.add_keys([s.id for s in sessions])
    locks = vault.path / "locks"
    before = {p.name for p in locks.iterdir()}
    with store.batch([s.id for s in sessions]):
        for s in sessions[:20]:
            store.save(s, touch=False)
    ahead = {p.name for p in locks.iterdir()} - before
    # A lock file for each session told (half of them never saved in the batch), as a take makes it.
    assert len(ahead) == 40 and all((locks / n).stat().st_mode & 0o777 == 0o600 for n in ahead)
    assert not any(t.name == "sessionseal-lockfiles" for t in threading.enumerate())  # ended with it
    with store.batch([s.id for s in sessions[20:]]):  # their files there already: nothing changes
        for s in sessions[20:]:
            store.save(s, touch=False)
    assert {p.name for p in locks.iterdir()} - before == ahead
    assert {s.id for s in vault.list()} == {s.id for s in sessions}
    assert vault.verify(read_data=True).errors == []


def test_a_second_save_in_one_batch_is_named_after_the_first(vault: Vault) -> None:
    store = _store(vault)
    store.add_keys([_session(0).id])
    with store.batch():
        store.save(_session(0, "first"), touch=False)
        store.save(_session(0, "second"), touch=False)
    assert vault.load(_session(0).id).messages[0].content[0].text == "second 0"  # type: ignore[union-attr]
    assert vault.verify(read_data=True).errors == []


def test_a_failed_fsync_names_no_file_and_leaves_no_temp_file(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(vault)
    sessions = [_session(i) for i in range(3)]
    store.add_keys([s.id for s in sessions])
    real = _fs.Dir.fsync_all

    def failing(self: _fs.Dir, fds: list[int]) -> None:
        real(self, fds)
        raise StorageError(f"cannot sync a file in {self.path}: {errno.errorcode[errno.EIO]}")

    def save_all() -> None:
        with store.batch():
            for s in sessions:
                store.save(s, touch=False)

    monkeypatch.setattr(_fs.Dir, "fsync_all", failing)
    with pytest.raises(StorageError):
        save_all()
    assert _files(vault.path) == []
    monkeypatch.setattr(_fs.Dir, "fsync_all", real)
    save_all()  # the locks were released: the same saves go through
    assert len(_files(vault.path)) == 3


def test_a_batchs_saves_hold_the_bytes_a_save_alone_writes(vault: Vault) -> None:
    # Each save of a batch is written at the next save or the flush, its BODY compressed by a
    # thread meanwhile: what each file holds is what the same session's save alone holds.
    store = _store(vault)
    texts = ["", "x", "token ghp_" + "a" * 36, "é" * 5000, "z" * 300_000, *(f"t{i}" * i for i in range(1, 30))]
    sessions = [_session(i, text) for i, text in enumerate(texts)]
    store.add_keys([s.id for s in sessions])
    with store.batch([s.id for s in sessions]):
        for s in sessions:
            store.save(s, touch=False)
    for s in sessions:
        assert store.document(store.open(s.id)) == store.build(s, touch=False).body
        assert store.summary(s.id)["title"] == s.title  # its META, as written alone
    assert {s.id for s in vault.list()} == {s.id for s in sessions}
    assert vault.verify(read_data=True).errors == []


@given(st.binary(max_size=200_000) | st.text(max_size=20_000).map(str.encode))
@settings(max_examples=60, deadline=None)
def test_a_body_compressed_by_another_thread_is_the_same_bytes(body: bytes) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        there = pool.submit(_container.encode_payload, body, compress=True).result()
    assert there == _container.encode_payload(body, compress=True)


def test_a_resumed_pulls_settle_of_a_session_its_batch_indexed_does_not_index_it_twice(vault: Vault) -> None:
    # A kill after a batch's flush (files named, indexed) but before its audit record leaves the
    # sessions unmarked; the resumed pull settles them (SessionStore.settle). A second whole
    # record at the same generation would count every word twice (scores change, not matches).
    store = _store(vault)
    sessions = [_session(i, text="walrus walrus tusk") for i in range(3)]
    store.add_keys([s.id for s in sessions])
    with store.batch([s.id for s in sessions]):
        for s in sessions:
            store.save(s, touch=False)
    before = [(h.id, h.score) for h in vault.search("walrus", snippets=False)]
    assert len(before) == 3
    for s in sessions:
        store.settle(s.id)
    assert [(h.id, h.score) for h in vault.search("walrus", snippets=False)] == before
    hits = vault.search("walrus tusk")
    assert (len(hits), hits.source, hits.stale) == (3, "fts", 0)
    assert vault.verify(read_data=True).errors == []
