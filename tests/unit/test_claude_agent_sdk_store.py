"""The Claude Agent SDK's SessionStore in a vault (sessionseal.integrations.claude_agent_sdk;
docs/integrations/claude-agent-sdk.md), without the SDK: its contract as this store keeps it.
The SDK's own conformance harness and resume run in test_claude_agent_sdk_conformance.py."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sessionseal import KeychainProvider, Vault
from sessionseal.errors import InvalidInput, SessionNotFound
from sessionseal.integrations.claude_agent_sdk import TAG, SealedSessionStore

SECRET = "ghp_" + "Sd5" * 12
KEY: dict[str, Any] = {"project_key": "-home-dev-app", "session_id": "0b7d1c2e-5a4f-4e3b-9c8d-7e6f5a4b3c2d"}
SUB: dict[str, Any] = {**KEY, "subpath": "subagents/agent-a1"}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def entry(uuid: str | None, text: str = "hello", **more: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"type": "user", "message": {"role": "user", "content": text}, **more}
    if uuid is not None:
        e["uuid"] = uuid
    return e


@pytest.fixture
def store(vault: Vault) -> SealedSessionStore:
    return SealedSessionStore(vault)


def test_load_returns_exactly_what_was_appended_in_order(store: SealedSessionStore) -> None:
    first = [entry("u1", n=1.5, nested={"a": [1, None, True]}), entry(None, "title", customTitle="x")]
    run(store.append(KEY, first))
    run(store.append(KEY, [entry("u2")]))
    run(store.append(KEY, []))
    assert run(store.load(KEY)) == [*first, entry("u2")]


def test_unknown_keys_load_as_none(store: SealedSessionStore) -> None:
    assert run(store.load(KEY)) is None
    run(store.append(KEY, [entry("u1")]))
    assert run(store.load(SUB)) is None
    # A session with only a sub-agent's entries has no main transcript to load.
    other = {**KEY, "session_id": "other"}
    run(store.append({**other, "subpath": "subagents/agent-x"}, [entry("s1")]))
    assert run(store.load(other)) is None
    assert run(store.list_sessions(KEY["project_key"])) == [
        {"session_id": KEY["session_id"], "mtime": run(store.list_sessions(KEY["project_key"]))[0]["mtime"]}
    ]


def test_an_entry_whose_uuid_is_stored_is_skipped(vault: Vault, store: SealedSessionStore) -> None:
    run(store.append(KEY, [entry("u1"), entry("u1", "again"), entry(None), entry(None)]))
    run(store.append(KEY, [entry("u1", "retried"), entry("u2")]))
    assert run(store.load(KEY)) == [entry("u1"), entry(None), entry(None), entry("u2")]
    # Per key: the same uuid in a sub-agent's transcript is its own entry.
    run(store.append(SUB, [entry("u1")]))
    assert run(store.load(SUB)) == [entry("u1")]
    # A second store on the vault (another process's) knows what the first stored...
    other = SealedSessionStore(vault)
    run(other.append(KEY, [entry("u2"), entry("u3")]))
    # ...and the first sees what the second appended since (its cache is of an older version).
    run(store.append(KEY, [entry("u3"), entry("u4")]))
    assert [e.get("uuid") for e in run(store.load(KEY))] == ["u1", None, None, "u2", "u3", "u4"]


def test_an_append_appends_to_the_session_file(vault: Vault, store: SealedSessionStore) -> None:
    # The vault's append path: what was stored stays byte for byte, the batch goes after it.
    run(store.append(KEY, [entry("u1", "x" * 5000)]))
    sid = store.session_id_for(KEY)
    [path] = (vault.path / "sessions").glob("*.sst")
    before = path.read_bytes()
    run(store.append(KEY, [entry("u2")]))
    after = path.read_bytes()
    assert after.startswith(before) and len(after) - len(before) < 2000
    actions = [e["action"] for e in vault.audit_entries(session=sid)[0]]
    assert actions[-2:] == ["save", "append"]


def test_one_vault_session_per_project_and_session(vault: Vault, store: SealedSessionStore) -> None:
    run(store.append({"project_key": "A", "session_id": "s"}, [entry("a")]))
    run(store.append({"project_key": "B", "session_id": "s"}, [entry("b")]))
    run(store.append({"project_key": "A", "session_id": "s", "subpath": "subagents/agent-1"}, [entry("c")]))
    listed = vault.list()
    assert len(listed) == 2 and all(TAG in s.tags for s in listed)
    assert store.session_id_for({"project_key": "A", "session_id": "s"}) in {s.id for s in listed}
    assert run(store.load({"project_key": "B", "session_id": "s"})) == [entry("b")]
    a = run(store.list_sessions("A"))
    assert [s["session_id"] for s in a] == ["s"] and a[0]["mtime"] > 1e12
    assert run(store.list_sessions("C")) == []
    # Without the SDK no summary is folded: none is listed (the SDK lists by load then).  With
    # it (a venv that has it), the SDK's own fold makes one per session.
    summaries = run(store.list_session_summaries("A"))
    if importlib.util.find_spec("claude_agent_sdk") is None:
        assert summaries == []
    else:
        assert sorted(s["session_id"] for s in summaries) == sorted(
            s["session_id"] for s in run(store.list_sessions("A"))
        )


def test_delete_of_the_main_key_erases_the_session(vault: Vault, store: SealedSessionStore) -> None:
    run(store.append(KEY, [entry("u1")]))
    run(store.append(SUB, [entry("s1")]))
    sid = store.session_id_for(KEY)
    run(store.delete(KEY))
    assert run(store.load(KEY)) is None and run(store.load(SUB)) is None
    assert run(store.list_subkeys(KEY)) == [] and vault.list() == []
    with pytest.raises(SessionNotFound):
        vault.load(sid)
    # Erased: its records no longer open by its id (docs/spec/audit-log.md), the erasure is recorded.
    assert "delete" in [e["action"] for e in vault.audit_entries()[0]]
    run(store.delete(KEY))  # an unknown key is not an error
    run(store.delete(SUB))
    # Stored anew afterwards: nothing of the erased session comes back.
    run(store.append(KEY, [entry("u1")]))
    assert run(store.load(KEY)) == [entry("u1")]


def test_delete_of_a_subpath_removes_only_its_entries(vault: Vault, store: SealedSessionStore) -> None:
    sub2 = {**KEY, "subpath": "subagents/agent-a2"}
    run(store.append(KEY, [entry("u1")]))
    run(store.append(SUB, [entry("s1")]))
    run(store.append(sub2, [entry("s2")]))
    assert sorted(run(store.list_subkeys(KEY))) == ["subagents/agent-a1", "subagents/agent-a2"]
    run(store.delete(SUB))
    assert run(store.load(SUB)) is None
    assert run(store.load(sub2)) == [entry("s2")] and run(store.load(KEY)) == [entry("u1")]
    assert run(store.list_subkeys(KEY)) == ["subagents/agent-a2"]
    # A new version without them: the document read back has none of the subpath's records.
    doc = vault.load(store.session_id_for(KEY))
    assert [r.get("subpath") for r in doc.source_records] == [None, "subagents/agent-a2"]
    # Appending to it again starts it afresh.
    run(store.append(SUB, [entry("s1")]))
    assert run(store.load(SUB)) == [entry("s1")]


def test_a_secret_is_redacted_in_the_vault_and_in_what_is_loaded(vault: Vault, store: SealedSessionStore) -> None:
    run(store.append(KEY, [entry("u1", f"my token is {SECRET}"), entry("u2", "nothing here")]))
    loaded = run(store.load(KEY))
    text = loaded[0]["message"]["content"]
    assert SECRET not in text and "[REDACTED:" in text
    assert loaded[1] == entry("u2", "nothing here")
    assert vault.list()[0].redactions
    for p in vault.path.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes()
    # The redacted entry is still the stored one: a retry of the original is skipped by its uuid.
    run(store.append(KEY, [entry("u1", f"my token is {SECRET}")]))
    assert len(run(store.load(KEY))) == 2


def test_two_appends_at_once_keep_both(vault_path: Path, vault: Vault, provider: KeychainProvider) -> None:
    # Two vault handles (as two processes have): neither's first append hides the other's.
    other = Vault.open(vault_path, key_provider=provider)
    a, b = SealedSessionStore(vault), SealedSessionStore(other)

    async def both() -> None:
        await asyncio.gather(
            *(s.append(KEY, [entry(f"{n}-{i}") for i in range(3)]) for n, s in (("a", a), ("b", b)) for _ in range(3))
        )

    try:
        run(both())
    finally:
        other.close()
    got = [e["uuid"] for e in run(a.load(KEY))]
    assert sorted(got) == sorted(f"{n}-{i}" for n in "ab" for i in range(3))


def test_bad_keys_and_entries_are_refused(store: SealedSessionStore) -> None:
    for key in ({"project_key": "p"}, {"project_key": "p", "session_id": ""}, {**KEY, "subpath": ""}, "p/s"):
        with pytest.raises(InvalidInput):
            run(store.append(key, [entry("u1")]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="entry 2"):
        run(store.append(KEY, [entry("u1"), {"no": "type"}]))
    assert run(store.load(KEY)) is None


def test_the_module_imports_nothing_of_the_sdk() -> None:
    code = (
        "import sys, sessionseal.integrations.claude_agent_sdk as m; "
        "assert not [n for n in sys.modules if n.startswith('claude_agent_sdk')], 'imported'; print(m.TAG)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == TAG


def test_entries_are_mapped_to_messages_that_list_show_and_search_read(vault: Vault, store: SealedSessionStore) -> None:
    reply = {
        "type": "assistant",
        "uuid": "a1",
        "parentUuid": "u1",
        "timestamp": "2026-12-01T10:00:01.000Z",
        "message": {
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "the flux capacitor is fine"}],
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
    }
    run(store.append(KEY, [entry("u1", "check the flux capacitor", timestamp="2026-12-01T10:00:00.000Z")]))
    run(store.append(KEY, [reply, {"type": "summary", "summary": "not a message"}]))
    run(store.append(SUB, [entry("s1", "a sub-agent's prompt")]))
    [summary] = vault.list()
    assert summary.message_count == 2 and summary.models == ["claude-sonnet-4-5"]
    doc = vault.load(summary.id)
    assert [(m.role, m.id) for m in doc.messages] == [("user", "u1"), ("assistant", "a1")]
    [hit] = vault.search("flux capacitor")
    assert hit.id == str(summary.id) and hit.field.startswith("messages[")


_WRITER = """
import asyncio, sys
from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.claude_agent_sdk import SealedSessionStore

name, path = sys.argv[1], sys.argv[2]
key = {"project_key": "p", "session_id": "s"}
with Vault.open(path, key_provider=PassphraseProvider("pw", log2_n=14)) as vault:
    store = SealedSessionStore(vault)
    for i in range(5):
        # Each batch also repeats the other writer's first entry: stored once, whoever is first.
        batch = [{"type": "user", "uuid": f"{name}-{i}"}, {"type": "user", "uuid": "shared"}]
        asyncio.run(store.append(key, batch))
"""


def test_two_processes_appending_to_one_session_keep_every_entry_once(tmp_path: Path) -> None:
    from sessionseal import PassphraseProvider

    path = tmp_path / "v"
    Vault.init(path, key_provider=PassphraseProvider("pw", log2_n=14)).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, n, str(path)]) for n in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Vault.open(path, key_provider=PassphraseProvider("pw", log2_n=14)) as vault:
        got = [e["uuid"] for e in run(SealedSessionStore(vault).load({"project_key": "p", "session_id": "s"}))]
        assert sorted(got) == sorted([*(f"{n}-{i}" for n in "ab" for i in range(5)), "shared"])
        assert vault.verify(read_data=True).ok


def test_an_async_vault_serves_too_and_the_vault_verifies(vault: Vault) -> None:
    from sessionseal import AsyncVault

    store = SealedSessionStore(AsyncVault(vault))
    run(store.append(KEY, [entry("u1")]))
    run(store.append(SUB, [entry("s1")]))
    run(store.delete(SUB))
    assert run(store.load(KEY)) == [entry("u1")]
    assert vault.verify(read_data=True).ok
