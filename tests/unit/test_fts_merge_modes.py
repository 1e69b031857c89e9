"""Where a due tier merge runs in the library (docs/api.md, "Maintenance"): never inside the
writer's call that made it due. ``inline`` (the default) merges in the calling thread once the
outermost call has released every lock, ``manual`` leaves it pending for ``run()``; no process
is started by either. The real processes of ``background`` are in
tests/integration/test_fts_merge_detach.py."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from sessionseal import ListQuery, Vault, errors
from sessionseal._vault import _fulltext
from tests.unit.test_fts_lifecycle import manifest_of


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold every two records, tiers of three segments."""
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 2)
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 30)
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 3)


def _session_lock_free(vault: Vault, sid: uuid.UUID) -> bool:
    """Whether another thread (as another process would) can take *sid*'s session lock now."""
    got: list[bool] = []

    def take() -> None:
        try:
            with vault.parts.ctx.session_lock(vault.parts.keys.file_name(sid), sid, timeout=0):
                got.append(True)
        except errors.LockTimeout:
            got.append(False)

    t = threading.Thread(target=take)
    t.start()
    t.join()
    return got[0]


def _writes(vault: Vault, n: int) -> uuid.UUID:
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "walrus zero"}]})
    for i in range(n):
        vault.append(sid, [{"role": "assistant", "content": f"walrus more{i}"}])
    return sid


def test_inline_merges_after_the_call_with_the_session_lock_free(
    vault: Vault, tiny: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = _fulltext.FullText.merge_tier
    sid_box: list[uuid.UUID] = []

    def merge_tier(self: Any, *a: Any) -> bool:
        if sid_box:
            seen.append(_session_lock_free(vault, sid_box[0]))
        return real(self, *a)

    monkeypatch.setattr(_fulltext.FullText, "merge_tier", merge_tier)
    vault.maintenance.mode = "inline"
    sid = vault.save({"title": "t", "messages": [{"role": "user", "content": "walrus zero"}]})
    sid_box.append(sid)
    for i in range(5):  # records 2..6: the third fold fills the tier
        vault.append(sid, [{"role": "assistant", "content": f"walrus more{i}"}])
    assert seen and all(seen)  # merged, and never with the appended session's lock held
    status = vault.maintenance.status()
    assert status.last["by"] == "inline" and status.pending is None and not status.due
    assert vault.maintenance.spawned == 0
    assert len(manifest_of(vault).segments) == 1


def test_manual_leaves_the_merge_pending_and_run_does_it(vault: Vault, tiny: None) -> None:
    vault.maintenance.mode = "manual"
    _writes(vault, 5)
    status = vault.maintenance.status()
    assert status.due and status.pending is not None and status.last == {} and not status.running
    before = [(h.id, h.score) for h in vault.search("walrus", ListQuery(limit=10), snippets=False)]
    assert not [p for p in vault.verify(read_data=True).problems if p.severity == "error"]  # speed, not damage
    assert vault.maintenance.run() == 1
    status = vault.maintenance.status()
    assert not status.due and status.pending is None and status.last["by"] == "command"
    assert [(h.id, h.score) for h in vault.search("walrus", ListQuery(limit=10), snippets=False)] == before
    assert vault.maintenance.spawned == 0


def test_the_mode_is_one_of_four_and_thread_by_default(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput):
        vault.maintenance.mode = "sometimes"  # type: ignore[assignment]
    assert vault.maintenance.mode == "thread"
