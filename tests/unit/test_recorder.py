"""The recorder (issue 7): buffered events are appended on flush, by autosave, on exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, PassphraseProvider, Vault, errors

#: A hang guard only: reached when a thread or task never runs, never for a machine's speed.
HANG_GUARD = 120.0


def _texts(vault: Vault, sid: object) -> list[str]:
    return [m.content[0].text if m.content[0].type == "text" else m.content[0].type for m in vault.load(sid).messages]  # type: ignore[arg-type, union-attr]


def test_a_recorded_block_is_stored_when_it_ends(vault: Vault) -> None:
    with vault.record(title="live", workspace="/w", autosave=None) as rec:
        rec.append_message("user", "fix it")
        rec.append_tool_call("bash", {"cmd": "make"}, id="c1")
        rec.append_tool_result("c1", "ok")
        rec.update_state(working_directory="/w/src", status="completed")
        assert vault.list()[0].message_count == 0  # nothing written before a flush
    assert rec.flushed == 4
    s = vault.load(rec.session_id)
    assert (s.title, s.workspace, s.working_directory, s.status.value) == ("live", "/w", "/w/src", "completed")
    assert _texts(vault, rec.session_id) == ["fix it", "tool_call", "tool_result"]
    assert s.tool_history[0].status == "ok"
    assert len([r for r in vault.audit_records() if r["action"] == "append"]) == 1  # one flush, one group


def test_flush_writes_what_is_buffered_in_order(vault: Vault) -> None:
    rec = vault.record(autosave=None)
    for i in range(3):
        rec.append_message("user", f"m{i}")
        assert rec.flush() == 1
    assert rec.flush() == 0
    rec.close()
    rec.close()  # idempotent
    assert _texts(vault, rec.session_id) == ["m0", "m1", "m2"]
    with pytest.raises(RuntimeError, match="closed"):
        rec.append_message("user", "late")


def test_a_bad_event_raises_where_it_is_added(vault: Vault) -> None:
    with vault.record(autosave=None) as rec:
        with pytest.raises(errors.InvalidInput, match="event"):
            rec.update_state(id="not allowed")
        with pytest.raises(errors.InvalidInput):
            rec.append_message("", "no role")
        rec.append_message("user", "good")
    assert _texts(vault, rec.session_id) == ["good"]


def test_a_failed_flush_keeps_the_events_for_the_next(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = vault.record(autosave=None)
    rec.append_message("user", "a")
    real = vault.parts.store.append
    calls = {"n": 0}

    def flaky(sid: uuid.UUID, ops: list[dict[str, object]], *, touch: bool) -> tuple[int, dict[str, int]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise errors.StorageError("disk full")
        return real(sid, ops, touch=touch)

    monkeypatch.setattr(vault.parts.store, "append", flaky)
    with pytest.raises(errors.StorageError):
        rec.flush()
    rec.append_message("user", "b")
    assert rec.flush() == 2
    assert calls["n"] == 2
    rec.close()
    assert _texts(vault, rec.session_id) == ["a", "b"]


def test_the_block_is_flushed_even_when_it_raises(vault: Vault) -> None:
    rec = vault.record(autosave=None)

    def work() -> None:
        with rec:
            rec.append_message("user", "before the error")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        work()
    assert _texts(vault, rec.session_id) == ["before the error"]


def test_autosave_writes_without_being_asked(vault: Vault) -> None:
    sid = vault.save({"title": "existing", "messages": [{"role": "user", "content": "old"}]})
    with vault.record(sid, autosave=0.05) as rec:
        rec.append_message("assistant", "new")
        deadline = time.monotonic() + 10
        while rec.flushed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rec.flushed == 1
        assert _texts(vault, sid) == ["old", "new"]  # on disk while still recording
    with pytest.raises(errors.SessionNotFound):
        vault.record("00000000-0000-0000-0000-000000000042")
    with pytest.raises(ValueError, match="autosave"):
        vault.record(sid, autosave=0)


def test_async_recorder_autosaves_without_blocking_the_loop(
    vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each flush (autosave's, and close's) runs while the event loop goes on: proved by the
    loop ticking *during* the flush, which waits for a tick before writing (a flush run on the
    loop's own thread would wait in vain), never by counting ticks in a wall-clock while, which
    a loaded machine's scheduler decides."""
    import asyncio
    import threading

    from sessionseal import AsyncVault
    from sessionseal._recorder import Recorder

    ticked = threading.Event()
    during: list[bool] = []
    real_flush = Recorder.flush

    def flush(self: Recorder) -> int:
        ticked.clear()
        during.append(ticked.wait(HANG_GUARD))  # the loop ran a tick since this flush began
        return real_flush(self)

    monkeypatch.setattr(Recorder, "flush", flush)

    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as v:

            async def ticker() -> None:
                while True:
                    ticked.set()
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(ticker())
            async with await v.record(title="async", autosave=0.05) as rec:
                for i in range(5):
                    rec.append_message("user", f"a{i} " + "w" * 100_000)
                    await asyncio.sleep(0.03)
                deadline = asyncio.get_running_loop().time() + HANG_GUARD
                while rec.flushed == 0 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
                assert rec.flushed > 0  # the autosave task ran
            task.cancel()
            assert len((await v.load(rec.session_id)).messages) == 5

    asyncio.run(main())
    assert len(during) >= 2 and all(during), during  # an autosave's flush and close's


def test_an_open_recorder_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "v"
    Vault.init(path, key_provider=PassphraseProvider("pw", log2_n=14)).close()
    code = textwrap.dedent(
        """
        import sys
        from sessionseal import Vault
        v = Vault.open(sys.argv[1], passphrase="pw")
        rec = v.record(title="exit", autosave=None)
        rec.append_message("user", "written at exit")
        print(rec.session_id)
        """
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with Vault.open(path, passphrase="pw") as v:
        assert _texts(v, out) == ["written at exit"]
