"""The full-text index wired into the vault (docs/spec/fts-v1.md, "Files and manifest", "Writers"):
every write updates it after the session file, the view says which sessions it reflects, and
a failed update leaves the session behind, never fails the write."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault
from sessionseal._fts import Doc, analyze, doc_fields
from sessionseal._index import stamp_of
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST
from sessionseal._vault._fulltext import FtsView, FullText


def _s(title: str, text: str, **extra: object) -> dict[str, object]:
    return {"title": title, "messages": [{"role": "user", "content": text}], **extra}


def _hits(view: FtsView | None, query: str) -> set[uuid.UUID]:
    assert view is not None
    return {h.session_id for h in view.index.search(query)}


def _stamp(vault: Vault, sid: uuid.UUID) -> tuple[int, int, int]:
    sessions = vault.parts.ctx.sessions
    st = os.stat(vault.parts.keys.file_name(sid) + ".sst", dir_fd=sessions.fd, follow_symlinks=False)
    return stamp_of(st)


def _current(vault: Vault, view: FtsView, sid: uuid.UUID) -> bool:
    return view.stamps.get(sid) == _stamp(vault, sid)


def test_a_vault_without_an_index_has_no_view(vault: Vault) -> None:
    with vault.parts.fulltext.view() as view:
        assert view is None


def test_save_and_append_are_indexed_and_current(vault: Vault) -> None:
    a = vault.save(_s("Parser work", "the tokenizer drops kumquat"))
    b = vault.save(_s("Other", "nothing here"))
    vault.append(a, [{"role": "assistant", "content": "zebra found in the lexer"}])
    with vault.parts.fulltext.view() as view:
        assert view is not None
        assert _hits(view, "kumquat") == {a}
        assert _hits(view, "zebra") == {a}
        assert _hits(view, "title:parser") == {a}
        assert _hits(view, "assistant:zebra AND user:kumquat") == {a}
        assert _hits(view, "nothing") == {b}
        assert _current(vault, view, a) and _current(vault, view, b)
    assert {n for n in os.listdir(vault.parts.ctx.path / FTS_DIR)} >= {MANIFEST}


def test_the_index_equals_a_rebuild_from_the_stored_documents(vault: Vault) -> None:
    ids = [vault.save(_s(f"title {i}", f"word{i} common")) for i in range(4)]
    vault.append(ids[0], [{"role": "assistant", "content": "more common words"}])
    vault.rename(ids[1], "renamed session")
    ref = []
    for sid in ids:
        doc = vault.load(sid).model_dump(mode="json")
        ref.append(analyze(Doc(sid, 1, doc_fields(doc))))
    with vault.parts.fulltext.view() as view:
        assert view is not None
        got = {sid: view.index.docs[sid].lengths for sid in ids}
        assert got == {a.entry.session_id: a.entry.lengths for a in ref}
        for term in ("common", "word0", "words", "renamed", "title", "1"):
            assert _hits(view, term) == {a.entry.session_id for a in ref if term in a.terms}


def test_a_new_title_replaces_the_old_one_in_the_index(vault: Vault) -> None:
    sid = vault.save(_s("kumquat plans", "body text"))
    vault.rename(sid, "zebra plans")
    with vault.parts.fulltext.view() as view:
        assert _hits(view, "zebra") == {sid}
        assert _hits(view, "kumquat") == set()  # the old title no longer matches
        assert _hits(view, "body") == {sid}  # the messages stay, once
        assert view is not None and _current(vault, view, sid)
        assert view.index.search("body")[0].score > 0


def test_a_failed_index_update_leaves_the_session_behind_not_the_write_failed(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save(_s("first", "kumquat"))

    def broken(*_a: object, **_k: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sessionseal._fts._delta.write_all", broken)
    vault.append(sid, [{"role": "user", "content": "zebra"}])  # succeeds all the same
    monkeypatch.undo()
    assert "zebra" in vault.load(sid).messages[-1].content[0].text  # type: ignore[union-attr]
    with vault.parts.fulltext.view() as view:
        assert view is not None
        assert not _current(vault, view, sid)  # behind: search evaluates it on its text
        assert _hits(view, "zebra") == set()
    vault.save({**vault.load(sid).model_dump(mode="json"), "title": "again"})  # the next write catches up
    with vault.parts.fulltext.view() as view:
        assert view is not None and _current(vault, view, sid)
        assert _hits(view, "zebra") == {sid}


def test_another_process_sees_the_index(vault: Vault, vault_path: Path, provider: KeychainProvider) -> None:
    sid = vault.save(_s("t", "kumquat"))
    with Vault.open(vault_path, key_provider=provider) as other:
        with other.parts.fulltext.view() as view:
            assert _hits(view, "kumquat") == {sid}
        other.append(sid, [{"role": "user", "content": "zebra"}])
    with vault.parts.fulltext.view() as view:
        assert _hits(view, "zebra") == {sid}
        assert view is not None and _current(vault, view, sid)


def test_a_damaged_manifest_means_no_index_and_writes_still_succeed(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    sid = vault.save(_s("t", "kumquat"))
    path = vault.parts.ctx.path / FTS_DIR / MANIFEST
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 1
    path.write_bytes(bytes(raw))
    with Vault.open(vault_path, key_provider=provider) as other:  # a process that reads it now
        with other.parts.fulltext.view() as view:
            assert view is None
        other.append(sid, [{"role": "user", "content": "zebra"}])
    assert path.read_bytes() == bytes(raw)  # never replaced on inference: 'reindex' rebuilds it


def test_a_torn_last_delta_frame_leaves_its_session_behind(vault: Vault) -> None:
    a = vault.save(_s("t", "kumquat"))
    b = vault.save(_s("t", "zebra"))
    fts = vault.parts.ctx.path / FTS_DIR
    (delta,) = [p for p in fts.iterdir() if p.suffix == ".delta"]
    size = delta.stat().st_size
    os.truncate(delta, size - 3)
    with vault.parts.fulltext.view() as view:
        assert view is not None
        assert _hits(view, "kumquat") == {a}
        assert b not in view.stamps  # behind: streamed
    vault.append(a, [{"role": "user", "content": "lexer"}])  # the torn frame is cut off first
    with vault.parts.fulltext.view() as view:
        assert _hits(view, "lexer") == {a}


def test_the_benchmark_switch_leaves_the_index_alone(vault: Vault) -> None:
    fulltext: FullText = vault.parts.fulltext
    fulltext.enabled = False
    vault.save(_s("t", "kumquat"))
    assert not (vault.parts.ctx.path / FTS_DIR).exists()
