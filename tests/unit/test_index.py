"""The encrypted metadata index (docs/design.md, "Index"): a verified cache of every summary."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._container import Frame
from sessionseal._index import INDEX_FILE, Index

PHRASE = "zebra-kumquat-planted-phrase"


def _s(title: str, **extra: object) -> dict[str, object]:
    return {"title": title, "status": "completed", "messages": [{"role": "user", "content": title}], **extra}


def _meta_reads(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = vault.parts.store.read_summary

    def spy(fname: str) -> dict[str, object]:
        reads.append(fname)
        return real(fname)

    monkeypatch.setattr(vault.parts.store, "read_summary", spy)
    return reads


def _reindexes(vault: Vault) -> list[dict[str, object]]:
    return [r["detail"] for r in vault.audit_records() if r["action"] == "reindex"]


def test_a_listing_opens_no_session_file(
    vault: Vault, vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [vault.save(_s(f"s{i}")) for i in range(5)]
    with Vault.open(vault_path, key_provider=provider) as other:
        reads = _meta_reads(other, monkeypatch)
        assert {s.id for s in other.list()} == set(ids)
        assert reads == []
    assert _reindexes(vault) == []


def test_a_change_the_index_missed_is_seen_by_its_file_stamp(
    vault: Vault, vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save(_s("before"))
    vault.list()
    # Another writer whose index update was lost (a crash after the session write).
    with Vault.open(vault_path, key_provider=provider) as other:
        monkeypatch.setattr(other.parts.index, "put", lambda *a: None)
        other.save(_s("after", id=str(sid)))
    monkeypatch.undo()
    reads = _meta_reads(vault, monkeypatch)
    assert [s.title for s in vault.list()] == ["after"]
    assert len(reads) == 1
    assert [s.title for s in vault.list()] == ["after"] and len(reads) == 1  # and the index was updated


def test_a_missing_or_damaged_index_is_rebuilt_and_audited(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    ids = {vault.save(_s(f"s{i}")) for i in range(3)}
    (vault_path / INDEX_FILE).unlink()
    with Vault.open(vault_path, key_provider=provider) as v:
        assert {s.id for s in v.list()} == ids
        assert _reindexes(v) == [{"reason": "missing", "sessions": 3}]
    raw = bytearray((vault_path / INDEX_FILE).read_bytes())
    raw[-5] ^= 1
    (vault_path / INDEX_FILE).write_bytes(bytes(raw))
    with Vault.open(vault_path, key_provider=provider) as v:
        assert {s.id for s in v.list()} == ids
        assert _reindexes(v)[-1] == {"reason": "damaged", "sessions": 3}
        assert v.reindex() == 3
        assert _reindexes(v)[-1] == {"reason": "asked", "sessions": 3, "fulltext": 3}


def test_a_torn_last_delta_is_ignored(vault: Vault, vault_path: Path, provider: KeychainProvider) -> None:
    vault.save(_s("a"))
    b = vault.save(_s("b"))
    path = vault_path / INDEX_FILE
    path.write_bytes(path.read_bytes()[:-7])  # the last delta (b's put) cut short by a crash
    with Vault.open(vault_path, key_provider=provider) as v:
        assert b in {s.id for s in v.list()}
        assert _reindexes(v) == []
    # The next writer rewrote the file rather than append after the cut-short frame.
    with Vault.open(vault_path, key_provider=provider) as v:
        index, reason = v.parts.index.current()
        assert reason is None and index is not None and not index._torn and index._frames == 1
        assert len(index.entries) == 2


def test_deletion_removes_the_entry_and_old_copies_of_the_index_stop_opening(
    vault: Vault, vault_path: Path, provider: KeychainProvider, tmp_path: Path
) -> None:
    gone = vault.save(_s(PHRASE))
    kept = vault.save(_s("kept"))
    vault.list()
    shutil.copy(vault_path / INDEX_FILE, tmp_path / "old-index.sst")
    vault.delete(gone)
    index, _ = vault.parts.index.current()
    assert index is not None and [e.id for e in index.entries.values()] == [str(kept)]
    # The old copy names the erased session; the master key that opened it is gone.
    (vault_path / INDEX_FILE).rename(tmp_path / "new-index.sst")
    shutil.copy(tmp_path / "old-index.sst", vault_path / INDEX_FILE)
    (vault_path / INDEX_FILE).chmod(0o600)
    with pytest.raises(errors.IntegrityError):
        Index.load(vault.parts.ctx.root, vault.vault_id, provider.reload(vault.vault_id))


def test_no_plaintext_of_a_planted_phrase_anywhere(vault: Vault, vault_path: Path) -> None:
    sid = vault.save(_s(PHRASE, tags=[PHRASE], description=PHRASE))
    vault.list()
    vault.pin(sid)
    vault.reindex()
    blob = b"".join(p.read_bytes() for p in vault_path.rglob("*") if p.is_file())
    assert PHRASE.encode() not in blob


def test_an_older_version_put_back_is_reported(vault: Vault, vault_path: Path, tmp_path: Path) -> None:
    sid = vault.save(_s("v1"))
    f = vault_path / "sessions" / (vault.parts.keys.file_name(sid) + ".sst")
    shutil.copy(f, tmp_path / "v1.sst")
    vault.save(_s("v2", id=str(sid)))
    vault.list()
    os.replace(tmp_path / "v1.sst", f)
    f.chmod(0o600)
    summaries, problems = vault.list_with_problems()
    assert [s.title for s in summaries] == ["v1"]
    assert len(problems) == 1 and "older than the version 2 the index recorded" in problems[0]


def test_deltas_are_compacted_into_a_snapshot(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal import _index

    monkeypatch.setattr(_index, "_COMPACT_FLOOR", 1)
    sid = vault.save(_s("x"))
    for i in range(5):
        vault.save(_s(f"x{i}", id=str(sid)))
    index, _ = vault.parts.index.current()
    assert index is not None and index._frames <= 2
    assert [s.title for s in vault.list()] == ["x4"]


def test_cleanup_and_rekey_keep_the_index_whole(
    vault: Vault, vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [vault.save(_s(f"s{i}", pinned=i == 0)) for i in range(4)]
    vault.cleanup({"keep_last": 0, "min_age": 0})
    vault.rekey()
    with Vault.open(vault_path, key_provider=provider) as v:
        reads = _meta_reads(v, monkeypatch)
        assert [s.id for s in v.list()] == [ids[0]]
        assert reads == [] and _reindexes(v) == []


def test_a_save_appends_without_decoding_the_index(
    vault: Vault, vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        vault.save(_s(f"s{i}"))
    decodes: list[int] = []
    real = Index._decode

    def counted(self: Index, frames: list[Frame]) -> None:
        decodes.append(1)
        real(self, frames)

    monkeypatch.setattr(Index, "_decode", counted)
    with Vault.open(vault_path, key_provider=provider) as v:
        v.save(_s("new"))
        assert decodes == []
        assert "new" in {s.title for s in v.list()} and decodes == [1]


def test_list_json_is_the_models_dump(vault: Vault) -> None:
    import json

    a = vault.save(_s("a", tags=["x"], messages=[{"role": "user", "content": "hi", "cost_usd": 0.5}]))
    b = vault.save(_s("b", pinned=True))
    vault.archive(b)
    for archived in (False, True, None):
        data, problems = vault.list_json(archived=archived)
        assert problems == []
        assert json.loads(data) == [s.model_dump(mode="json") for s in vault.list(archived=archived)]
    assert [d["id"] for d in json.loads(vault.list_json()[0])] == [str(a)]


def test_reads_compact_the_deltas_too(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    # A vault that is only read (resume, search, show) must not grow deltas without bound, nor
    # stop recording reads once it has many: every listing pays for each delta.
    from sessionseal import _index

    monkeypatch.setattr(_index, "_MAX_DELTAS", 3)
    sid = vault.save(_s("x"))
    for _ in range(10):
        vault.parts.index.cached = None  # as a fresh process: the index is opened for appending only
        vault.load_json(sid)
    index, _ = vault.parts.index.current()
    assert index is not None and index._frames <= 4
    [entry] = index.entries.values()
    assert entry.last_accessed_at is not None


@pytest.mark.parametrize("snapshot", [b'{"v": 1, "entries": {}}', b'{"v": 3, "entries": {}, "stamps": {}, "new": 1}'])
def test_an_index_of_another_format_is_rebuilt_as_such(
    vault: Vault, vault_path: Path, provider: KeychainProvider, snapshot: bytes
) -> None:
    from sessionseal import _container
    from sessionseal._container import FrameType, Kind

    ids = {vault.save(_s(f"s{i}")) for i in range(2)}
    table = vault.parts.keys.keytable(fresh=True)
    data = _container.seal(
        kind=Kind.INDEX,
        vault_id=vault.vault_id,
        object_id=uuid.UUID(int=0),
        generation=9,
        kek=vault.parts.keys.kek(table.kek_epoch),
        kek_epoch=table.kek_epoch,
        frames=[(FrameType.INDEX_SNAPSHOT, _container.encode_payload(snapshot, compress=True))],
    )
    (vault_path / INDEX_FILE).write_bytes(data)
    with Vault.open(vault_path, key_provider=provider) as v:
        assert {s.id for s in v.list()} == ids
        assert _reindexes(v)[-1] == {"reason": "format", "sessions": 2}
        index, reason = v.parts.index.current()
        assert reason is None and index is not None and len(index.entries) == 2
