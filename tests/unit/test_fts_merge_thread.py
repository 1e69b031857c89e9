"""The library's default maintenance mode, ``thread`` (issue 23: an append of one turn stays
O(turn); docs/api.md, "Maintenance"; docs/design.md, "Tier merges out of the writer's call"): a
due tier merge runs in one background thread of the vault object, beside the caller; ``close``
lets a merge under way finish (a bounded grace), then stops it at a safe point and waits for it; its failures are recorded, never raised or printed;
a forked child inherits neither the thread nor what it held.

The merge is held at a point of its own (its fold, its commit) by events, never by timing; the
hang guard only bounds a wait that a bug would make endless.  Interpreter exit, with real
processes: tests/integration/test_fts_merge_thread.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionseal import AsyncVault, KeychainProvider, ListQuery, Vault
from sessionseal._vault import _ftsthread, _fulltext
from sessionseal._vault._ftscompact import fold as fold_segments
from tests.unit.test_fts_lifecycle import manifest_of

HANG_GUARD = 120.0
MERGE_THREAD = "sessionseal-ftsmerge"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold every two records, tiers of three segments."""
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 2)
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 30)
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 3)


class Held:
    """A tier merge held inside its fold (nothing written yet) until :attr:`release` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, on_cancel: bool = False) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.threads: list[threading.Thread] = []
        real = fold_segments

        def fold(fts: Any, vid: Any, pulled: Any, records: Any, current: Any, **kw: Any) -> Any:
            out = real(fts, vid, pulled, records, current, **kw)
            if pulled:  # a tier merge's fold (a compaction's pulls no segment)
                self.threads.append(threading.current_thread())
                self.started.set()
                assert self.release.wait(HANG_GUARD)
            return out

        monkeypatch.setattr(_fulltext, "fold", fold)
        if on_cancel:  # close's request to stop lets the fold end: the next safe point follows
            real_cancel = _ftsthread.MergeThread.cancel

            def cancel(thread: _ftsthread.MergeThread) -> None:
                real_cancel(thread)
                self.release.set()

            monkeypatch.setattr(_ftsthread.MergeThread, "cancel", cancel)


def _writes(vault: Vault, n: int) -> uuid.UUID:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "walrus zero"}]})
    for i in range(n):
        vault.append(sid, [{"role": "assistant", "content": f"walrus more{i}"}])
    return sid


def _hits(vault: Vault) -> list[tuple[str, float]]:
    return [(h.id, round(h.score, 9)) for h in vault.search("walrus", ListQuery(limit=10), snippets=False)]


def _errors(vault: Vault) -> list[str]:
    return [p.code for p in vault.verify(read_data=True).problems if p.severity == "error"]


def test_the_append_that_makes_a_merge_due_returns_while_the_vaults_thread_merges(
    vault: Vault, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(monkeypatch)
    assert vault.maintenance.mode == "thread"
    sid = _writes(vault, 5)  # records 1..6: the third fold fills the tier; the append returns
    assert held.started.wait(HANG_GUARD)
    assert [t.name for t in held.threads] == [MERGE_THREAD] and held.threads[0] is not threading.current_thread()
    status = vault.maintenance.status()
    assert status.running and status.pending is not None and status.due
    assert len(manifest_of(vault).segments) == 3
    # The caller goes on beside it: a write (its fold commits a fourth segment) and a search.
    vault.append(sid, [{"role": "user", "content": "walrus beside"}])
    vault.append(sid, [{"role": "user", "content": "walrus beside again"}])
    before = _hits(vault)
    held.release.set()
    assert vault.maintenance.wait(HANG_GUARD)
    status = vault.maintenance.status()
    assert status.last["by"] == "thread" and status.last["outcome"] == "ok" and status.last["merges"] == 1
    assert status.pending is None and not status.due and not status.running
    assert len(manifest_of(vault).segments) == 2  # the merged one and the fold's made beside it
    assert _hits(vault) == before and _errors(vault) == []
    assert vault.maintenance.threads == 1 and vault.maintenance.spawned == 0


def test_close_lets_a_merge_under_way_finish(
    vault: Vault, vault_path: Path, provider: KeychainProvider, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script that appends and closes at once: were every merge it made due stopped at close,
    # a vault written only by such scripts would never merge (only a later fold finds it again).
    held = Held(monkeypatch)
    monkeypatch.setattr(_ftsthread, "FINISH_GRACE", HANG_GUARD)
    _writes(vault, 5)
    assert held.started.wait(HANG_GUARD)
    before = _hits(vault)
    real_drain = _ftsthread.MergeThread.drain

    def drain(thread: _ftsthread.MergeThread) -> None:  # close began: the held fold may end
        real_drain(thread)
        held.release.set()

    monkeypatch.setattr(_ftsthread.MergeThread, "drain", drain)
    vault.close()  # lets the fold end, and waits for the merge's commit
    assert not held.threads[0].is_alive()
    with Vault.open(vault_path, key_provider=provider) as again:
        again.maintenance.mode = "manual"
        status = again.maintenance.status()
        assert status.pending is None and not status.due
        assert status.last["by"] == "thread" and status.last["outcome"] == "ok" and status.last["merges"] == 1
        assert len(manifest_of(again).segments) == 1 and _hits(again) == before and _errors(again) == []


def test_close_stops_the_merge_at_a_safe_point_and_the_merge_stays_pending(
    vault: Vault, vault_path: Path, provider: KeychainProvider, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(monkeypatch, on_cancel=True)
    monkeypatch.setattr(_ftsthread, "FINISH_GRACE", 0.0)  # past the grace: stopped
    _writes(vault, 5)
    assert held.started.wait(HANG_GUARD)
    before = _hits(vault)
    vault.close()  # cancels (which lets the fold end), waits: the merge stops before its seal
    assert not held.threads[0].is_alive()  # nothing of the vault (a key, a descriptor) in a thread
    assert vault.maintenance.wait(0)
    with Vault.open(vault_path, key_provider=provider) as again:
        again.maintenance.mode = "manual"
        status = again.maintenance.status()
        assert status.pending is not None and status.due and not status.running
        assert status.last == {}  # a stop is not a failure: no later command is kept from it
        assert len(manifest_of(again).segments) == 3 and _errors(again) == []
        assert _hits(again) == before
        assert again.maintenance.run() == 1
        assert again.maintenance.status().pending is None and _hits(again) == before


def test_a_closed_vault_starts_no_merge_thread(vault: Vault, tiny: None) -> None:
    vault.maintenance.close()
    _writes(vault, 5)  # a fold fills the tier: noted pending, no thread
    assert vault.maintenance.threads == 0
    status = vault.maintenance.status()
    assert status.pending is not None and status.due and not status.running


def test_a_failure_in_the_thread_is_recorded_never_raised_nor_printed(
    vault: Vault, tiny: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def merge_tier(self: Any, *a: Any) -> bool:
        raise OSError(28, "No space left on device", "/home/someone/walrus-plans")

    monkeypatch.setattr(_fulltext.FullText, "merge_tier", merge_tier)
    sid = _writes(vault, 5)
    assert vault.maintenance.wait(HANG_GUARD)
    status = vault.maintenance.status()
    assert status.last["outcome"] == "error" and status.last["error"] == "OSError" and status.last["by"] == "thread"
    assert status.pending is not None  # not lost: the next fold, resume or run takes it up
    record = (vault_path_of(vault) / "ftsmerge.json").read_text()
    assert "walrus" not in record and "someone" not in record
    vault.append(sid, [{"role": "user", "content": "a later call"}])  # nothing raised into it
    assert _hits(vault)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no traceback from the thread's end


def vault_path_of(vault: Vault) -> Path:
    return Path(vault.path)


def test_resume_takes_a_pending_merge_up_in_the_thread(vault: Vault, tiny: None) -> None:
    vault.maintenance.mode = "manual"
    _writes(vault, 5)
    assert vault.maintenance.status().pending is not None
    vault.maintenance.mode = "thread"
    assert vault.maintenance.resume(foreground=False) == 0  # started, not run here
    assert vault.maintenance.wait(HANG_GUARD)
    status = vault.maintenance.status()
    assert status.last["by"] == "thread" and status.pending is None and vault.maintenance.threads == 1


def test_a_forked_child_inherits_neither_the_thread_nor_what_it_held(
    vault: Vault, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The merge thread is held in its commit: the vault lock, the mutex and the merge lock held.
    started, release = threading.Event(), threading.Event()
    real = _fulltext.FullText._replace

    def replace(self: Any, *a: Any, **kw: Any) -> Any:
        if kw.get("merged") and threading.current_thread().name == MERGE_THREAD:
            started.set()
            assert release.wait(HANG_GUARD)
        return real(self, *a, **kw)

    monkeypatch.setattr(_fulltext.FullText, "_replace", replace)
    sid = _writes(vault, 5)
    assert started.wait(HANG_GUARD)
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(go_w)
            vault.maintenance.mode = "manual"
            no_thread = vault.maintenance.wait(0)
            os.read(go_r, 1)  # the parent's merge is committed, its locks let go
            vault.append(sid, [{"role": "user", "content": "walrus from the child"}])  # mutex, vault lock
            merged = vault.maintenance.run()  # None if the child's copy of the merge lock still held it
            code = 0 if no_thread and merged is not None else 2
        finally:
            os._exit(code)
    os.close(go_r)
    release.set()
    assert vault.maintenance.wait(HANG_GUARD)
    assert vault.maintenance.status().last["outcome"] == "ok"
    os.write(go_w, b"x")
    os.close(go_w)
    assert _exit_code(pid) == 0
    assert _errors(vault) == []


def _exit_code(pid: int) -> int:
    """The child's exit code; a child still running after the hang guard (a lock its parent's
    vanished thread held, never let go) is killed and fails the test."""
    done = threading.Event()
    killer = threading.Timer(HANG_GUARD, lambda: None if done.is_set() else os.kill(pid, 9))
    killer.start()
    try:
        _pid, status = os.waitpid(pid, 0)
    finally:
        done.set()
        killer.cancel()
    return os.waitstatus_to_exitcode(status)


def test_an_async_vaults_append_leaves_the_merge_to_the_vaults_thread_and_close_stops_it(
    vault_path: Path, provider: KeychainProvider, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(monkeypatch, on_cancel=True)
    monkeypatch.setattr(_ftsthread, "FINISH_GRACE", 0.0)  # past the grace: stopped

    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as av:
            assert av.maintenance.mode == "thread"
            sid = await av.save({"title": "t", "messages": [{"role": "user", "content": "walrus zero"}]})
            for i in range(5):  # each in a worker thread of the loop: the fifth returns, the merge held
                await av.append(sid, [{"role": "assistant", "content": f"walrus more{i}"}])
            assert await asyncio.to_thread(held.started.wait, HANG_GUARD)
            assert [t.name for t in held.threads] == [MERGE_THREAD]
            assert (await av.maintenance.status()).running
        # close (awaited in a worker thread) stopped the merge at a safe point and waited for it

    asyncio.run(main())
    assert not held.threads[0].is_alive()
    with Vault.open(vault_path, key_provider=provider) as again:
        again.maintenance.mode = "manual"
        status = again.maintenance.status()
        assert status.pending is not None and status.due and status.last == {}
        assert again.maintenance.run() == 1 and _errors(again) == []
