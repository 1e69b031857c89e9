"""The delta log's heads checkpoint (issue 23: "an append of one turn stays O(turn)";
docs/spec/fts-v1.md, "Heads checkpoint"). A fresh process (every CLI append) appending to a
session deep in a full delta log reads the checkpoint and the records after it, not the whole
log. A checkpoint that does not vouch for the log as it is (the log rolled back or cut, another
log's, damaged) is never an answer: the log is folded from its first record, as before, and the
next writer replaces it; an older checkpoint of the same log costs records read, never a wrong
answer. Counted in frames decrypted, never timed."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault, _container
from sessionseal._container import Kind
from sessionseal._fs import Dir
from sessionseal._fts import delta_frames, read_delta
from sessionseal._vault import _ftsheads, _fulltext
from sessionseal._vault._ftsfiles import Manifest
from sessionseal._vault._ftsheads import EVERY, Heads, open_heads, seal_heads
from sessionseal.models import Session

PASSPHRASE = "fts heads"
DEEP = 100  # records after the deep session's last: three checkpoints' worth


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 1 << 30)  # the log keeps every record
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 40)
    p = tmp_path / "v"
    Vault.init(p, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    return p


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """From now on: the delta log's frames decrypted, by index ("log"), and the checkpoints
    opened, by the records they cover ("heads")."""
    seen: dict[str, list[int]] = {"log": [], "heads": []}
    real_at, real = _container.open_frames_at, _container.open_frames

    def spy_at(data: Any, header: _container.Header, dek: bytes, pos: int, first: int, **kw: Any) -> Any:
        out = real_at(data, header, dek, pos, first, **kw)
        if header.kind == Kind.FTS_DELTA and header.object_id.int == 0:
            seen["log"].extend(f.index for f in out[0])
        return out

    def spy(data: Any, header: _container.Header, kek: bytes, **kw: Any) -> Any:
        if header.kind == Kind.FTS_DELTA and header.object_id.int != 0:
            seen["heads"].append(header.generation)
        return real(data, header, kek, **kw)

    monkeypatch.setattr(_container, "open_frames_at", spy_at)
    monkeypatch.setattr(_container, "open_frames", spy)
    return seen


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


@pytest.fixture
def vault(path: Path) -> Iterator[Vault]:
    with _open(path) as v:
        yield v


def _doc(word: str) -> dict[str, Any]:
    return {"title": "t", "messages": [{"role": "user", "content": word}]}


def _turn(word: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": word}]


def _deep(v: Vault, n: int = DEEP) -> uuid.UUID:
    """A session whose last record has *n* records of another session after it."""
    sid = v.save(_doc("deepword"))
    other = v.save(_doc("other"))
    for i in range(n - 1):
        v.append(other, _turn(f"filler{i}"))
    return sid


def _fts(v: Vault) -> Path:
    return Path(v.parts.ctx.path) / "fts"


def _manifest(v: Vault) -> Manifest:
    d = Dir(_fts(v))
    try:
        return Manifest.load(d, v.vault_id, v.parts.keys.fresh_master())
    finally:
        d.close()


def _log(v: Vault) -> Path:
    return _fts(v) / _manifest(v).delta_name


def _heads(v: Vault) -> Path:
    return _fts(v) / _manifest(v).heads_name


def _frames(v: Vault) -> int:
    man = _manifest(v)
    return len(read_delta(_log(v).read_bytes(), v.vault_id, man.delta_key, torn_tail_ok=True))


def _state(v: Vault, sid: uuid.UUID, word: str) -> tuple[bool, bool]:
    """Whether the index is current for *sid*, and finds it by *word*."""
    st = os.stat(v.parts.ctx.path / "sessions" / (v.parts.keys.file_name(sid) + ".sst"))
    with v.parts.fulltext.view() as view:
        assert view is not None
        current = view.stamps.get(sid) == (st.st_ino, st.st_size, st.st_mtime_ns)
        return current, sid in {h.session_id for h in view.index.search(word)}


def _generation(v: Vault, sid: uuid.UUID) -> int:
    raw = (v.parts.ctx.path / "sessions" / (v.parts.keys.file_name(sid) + ".sst")).read_bytes()
    return _container.parse_unverified_header(raw).generation


def _fts_findings(v: Vault, *, read_data: bool = True) -> list[tuple[str, str]]:
    r = v.verify(read_data=read_data)
    return sorted((p.code, p.path) for p in [*r.errors, *r.warnings] if p.code.startswith("fts"))


@pytest.mark.parametrize("depth", [EVERY + 1, DEEP, 4 * DEEP])
def test_a_fresh_process_appending_deep_in_the_log_reads_the_checkpoint_and_what_follows(
    path: Path, vault: Vault, opened: dict[str, list[int]], depth: int
) -> None:
    """Whatever the log's length: one checkpoint and fewer than EVERY records (O(turn))."""
    sid = _deep(vault, depth)
    frames = _frames(vault)
    with _open(path) as fresh:
        opened["log"].clear()
        opened["heads"].clear()
        fresh.append(sid, _turn("deepturn"))
        (covered,) = opened["heads"]  # one checkpoint read ...
        assert frames - EVERY < covered <= frames
        assert sorted(opened["log"]) == list(range(covered, frames))  # ... and only the records after it
        assert _generation(fresh, sid) == 1  # the index held the session: the turn alone
        for word in ("deepword", "deepturn"):
            assert _state(fresh, sid, word) == (True, True)
    assert _fts_findings(vault) == []


def test_a_batch_of_saves_neither_walks_nor_writes_the_log(
    path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull's batch of new sessions is a segment of its own, committed by the manifest
    (docs/spec/fts-v1.md, "Writers"): the delta log, however deep, is neither walked nor
    appended to (before: one record each, appended after a walk from the checkpoint, then
    folded). The sessions are current in the index, and a later append to one of them finds
    it so: its turn alone is indexed, the session not rewritten."""
    every = 4  # a checkpoint every 4 records: a deep log at small cost
    monkeypatch.setattr(_ftsheads, "EVERY", every)
    _deep(vault, every + 2)
    frames, segments = _frames(vault), len(_manifest(vault).segments)
    walked: list[int] = []

    def spy(data: Any, **kw: Any) -> list[tuple[int, int]]:
        out = delta_frames(data, **kw)
        walked.append(len(out))
        return out

    monkeypatch.setattr(_ftsheads, "delta_frames", spy)
    with _open(path) as fresh:
        store = fresh.parts.store
        models = [Session.model_validate(_doc(f"batchword{i}")) for i in range(3)]
        with store.batch():
            for model in models:
                store.save(model, touch=False)
        assert walked == []
        assert _frames(fresh) == frames
        assert len(_manifest(fresh).segments) == segments + 1
        assert _state(fresh, models[1].id, "batchword1") == (True, True)
        fresh.append(models[1].id, _turn("laterturn"))
        assert _generation(fresh, models[1].id) == 1  # the index held it as saved: the turn alone
        assert _state(fresh, models[1].id, "laterturn") == (True, True)
        assert _state(fresh, models[1].id, "batchword1") == (True, True)
    assert _fts_findings(vault) == []


def test_without_a_checkpoint_the_log_is_folded_whole_and_one_is_written(
    path: Path, vault: Vault, opened: dict[str, list[int]]
) -> None:
    """A log of before this version, or one whose checkpoint was lost: the whole fold, once."""
    sid = _deep(vault)
    _heads(vault).unlink()
    frames = _frames(vault)
    with _open(path) as fresh:
        opened["log"].clear()
        fresh.append(sid, _turn("deepturn"))
        assert sorted(opened["log"]) == list(range(frames))
        assert _state(fresh, sid, "deepturn") == (True, True)
    assert _heads(vault).exists()
    with _open(path) as again:
        opened["log"].clear()
        again.append(sid, _turn("againturn"))
        assert opened["log"] == []  # the checkpoint written covers every record: nothing else read
    assert _fts_findings(vault) == []


def test_a_checkpoint_rolled_back_to_an_older_copy_still_answers_rightly(
    path: Path, vault: Vault, opened: dict[str, list[int]]
) -> None:
    sid = _deep(vault, 3 * EVERY)
    old = _heads(vault).read_bytes()
    other = vault.save(_doc("more"))
    for i in range(2 * EVERY):
        vault.append(other, _turn(f"more{i}"))
    _heads(vault).write_bytes(old)  # the checkpoint put back: a true fold of fewer records
    frames = _frames(vault)
    with _open(path) as fresh:
        opened["log"].clear()
        opened["heads"].clear()
        fresh.append(sid, _turn("deepturn"))
        (covered,) = opened["heads"]
        assert covered < frames - EVERY
        assert sorted(opened["log"]) == list(range(covered, frames))
        assert _generation(fresh, sid) == 1  # no rewrite: the answer was right
        assert _state(fresh, sid, "deepturn") == (True, True)
    assert _fts_findings(vault) == []  # the next writer brought it forward


def test_a_log_rolled_back_in_place_under_a_newer_checkpoint_is_folded_whole(
    path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log put back to an older copy (a session's write then missed), then grown past the
    checkpoint's end by a long record: the bytes there are not the record the checkpoint
    vouched for, so it is not taken; the fold finds the index behind, and the session is
    rewritten and indexed whole."""
    sid = _deep(vault, 2 * EVERY)
    log = _log(vault)
    old = log.read_bytes()
    with _open(path) as other:
        other.append(sid, _turn("missedword"))
        for i in range(EVERY):  # a checkpoint past the rollback's end
            other.append(sid, _turn(f"lost{i}"))
    checkpoint = _heads(vault).read_bytes()
    fd = os.open(log, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, old)
    finally:
        os.close(fd)
    with _open(path) as other:
        other.save(_doc(" ".join(f"bulk{i}" for i in range(2000))))  # past the checkpoint's end
    _heads(vault).write_bytes(checkpoint)
    assert ("fts-heads-stale", f"fts/{_heads(vault).name}") in _fts_findings(vault, read_data=False)
    with _open(path) as fresh:
        generation = _generation(fresh, sid)
        fresh.append(sid, _turn("third"))
        assert _generation(fresh, sid) == generation + 1  # behind: rewritten, indexed whole
        for word in ("missedword", "lost0", "third"):
            assert _state(fresh, sid, word) == (True, True)


def test_a_damaged_checkpoint_is_reported_never_read_and_replaced(
    path: Path, vault: Vault, opened: dict[str, list[int]]
) -> None:
    sid = _deep(vault)
    heads = _heads(vault)
    data = bytearray(heads.read_bytes())
    data[len(data) // 2] ^= 0x40
    heads.write_bytes(bytes(data))
    assert ("fts-damaged", f"fts/{heads.name}") in _fts_findings(vault, read_data=False)
    frames = _frames(vault)
    with _open(path) as fresh:
        opened["log"].clear()
        fresh.append(sid, _turn("deepturn"))
        assert sorted(opened["log"]) == list(range(frames))  # the fold from record 0
        assert _generation(fresh, sid) == 1
        assert _state(fresh, sid, "deepturn") == (True, True)
    assert heads.read_bytes() != bytes(data)
    assert _fts_findings(vault) == []


def test_another_logs_checkpoint_under_this_logs_name_is_refused(
    path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a compaction (a new log under a new key), the old log's checkpoint copied to the
    new one's name opens nothing; the compaction retired and removed the old one."""
    sid = _deep(vault, 2 * EVERY)
    old_name, old = _heads(vault).name, _heads(vault).read_bytes()
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 0)
    vault.append(sid, _turn("compacted"))
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 40)
    assert not (_fts(vault) / old_name).exists()  # retired with its log, then removed
    other = vault.save(_doc("newlog"))
    vault.append(other, _turn("x"))
    _heads(vault).write_bytes(old)
    man = _manifest(vault)
    with pytest.raises(Exception, match="integrity"):
        open_heads(old, vault.vault_id, man.delta_id, man.delta_key)
    assert ("fts-damaged", f"fts/{_heads(vault).name}") in _fts_findings(vault, read_data=False)
    with _open(path) as fresh:
        fresh.append(sid, _turn("after"))
        assert _state(fresh, sid, "after") == (True, True)
        assert _state(fresh, sid, "compacted") == (True, True)


def test_verify_checks_the_checkpoints_fold_against_the_records(path: Path, vault: Vault) -> None:
    _deep(vault)
    man = _manifest(vault)
    h = open_heads(_heads(vault).read_bytes(), vault.vault_id, man.delta_id, man.delta_key)
    records = read_delta(_log(vault).read_bytes(), vault.vault_id, man.delta_key)
    fold: dict[bytes, tuple[int, ...]] = {}
    for r in records[: h.count]:
        fold[r.doc.session_id.bytes] = (r.doc.generation, *r.stamp)
    assert h.fold == fold
    assert _fts_findings(vault) == []


def test_an_erasure_retires_the_checkpoint_with_its_log(path: Path, vault: Vault) -> None:
    """The checkpoint names the log's sessions (ids and stamps, no words): it goes with the log
    the rotation rewrites, and no file of fts/ that the keys held now open names the erased."""
    victim = vault.save(_doc("victimword"))
    for i in range(EVERY):
        vault.append(victim, _turn(f"v{i}"))
    name = _heads(vault).name
    vault.delete(victim)
    assert not (_fts(vault) / name).exists()
    man = _manifest(vault)
    for p in _fts(vault).glob("*.heads"):
        h = open_heads(p.read_bytes(), vault.vault_id, man.delta_id, man.delta_key)
        assert victim.bytes not in h.fold


def test_a_backup_copy_of_fts_keeps_answering(path: Path, vault: Vault, tmp_path: Path) -> None:
    """The whole fts/ put back to an older copy (log and checkpoint together): consistent."""
    sid = _deep(vault, 2 * EVERY)
    shutil.copytree(_fts(vault), tmp_path / "old")
    vault.append(sid, _turn("laterword"))
    shutil.rmtree(_fts(vault))
    shutil.copytree(tmp_path / "old", _fts(vault))
    with _open(path) as fresh:
        fresh.append(sid, _turn("after"))  # the index missed "laterword": rewritten whole
        for word in ("laterword", "after", "deepword"):
            assert _state(fresh, sid, word) == (True, True)


def test_verify_read_data_finds_a_checkpoint_whose_fold_is_not_the_logs(path: Path, vault: Vault) -> None:
    """Authentic but wrong (only a holder of the delta key could write it: a bug): the quick
    verify cannot tell, the full one folds the records it covers and reports it."""
    sid = _deep(vault)
    man = _manifest(vault)
    h = open_heads(_heads(vault).read_bytes(), vault.vault_id, man.delta_id, man.delta_key)
    wrong = {**h.fold, sid.bytes: (h.fold[sid.bytes][0], 1, 2, 3)}
    forged = Heads(h.log_header, h.count, h.end, h.tail, wrong)
    _heads(vault).write_bytes(seal_heads(vault.vault_id, man.delta_id, man.delta_key, forged))
    assert _fts_findings(vault, read_data=False) == []
    assert _fts_findings(vault) == [("fts-damaged", f"fts/{_heads(vault).name}")]
