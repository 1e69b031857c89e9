"""The full-text index's life in the vault: compaction and tiering (docs/spec/fts-v1.md,
"Compaction") and the erasure of a session's words at the rotation that erases it
("Rotation and erasure"), read back from the raw files with the keys held now."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._fs import TMP_PREFIX, Dir
from sessionseal._fts import Doc, analyze, doc_fields
from sessionseal._index import stamp_of
from sessionseal._vault import _ftsmerge, _fulltext
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, Manifest
from tests._infra import ftscrash

GONE = "kumquatzebra"


def _s(title: str, text: str, **extra: object) -> dict[str, object]:
    return {"title": title, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, vault: Vault) -> None:
    """Compaction after 3 records; tiers of 2 segments (the policy, at a scale a test can reach),
    each merge done when the call that made it due returns (``inline``: these tests are about
    the index, tests/unit/test_fts_merge_modes.py about where its merges run)."""
    monkeypatch.setattr(_ftsmerge, "DEFAULT_MODE", "inline")
    vault.maintenance.mode = "inline"
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 3)
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 30)
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 2)


def _fts(vault: Vault) -> Path:
    return vault.parts.ctx.path / FTS_DIR


def manifest_of(vault: Vault) -> Manifest:
    """The index's manifest as the vault's key store opens it now."""
    d = vault.parts.ctx.root.sub(FTS_DIR)
    try:
        return Manifest.load(d, vault.vault_id, vault.parts.keys.fresh_master())
    finally:
        d.close()


Postings = dict[uuid.UUID, tuple[tuple[int, ...], dict[str, tuple[int, int]]]]


def _rebuilt(vault: Vault, ids: list[uuid.UUID]) -> Postings:
    out: Postings = {}
    for sid in ids:
        a = analyze(Doc(sid, 1, doc_fields(vault.load(sid).model_dump(mode="json"))))
        out[sid] = (a.entry.lengths, {t: (p.tf, p.mask) for t, p in a.terms.items()})
    return out


def _indexed(vault: Vault) -> dict[uuid.UUID, tuple[tuple[int, ...], dict[str, tuple[int, int]]]]:
    """Every session's postings as the index answers them (segments and delta folded)."""
    with vault.parts.fulltext.view() as view:
        assert view is not None
        out: dict[uuid.UUID, tuple[tuple[int, ...], dict[str, tuple[int, int]]]] = {
            sid: (d.lengths, {}) for sid, d in view.index.docs.items()
        }
        terms = {t for seg in view.index.segments for a in seg.read_all() for t in a.terms}
        terms |= set(view.index._delta)
        for t in terms:
            for sid, p in view.index._term(t).items():
                out[sid][1][t] = (p.tf, p.mask)
    return out


def test_compaction_equals_a_rebuild_and_leaves_only_named_files(vault: Vault, small: None) -> None:
    ids = [vault.save(_s(f"t{i}", f"word{i} shared")) for i in range(5)]
    for i, sid in enumerate(ids):
        vault.append(sid, [{"role": "assistant", "content": f"reply{i} shared"}])
    vault.rename(ids[2], "renamed")
    vault.append(ids[0], [{"role": "tool", "content": "after compaction"}])
    man = manifest_of(vault)
    assert man.segments  # compacted at least once
    assert _indexed(vault) == _rebuilt(vault, ids)
    on_disk = {p.name for p in _fts(vault).iterdir()}
    assert on_disk == man.names() | {MANIFEST}  # retired files went
    with vault.parts.fulltext.view() as view:
        assert view is not None
        assert {h.session_id for h in view.index.search("shared")} == set(ids)
        assert {h.session_id for h in view.index.search("t2")} == set()  # the old title is gone


def test_tiers_merge(vault: Vault, small: None) -> None:
    ids = [vault.save(_s("t", f"w{i}")) for i in range(12)]
    man = manifest_of(vault)
    # 12 records in compactions of 3, tiers of 2: never more than 2 segments of a tier.
    assert 1 <= len(man.segments) <= 2
    assert sorted(sid for s in man.segments for sid in s.sessions) == sorted(sid for sid in ids if sid in man.stamps)
    assert _indexed(vault) == _rebuilt(vault, ids)


def test_delete_erases_the_sessions_words_from_every_file_the_keys_open(
    vault: Vault, vault_path: Path, provider: KeychainProvider, small: None, tmp_path: Path
) -> None:
    gone = vault.save(_s("secret plan", GONE))
    kept = [vault.save(_s("t", f"kept{i}")) for i in range(3)]  # compacts: gone is in a segment
    vault.append(gone, [{"role": "user", "content": "more " + GONE}])  # and in the delta log
    sessions, terms, _stamps = ftscrash.readable_now(vault)
    assert gone in sessions and GONE in terms
    old = tmp_path / "old-fts"
    shutil.copytree(_fts(vault), old)
    old_epoch = manifest_of(vault).kek_epoch

    vault.delete(gone)

    sessions, terms, _stamps = ftscrash.readable_now(vault)
    assert gone not in sessions and GONE not in terms and "secret" not in terms
    assert set(kept) <= sessions
    man = manifest_of(vault)
    assert man.kek_epoch > old_epoch and gone not in man.stamps
    assert {p.name for p in _fts(vault).iterdir()} == man.names() | {MANIFEST}  # replaced files went
    with vault.parts.fulltext.view() as view:
        assert view is not None and view.index.search(GONE) == []
        assert {h.session_id for h in view.index.search("kept0")} == {kept[0]}
    # An old copy of the index opens with no key the key store holds now.
    d = Dir(old)
    try:
        with pytest.raises(errors.IntegrityError):
            Manifest.load(d, vault.vault_id, vault.parts.keys.fresh_master())
    finally:
        d.close()


def test_a_rekey_without_erasures_only_reseals_themanifest_of(vault: Vault) -> None:
    sid = vault.save(_s("t", GONE))
    before = manifest_of(vault)
    files = {p.name: p.read_bytes() for p in _fts(vault).iterdir() if p.name != MANIFEST}
    vault.rekey()
    after = manifest_of(vault)
    assert after.kek_epoch > before.kek_epoch
    assert {p.name: p.read_bytes() for p in _fts(vault).iterdir() if p.name != MANIFEST} == files
    with vault.parts.fulltext.view() as view:
        assert view is not None and {h.session_id for h in view.index.search(GONE)} == {sid}


def test_a_rotation_killed_before_the_old_epoch_left_is_finished_on_open(
    vault: Vault, vault_path: Path, provider: KeychainProvider, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = vault.save(_s("t", GONE))
    for i in range(3):
        vault.save(_s("t", f"kept{i}"))
    seg_names = {s.name for s in manifest_of(vault).segments}
    # Killed after the index's reseal, before the key store dropped the old epoch.
    real_store = provider.store
    calls: list[int] = []

    def store(vault_id: uuid.UUID, master: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise errors.KeyStoreError("killed")
        real_store(vault_id, master)  # type: ignore[arg-type]

    monkeypatch.setattr(provider, "store", store)
    monkeypatch.setattr(vault.parts.keys, "try_finish_rotation", lambda: None)  # the process dies here
    with pytest.raises(errors.SessionSealError):
        vault.delete(gone)
    monkeypatch.undo()
    names = {p.name for p in _fts(vault).iterdir()}
    assert seg_names & names  # the replaced segment waits for the old epoch to go
    assert seg_names <= set(manifest_of(vault).retired)  # recorded as retired, with its tomb
    with Vault.open(vault_path, key_provider=provider) as other:
        other.list()  # the first use finishes the rotation
        man = manifest_of(other)
        assert {p.name for p in _fts(other).iterdir()} == man.names() | {MANIFEST}
        sessions, terms, _stamps = ftscrash.readable_now(other)
        assert gone not in sessions and GONE not in terms


def test_reindex_rebuilds_a_damaged_index_with_progress_and_drops_its_files(vault: Vault, small: None) -> None:
    ids = [vault.save(_s(f"t{i}", f"word{i} shared")) for i in range(5)]
    vault.append(ids[0], [{"role": "assistant", "content": "reply shared"}])
    manifest = _fts(vault) / MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:-3])  # damaged: no index, and writers leave it
    with vault.parts.fulltext.view() as view:
        assert view is None
    old_files = {p.name for p in _fts(vault).iterdir()} - {MANIFEST}
    seen: list[tuple[int, int]] = []
    assert vault.reindex(progress=lambda done, total: seen.append((done, total))) == 5
    sessions = vault.parts.ctx.path / "sessions"
    total = sum(os.path.getsize(sessions / (vault.parts.keys.file_name(sid) + ".sst")) for sid in ids)
    assert seen[-1] == (total, total) and len(seen) == 5  # bytes of session files
    man = manifest_of(vault)
    assert not old_files & {p.name for p in _fts(vault).iterdir()}  # the old index's files went
    assert {p.name for p in _fts(vault).iterdir()} == man.names() | {MANIFEST}
    assert _indexed(vault) == _rebuilt(vault, ids)
    with vault.parts.fulltext.view() as view:
        assert view is not None
        for sid in ids:
            assert view.stamps[sid] == _file_stamp(vault, sid)
    detail = [r["detail"] for r in vault.audit_records() if r["action"] == "reindex"][-1]
    assert detail["fulltext"] == 5


def test_a_manifest_of_another_format_means_no_index(vault: Vault) -> None:
    vault.save(_s("t", "word"))
    d = vault.parts.ctx.root.sub(FTS_DIR)
    try:
        master = vault.parts.keys.fresh_master()
        man = Manifest.load(d, vault.vault_id, master)
        monkey = b"\x03" + man.encode()[1:]  # a format after 2 (1 was JSON, 2 binary)
        man.encode = lambda: monkey  # type: ignore[method-assign]
        table = vault.parts.keys.keytable()
        man.write(d, vault.vault_id, master.keys[table.kek_epoch], table.kek_epoch)
    finally:
        d.close()
    with vault.parts.fulltext.view() as view:
        assert view is None
    vault.reindex()
    with vault.parts.fulltext.view() as view:
        assert view is not None and len(view.stamps) == 1


def _file_stamp(vault: Vault, sid: uuid.UUID) -> tuple[int, int, int]:
    st = os.stat(vault.parts.keys.file_name(sid) + ".sst", dir_fd=vault.parts.ctx.sessions.fd, follow_symlinks=False)
    return stamp_of(st)


def test_titles_replaced_by_appends_stay_replaced_across_compaction_and_reindex(vault: Vault, small: None) -> None:
    sid = vault.save(_s("first title", "body"))
    other = vault.save(_s("t", "x"))
    vault.rename(sid, "second title")
    vault.append(sid, [{"role": "user", "content": "after second"}])
    vault.parts.store.edit(sid, lambda d: d.update(description="described") or True)
    vault.append(sid, [{"role": "assistant", "content": "after description"}])
    assert _indexed(vault) == _rebuilt(vault, [sid, other])
    vault.reindex()
    vault.append(sid, [{"role": "user", "content": "after reindex"}])
    vault.rename(sid, "third")
    assert _indexed(vault) == _rebuilt(vault, [sid, other])
    with vault.parts.fulltext.view() as view:
        assert view is not None
        assert {h.session_id for h in view.index.search("title:first OR title:second")} == set()
        assert {h.session_id for h in view.index.search("title:third")} == {sid}
        assert view.stamps[sid] == _file_stamp(vault, sid)


def _codes(vault: Vault, *, read_data: bool = False) -> dict[str, str]:
    return {p.code: p.severity for p in vault.verify(read_data=read_data).problems if p.code.startswith("fts-")}


def test_verify_finds_a_sound_index_clean(vault: Vault, small: None) -> None:
    for i in range(5):
        vault.save(_s("t", f"w{i}"))
    assert _codes(vault, read_data=True) == {}


def test_verify_reports_damage_leftovers_and_staleness_and_removes_nothing(
    vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save(_s("t", "w"))
    for i in range(3):
        vault.save(_s("t", f"w{i}"))
    man = manifest_of(vault)
    seg = _fts(vault) / man.segments[0].name
    leftover = _fts(vault) / (uuid.uuid4().hex + ".seg")
    shutil.copy(seg, leftover)
    assert _codes(vault) == {"fts-unlisted": "warning"}
    raw = bytearray(seg.read_bytes())
    raw[-40] ^= 1  # a bucket frame: only --read-data authenticates it
    seg.write_bytes(bytes(raw))
    assert "fts-damaged" not in _codes(vault)
    assert _codes(vault, read_data=True)["fts-damaged"] == "error"
    seg.unlink()
    assert _codes(vault)["fts-missing-file"] == "error"
    monkeypatch.setattr(vault.parts.fulltext, "enabled", False)
    vault.append(sid, [{"role": "user", "content": "unindexed"}])  # behind: not a finding
    assert set(_codes(vault)) == {"fts-unlisted", "fts-missing-file"}
    vault.verify(repair=True)
    assert leftover.exists()  # reported, never removed on inference
    monkeypatch.undo()
    vault.reindex()  # removes what its new manifest does not name: derived from the sessions
    assert not leftover.exists() and _codes(vault, read_data=True) == {}


def test_verify_reports_an_erased_session_the_index_still_lists(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = vault.save(_s("t", GONE))
    man = manifest_of(vault)
    monkeypatch.setattr(vault.parts.fulltext, "reseal", lambda master, table: None)  # a bug: not followed
    vault.delete(gone)
    monkeypatch.undo()
    # The manifest, under the dropped epoch, no longer opens: the erasure held, the index is gone.
    assert _codes(vault) == {"fts-outdated": "warning"}
    with vault.parts.fulltext.view() as view:
        assert view is None
    # Had it been resealed as it was, verify says so.
    d = vault.parts.ctx.root.sub(FTS_DIR)
    try:
        table = vault.parts.keys.keytable(fresh=True)
        man.write(d, vault.vault_id, vault.parts.keys.kek(table.kek_epoch), table.kek_epoch)
    finally:
        d.close()
    assert _codes(vault)["fts-erased"] == "error"


def test_retired_files_a_failed_sweep_left_are_removed_by_repair(
    vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Dir, name: str) -> bool:
        raise errors.StorageError("no")

    monkeypatch.setattr(Dir, "shred", fail)
    for i in range(3):
        vault.save(_s("t", f"w{i}"))  # compacts: the old delta log is retired, not removed
    monkeypatch.undo()
    man = manifest_of(vault)
    assert man.retired and all((_fts(vault) / n).exists() for n in man.retired)
    assert _codes(vault) == {"fts-retired": "warning"}
    result = vault.verify(repair=True)
    assert any("full-text" in line for line in result.repaired)
    assert not any((_fts(vault) / n).exists() for n in man.retired)
    assert _codes(vault) == {}


def test_an_index_a_failed_rotation_left_behind_dies_with_its_epoch_and_restarts(
    vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = vault.save(_s("t", GONE))
    kept = [vault.save(_s("t", f"kept{i}")) for i in range(3)]
    old_files = {p.name for p in _fts(vault).iterdir()} - {MANIFEST}

    def full_disk(*_a: object) -> None:
        raise errors.StorageError("No space left on device")

    monkeypatch.setattr(vault.parts.fulltext, "_reseal", full_disk)
    vault.delete(gone)  # the erasure holds: the rotation never fails for the index
    monkeypatch.undo()
    with vault.parts.fulltext.view() as view:
        assert view is None  # its manifest, under the dropped epoch, was shredded
    assert _codes(vault) == {"fts-missing": "warning"}
    vault.append(kept[0], [{"role": "user", "content": "fresh"}])  # the next write starts anew
    assert not old_files & {p.name for p in _fts(vault).iterdir()}  # the dead index's files went
    with vault.parts.fulltext.view() as view:
        assert view is not None and {h.session_id for h in view.index.search("fresh")} == {kept[0]}
        assert gone not in view.stamps
    assert _codes(vault, read_data=True) == {}


def test_a_killed_writers_temp_file_in_fts_is_swept(vault: Vault) -> None:
    vault.save(_s("t", "w"))
    tmp = _fts(vault) / f"{TMP_PREFIX}999999999-0123456789ab"
    tmp.write_bytes(b"a segment being written")
    tmp.chmod(0o600)
    assert "temp-file" in {p.code for p in vault.verify().problems}
    vault.verify(repair=True)
    assert not tmp.exists()


def test_a_session_erased_while_reindex_reads_is_not_in_the_new_index(vault: Vault) -> None:
    gone = vault.save(_s("t", GONE))
    kept = vault.save(_s("t", "kept"))
    deleted: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == total and not deleted:  # every session read: then another process deletes one
            deleted.append(done)
            vault.delete(gone)

    vault.reindex(progress=progress)
    sessions, terms, _stamps = ftscrash.readable_now(vault)
    assert gone not in sessions and GONE not in terms and kept in sessions
    assert _codes(vault, read_data=True) == {}
