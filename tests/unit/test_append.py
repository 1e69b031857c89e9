"""Appends (docs/spec/container-v1.md, "Appends"): a turn costs what the turn costs, is
sanitized like everything stored, survives a torn write, and reads back as if saved whole."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._index import INDEX_FILE
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SECRET = "ghp_" + "Zq8" * 12


def _file(vault: Vault, sid: uuid.UUID) -> Path:
    return vault.parts.ctx.sessions.path / (vault.parts.keys.file_name(sid) + ".sst")


def _new(vault: Vault) -> uuid.UUID:
    return vault.save({"title": "live", "messages": [{"role": "user", "content": "start"}]})


def test_appended_messages_read_back_as_if_saved_whole(vault: Vault) -> None:
    sid = _new(vault)
    f = _file(vault, sid)
    inode, generation = f.stat().st_ino, vault.parts.store.stored_generation(f.name)
    before = vault.list()[0].updated_at
    assert vault.append(sid, [{"role": "assistant", "content": "one", "model": "m1", "cost_usd": 0.5}]) == 1
    assert vault.append(sid, [{"type": "message", "role": "user", "content": "two"}]) == 1
    s = vault.load(sid)
    assert [m.content[0].text for m in s.messages] == ["start", "one", "two"]  # type: ignore[union-attr]
    # Appended in place: same file, same version, one data key.
    assert f.stat().st_ino == inode and vault.parts.store.stored_generation(f.name) == generation
    [summary] = vault.list()
    assert summary.message_count == 3 and summary.models == ["m1"] and summary.cost_usd == 0.5
    assert summary.updated_at > before and summary.updated_at == s.updated_at
    assert summary.size_stored == f.stat().st_size


def test_tool_calls_results_and_state(vault: Vault) -> None:
    sid = _new(vault)
    vault.append(
        sid,
        [
            {"type": "tool_call", "name": "bash", "arguments": {"cmd": "ls"}, "id": "c1"},
            {"type": "tool_result", "tool_call_id": "c1", "content": "a.txt", "is_error": True},
            {"type": "state", "working_directory": "/w", "environment": {"LANG": "C"}, "status": "paused"},
        ],
    )
    s = vault.load(sid)
    assert [m.role for m in s.messages] == ["user", "assistant", "tool"]
    [use] = s.tool_history
    assert (use.tool, use.call_id, use.status) == ("bash", "c1", "error") and use.finished_at is not None
    assert s.working_directory == "/w" and s.environment == {"LANG": "C"} and s.status.value == "paused"
    assert vault.list()[0].status.value == "paused"


def test_appended_secrets_are_sanitized_counted_and_never_on_disk(vault: Vault, vault_path: Path) -> None:
    sid = _new(vault)
    vault.append(
        sid, [{"role": "user", "content": f"token {SECRET}"}, {"type": "state", "environment": {"GH": SECRET}}]
    )
    s = vault.load(sid)
    assert SECRET not in s.model_dump_json()
    assert "[REDACTED:" in s.messages[-1].content[0].text  # type: ignore[union-attr]
    assert sum(s.redactions.values()) >= 2 and vault.list()[0].redactions == s.redactions
    for p in vault_path.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes()
    [rec] = [r for r in vault.audit_entries()[0] if r["action"] == "append"]
    assert rec["subjects"][0]["events"] == 2 and sum(rec["redactions"].values()) >= 2 and rec["verified"]


def test_bad_events_append_nothing(vault: Vault) -> None:
    sid = _new(vault)
    f = _file(vault, sid)
    before = f.read_bytes()
    bad = [
        [{"role": "user", "content": "ok"}, {"type": "nope"}],
        [{"type": "state", "id": "x"}],
        [{"type": "state"}],
        [{"type": "tool_call"}],
        ["not an object"],
        [{"role": ""}],
    ]
    for events in bad:
        with pytest.raises(errors.InvalidInput, match="event"):
            vault.append(sid, events)  # type: ignore[arg-type]
    assert f.read_bytes() == before
    assert vault.append(sid, []) == 0
    with pytest.raises(errors.SessionNotFound):
        vault.append("00000000-0000-0000-0000-000000000001", [{"role": "user", "content": "x"}])


def test_a_torn_append_is_ignored_and_cut_off_by_the_next(vault: Vault) -> None:
    sid = _new(vault)
    vault.append(sid, [{"role": "user", "content": "kept"}])
    f = _file(vault, sid)
    good = f.read_bytes()
    vault.append(sid, [{"role": "user", "content": "torn"}])
    whole = f.read_bytes()
    # A writer killed mid-append never anchored its mark: the vault's record is of *good*
    # (an acknowledged append cut off is 'truncated', test_a_cut_off_committed_append_is_reported).
    f.write_bytes(good)
    vault.reindex()
    for cut in (len(good) + 3, len(good) + 40, len(whole) - 1):
        f.write_bytes(whole[:cut])  # a writer killed mid-append
        vault.parts.index.cached = None
        assert [m.content[0].text for m in vault.load(sid).messages][-1] == "kept"  # type: ignore[union-attr]
        assert vault.list()[0].message_count == 2
    vault.append(sid, [{"role": "user", "content": "after"}])
    texts = [m.content[0].text for m in vault.load(sid).messages]  # type: ignore[union-attr]
    assert texts == ["start", "kept", "after"]


def test_a_cut_off_committed_append_is_reported(vault: Vault) -> None:
    sid = _new(vault)
    f = _file(vault, sid)
    good = f.read_bytes()
    vault.append(sid, [{"role": "user", "content": "recorded"}])
    vault.list()  # the index knows the longer file
    f.write_bytes(good)
    summaries, problems = vault.list_with_problems()
    assert summaries[0].message_count == 1
    assert len(problems) == 1 and "appended turns the index recorded are missing" in problems[0]


def test_appends_are_compacted_into_a_new_version(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._vault import _store

    monkeypatch.setattr(_store, "MAX_GROUPS", 3)
    sid = _new(vault)
    f = _file(vault, sid)
    generation = vault.parts.store.stored_generation(f.name)
    for i in range(3):
        vault.append(sid, [{"role": "user", "content": f"m{i}"}])
    assert vault.parts.store.stored_generation(f.name) == (generation or 0) + 1  # rewritten once, under a fresh key
    texts = [m.content[0].text for m in vault.load(sid).messages]  # type: ignore[union-attr]
    assert texts == ["start", "m0", "m1", "m2"]
    [summary] = vault.list()
    assert summary.message_count == 4 and summary.generation == (generation or 0) + 1


def test_edits_are_appended_not_rewritten(vault: Vault) -> None:
    sid = _new(vault)
    vault.append(sid, [{"role": "user", "content": "turn"}])
    f = _file(vault, sid)
    inode, size, updated = f.stat().st_ino, f.stat().st_size, vault.list()[0].updated_at
    assert vault.rename(sid, "new title") and vault.tag(sid, add=["x"]) == ["x"] and vault.archive(sid)
    assert f.stat().st_ino == inode and f.stat().st_size > size
    s = vault.load(sid)
    assert (s.title, s.tags, s.status.value, s.archived_from) == ("new title", ["x"], "archived", "active")
    assert len(s.messages) == 2 and s.updated_at == updated  # an edit does not make it young
    assert vault.unarchive(sid) and vault.load(sid).archived_from is None
    assert vault.list()[0].title == "new title"


def test_search_finds_appended_text_and_a_lost_index_is_rebuilt(vault: Vault, vault_path: Path) -> None:
    sid = _new(vault)
    vault.append(sid, [{"role": "assistant", "content": "the quokka answer"}])
    assert [h.id for h in vault.search("quokka")] == [str(sid)]
    os.unlink(vault_path / INDEX_FILE)
    vault.parts.index.cached = None
    [summary] = vault.list()
    assert summary.message_count == 2 and summary.id == sid


def test_cli_append_reads_json_lines(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    sid = run("save", "-", input=json.dumps({"title": "t", "messages": []})).output.strip()
    lines = "\n".join(
        json.dumps(e)
        for e in (
            {"role": "user", "content": f"use {SECRET}"},
            {"type": "tool_call", "name": "bash", "id": "c1"},
            {"type": "tool_result", "tool_call_id": "c1", "content": "ok"},
        )
    )
    r = run("append", sid, "--json", input=lines + "\n\n")
    assert r.exit_code == 0 and json.loads(r.output) == {"appended": 3, "id": sid}
    shown = run("show", sid, "--json").output
    assert SECRET not in shown and len(json.loads(shown)["messages"]) == 3
    r = run("append", sid, input='{"role": "user", "content": "fine"}\nnot json\n')
    assert r.exit_code == 8 and "line 2" in r.output
    r = run("append", sid, input='{"type": "bogus-ghp_value"}\n')
    assert r.exit_code == 8 and "event 1" in r.output and "bogus" not in r.output  # input is not echoed
    assert len(json.loads(run("show", sid, "--json").output)["messages"]) == 3  # nothing from the bad inputs
    missing = "00000000-0000-0000-0000-000000000009"
    assert run("append", missing, input='{"role": "user", "content": "x"}\n').exit_code == 3


def test_async_append_does_not_block_the_event_loop(vault_path: Path, provider: KeychainProvider) -> None:
    import asyncio

    from sessionseal import AsyncVault
    from tests.unit._loop import gate

    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as v:
            sid = await v.save({"title": "a", "messages": []})
            calls: list[str] = []
            v.sync.append = gate(asyncio.get_running_loop(), v.sync.append, calls)  # type: ignore[method-assign]
            for i in range(20):
                await v.append(sid, [{"role": "user", "content": f"turn {i} " + "z" * 50_000}])
            assert calls == ["append"] * 20  # each ran in a worker thread while the loop went on
            assert len((await v.load(sid)).messages) == 20
            assert [h.id for h in await v.search("turn 19")] == [str(sid)]

    asyncio.run(main())
