"""An append's check against the full-text index costs O(turn), not O(delta log) (issue 23;
docs/spec/fts-v1.md, "Writers"): the index must hold the session as its file was before the
append, and finding that no longer decrypts every record of the delta log. A process reads the
log back from its last record to the session's last one, or remembers the log's records as it
last read them and reads only those written since; the memory is dropped when the log is no
longer the one it read (another log, or the same file rolled back). Counted in frames
decrypted, never timed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault, _container
from sessionseal._container import Kind
from sessionseal._vault import _ftsheads, _fulltext

PASSPHRASE = "fts append check"
OTHERS = 40  # records of other sessions in the log: more than _ftsheads.EVERY


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 1 << 30)  # the log keeps every record
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 40)
    p = tmp_path / "v"
    Vault.init(p, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    return p


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The delta log's frames decrypted, by index, from now on (not its heads checkpoint's,
    whose object id is the log's: tests/unit/test_fts_heads.py counts those)."""
    seen: list[int] = []
    real = _container.open_frames_at

    def spy(data: Any, header: _container.Header, dek: bytes, pos: int, first: int, **kw: Any) -> Any:
        out = real(data, header, dek, pos, first, **kw)
        if header.kind == Kind.FTS_DELTA and header.object_id.int == 0:
            seen.extend(f.index for f in out[0])
        return out

    monkeypatch.setattr(_container, "open_frames_at", spy)
    return seen


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


def _turn(word: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": word}]


def _doc(word: str) -> dict[str, Any]:
    return {"title": "t", "messages": [{"role": "user", "content": word}]}


def _fill(v: Vault, n: int) -> uuid.UUID:
    other = v.save(_doc("other"))
    for i in range(n):
        v.append(other, _turn(f"filler{i}"))
    return other


def _current_and_found(v: Vault, sid: uuid.UUID, word: str) -> tuple[bool, bool]:
    st = os.stat(v.parts.ctx.path / "sessions" / (v.parts.keys.file_name(sid) + ".sst"))
    with v.parts.fulltext.view() as view:
        assert view is not None
        current = view.stamps.get(sid) == (st.st_ino, st.st_size, st.st_mtime_ns)
        return current, sid in {h.session_id for h in view.index.search(word)}


def _generation(v: Vault, sid: uuid.UUID) -> int:
    raw = (v.parts.ctx.path / "sessions" / (v.parts.keys.file_name(sid) + ".sst")).read_bytes()
    return _container.parse_unverified_header(raw).generation


@pytest.fixture
def vault(path: Path) -> Iterator[Vault]:
    with _open(path) as v:
        yield v


def test_a_fresh_process_appending_to_the_last_writer_decrypts_one_record(
    path: Path, vault: Vault, opened: list[int]
) -> None:
    sid = vault.save(_doc("first"))
    _fill(vault, OTHERS)
    vault.append(sid, _turn("second"))  # the log's last record is the session's
    with _open(path) as fresh:
        del opened[:]
        fresh.append(sid, _turn("third"))
        assert opened == [OTHERS + 2]  # the last record only (before: all 43)
        assert _current_and_found(fresh, sid, "first") == (True, True)
        assert _current_and_found(fresh, sid, "third") == (True, True)


def test_a_process_reads_only_the_records_written_since_it_last_read_the_log(
    path: Path, vault: Vault, opened: list[int]
) -> None:
    a, b = vault.save(_doc("aword")), vault.save(_doc("bword"))
    _fill(vault, OTHERS)  # neither a nor b in the last SCAN records
    with _open(path) as fresh:
        del opened[:]
        fresh.append(a, _turn("a2"))
        # Once: the records after the log's heads checkpoint (written when 32 followed the last), then remembered.
        assert sorted(opened) == list(range(_ftsheads.EVERY + 1, OTHERS + 3))
        del opened[:]
        fresh.append(b, _turn("b2"))
        assert opened == []  # nothing new since
        with _open(path) as other:
            other.append(b, _turn("b3"))  # another process's record (it reads back to b's)
        del opened[:]
        fresh.append(a, _turn("a3"))
        assert opened == [OTHERS + 5]  # the other process's record only
        for sid, word in ((a, "a3"), (a, "aword"), (b, "b3"), (b, "bword")):
            assert _current_and_found(fresh, sid, word) == (True, True)


@pytest.fixture
def remember_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ftsheads, "EVERY", 0)  # every process folds and remembers the whole log


@pytest.mark.usefixtures("remember_always")
def test_a_write_another_process_missed_is_caught_up_by_a_process_that_remembers(
    path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = vault.save(_doc("first"))
    vault.append(sid, _turn("second"))  # remembered
    with _open(path) as other:
        monkeypatch.setattr(other.parts.fulltext, "enabled", False)  # its index update is lost
        other.append(sid, _turn("missedword"))
    generation = _generation(vault, sid)
    vault.append(sid, _turn("third"))
    assert _generation(vault, sid) == generation + 1  # rewritten: the index takes it whole
    for word in ("first", "missedword", "third"):
        assert _current_and_found(vault, sid, word) == (True, True)


@pytest.mark.usefixtures("remember_always")
def test_a_log_rolled_back_in_place_is_read_again(path: Path, vault: Vault) -> None:
    """The same file (inode, header) put back to an older copy, then grown past where this
    process last read it by another's record: the bytes there are not the frame it read."""
    sid = vault.save(_doc("first"))
    (log,) = (path / "fts").glob("*.delta")
    old = log.read_bytes()
    vault.append(sid, _turn("missedword"))  # remembered, then lost with the rollback
    fd = os.open(log, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, old)
    finally:
        os.close(fd)
    with _open(path) as other:
        other.save(_doc(" ".join(f"bulk{i}" for i in range(400))))  # a long record: past the remembered end
    assert log.stat().st_size > len(old) + 200
    generation = _generation(vault, sid)
    vault.append(sid, _turn("third"))
    assert _generation(vault, sid) == generation + 1  # the index was behind: rewritten, indexed whole
    for word in ("missedword", "third"):
        assert _current_and_found(vault, sid, word) == (True, True)
