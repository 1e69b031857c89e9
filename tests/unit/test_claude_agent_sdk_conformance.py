"""The Claude Agent SDK's own tests of a SessionStore, run on sessionseal's: its shipped
conformance harness, and a resume through its own helpers (without starting the CLI).

The SDK bundles the CLI (about 480 MB): .ci/run installs it in a venv of its own and requires
these tests there (SESSIONSEAL_REQUIRE_SDK); elsewhere they are skipped."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.claude_agent_sdk import SealedSessionStore

pytestmark = pytest.mark.sdk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "claude" / "projects"
SECRET = "ghp_" + "Cf4" * 12


def _sdk(name: str = "claude_agent_sdk") -> ModuleType:
    if os.environ.get("SESSIONSEAL_REQUIRE_SDK"):
        return importlib.import_module(name)
    module: ModuleType = pytest.importorskip(name)
    return module


def _lines(text: str) -> list[Any]:
    """The records of a JSON-lines transcript (this one ends with a torn line: not a record)."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@pytest.fixture
def vaults(tmp_path: Path) -> Any:
    """A fresh vault per call (a passphrase vault with a cheap scrypt), all closed at the end."""
    opened: list[Vault] = []
    counter = itertools.count()

    def make() -> SealedSessionStore:
        v = Vault.init(tmp_path / f"v{next(counter)}", key_provider=PassphraseProvider("pw", log2_n=14))
        opened.append(v)
        return SealedSessionStore(v)

    yield make
    for v in opened:
        v.close()


def test_the_sdk_conformance_harness_passes_with_every_optional_method(vaults: Any) -> None:
    testing = _sdk("claude_agent_sdk.testing")
    asyncio.run(testing.run_session_store_conformance(vaults, skip_optional=frozenset()))


def test_a_resume_through_the_sdk_reads_back_what_was_stored(
    vaults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = _sdk()
    resume = _sdk("claude_agent_sdk._internal.session_resume")
    store = vaults()
    # A real transcript with a sub-agent, replayed into the store by the SDK's own importer.
    src = FIXTURES / "-home-dev-parser"
    sid = "7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47"
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    project = sdk.project_key_for_directory(str(cwd))
    local = tmp_path / "config" / "projects" / project
    shutil.copytree(src, local)
    original = _lines((src / f"{sid}.jsonl").read_text())
    # The SDK's importer takes complete lines only: the torn last line of the fixture goes.
    (local / f"{sid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in original))
    asyncio.run(sdk.import_session_to_store(sid, store, directory=str(cwd)))
    shutil.rmtree(tmp_path / "config")  # only the vault holds it now
    key = {"project_key": project, "session_id": sid}
    stored = asyncio.run(store.load(key))
    # Verbatim, but where a secret was (this transcript holds AWS keys in a prompt).
    assert len(stored) == len(original)
    redacted = [a for a, b in zip(stored, original, strict=True) if a != b]
    assert redacted and all("[REDACTED:" in json.dumps(a) for a in redacted)
    assert asyncio.run(store.list_subkeys(key))

    options = sdk.ClaudeAgentOptions(session_store=store, resume=sid, cwd=str(cwd))
    done = asyncio.run(resume.materialize_resume_session(options))
    assert done is not None and done.resume_session_id == sid
    try:
        written = done.config_dir / "projects" / project / f"{sid}.jsonl"
        assert _lines(written.read_text()) == stored
        # What the CLI would read on --resume, through the SDK's own reader of that layout.
        monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(done.config_dir))
        messages = sdk.get_session_messages(sid, directory=str(cwd))
        assert messages and {m.type for m in messages} == {"user", "assistant"}
        assert sdk.list_subagents(sid, directory=str(cwd))
    finally:
        asyncio.run(done.cleanup())
    # And the SDK's store readers list and read it.
    listed = asyncio.run(sdk.list_sessions_from_store(store, directory=str(cwd)))
    assert [s.session_id for s in listed] == [sid]
    from_store = asyncio.run(sdk.get_session_messages_from_store(store, sid, directory=str(cwd)))
    assert [m.uuid for m in from_store] == [m.uuid for m in messages]


def test_a_resumed_session_sees_redacted_where_a_secret_was(vaults: Any, tmp_path: Path) -> None:
    sdk = _sdk()
    store = vaults()
    cwd = str(tmp_path)
    sid = "3a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
    key = {"project_key": sdk.project_key_for_directory(cwd), "session_id": sid}
    user = {
        "type": "user",
        "uuid": "11111111-1111-4111-8111-111111111111",
        "parentUuid": None,
        "sessionId": sid,
        "timestamp": "2026-12-01T10:00:00.000Z",
        "cwd": cwd,
        "message": {"role": "user", "content": f"deploy with {SECRET}"},
    }
    asyncio.run(store.append(key, [user]))
    [message] = asyncio.run(sdk.get_session_messages_from_store(store, sid, directory=cwd))
    content = json.dumps(message.message)
    assert SECRET not in content and "[REDACTED:" in content
