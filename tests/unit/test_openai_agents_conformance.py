"""The OpenAI Agents SDK driving sessionseal's Session: its protocol check, the behaviours its
own session tests (tests/memory/test_session.py in its repository) check of its SQLiteSession,
and Runner.run and Runner.run_streamed turns on a model of our own that resume a conversation
from the vault.

The SDK's session tests are written against its SQLiteSession and its repository's test
helpers (tests/fake_model.py, not shipped in the wheel), so they cannot be pointed at another
store: their checks are restated here.  .ci/run installs the SDK in a venv of its own and
requires these tests there (SESSIONSEAL_REQUIRE_SDK); elsewhere they are skipped."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.openai_agents import SealedSession

pytestmark = pytest.mark.sdk

SECRET = "ghp_" + "Rq2" * 12


def _sdk(name: str = "agents") -> ModuleType:
    required = os.environ.get("SESSIONSEAL_REQUIRE_SDK")
    module = importlib.import_module(name) if required else pytest.importorskip(name)
    # No trace export: these tests never reach the network.
    importlib.import_module("agents").set_tracing_disabled(True)
    return module


def _open(path: Path) -> Vault:
    provider = PassphraseProvider("pw", log2_n=14)
    if path.exists():
        return Vault.open(path, key_provider=provider)
    return Vault.init(path, key_provider=provider)


@pytest.fixture
def vault_file(tmp_path: Path) -> Path:
    return tmp_path / "vault"


def _scripted_model(replies: list[str]) -> Any:
    """A ``Model`` that answers each turn with the next of *replies* and remembers the input it
    was given (the SDK's repository has a FakeModel for this, not shipped in its wheel)."""
    agents = _sdk()
    responses = _sdk("openai.types.responses")

    class Scripted(agents.Model):  # type: ignore[misc,name-defined,unused-ignore]
        def __init__(self) -> None:
            self.inputs: list[Any] = []

        def _reply(self, input: Any) -> Any:
            self.inputs.append(input)
            text = replies[len(self.inputs) - 1]
            return responses.ResponseOutputMessage(
                id=f"msg_{len(self.inputs)}",
                type="message",
                role="assistant",
                status="completed",
                content=[responses.ResponseOutputText(type="output_text", text=text, annotations=[])],
            )

        async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> Any:
            return agents.ModelResponse(output=[self._reply(input)], usage=agents.Usage(), response_id=None)

        async def stream_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> AsyncIterator[Any]:
            # The whole reply in the stream's last event, as a model that streams no deltas.
            response = responses.Response(
                id=f"resp_{len(self.inputs) + 1}",
                created_at=0,
                model="scripted",
                object="response",
                output=[self._reply(input)],
                tool_choice="none",
                tools=[],
                parallel_tool_calls=False,
            )
            yield responses.ResponseCompletedEvent(type="response.completed", response=response, sequence_number=0)

    return Scripted()


def test_it_is_an_sdk_session(vault_file: Path) -> None:
    memory = _sdk("agents.memory")
    v = _open(vault_file)
    try:
        s = SealedSession("x", v)
        assert isinstance(s, memory.Session)  # the runtime-checkable protocol
        assert s.session_id == "x" and s.session_settings is None
    finally:
        v.close()


def test_the_sdk_session_tests_behaviours(vault_file: Path) -> None:
    # test_sqlite_session_memory_direct, _pop_item, _pop_different_sessions, _get_items_with_limit.
    _sdk()
    v = _open(vault_file)

    async def go() -> None:
        s = SealedSession("direct_test", v)
        await s.add_items([{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"}])
        got = await s.get_items()
        assert [(i["role"], i["content"]) for i in got] == [("user", "Hello"), ("assistant", "Hi there!")]
        await s.clear_session()
        assert await s.get_items() == []

        p = SealedSession("pop_test", v)
        assert await p.pop_item() is None
        items = [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there!"},
            {"role": "user", "content": "How are you?"},
        ]
        await p.add_items(items)
        assert [await p.pop_item() for _ in range(4)] == [*reversed(items), None]
        assert await p.get_items() == []

        one, two = SealedSession("session_1", v), SealedSession("session_2", v)
        await one.add_items([{"role": "user", "content": "Session 1 message"}])
        await two.add_items([{"role": "user", "content": f"Session 2 message {n}"} for n in (1, 2)])
        assert (await two.pop_item())["content"] == "Session 2 message 2"
        assert [i["content"] for i in await one.get_items()] == ["Session 1 message"]
        assert [i["content"] for i in await two.get_items()] == ["Session 2 message 1"]

        c = SealedSession("count_test", v)
        six = [{"role": r, "content": f"{r} {n}"} for n in (1, 2, 3) for r in ("user", "assistant")]
        await c.add_items(six)
        assert await c.get_items() == six and await c.get_items(limit=2) == six[4:]
        assert await c.get_items(limit=4) == six[2:]
        assert await c.get_items(limit=10) == six
        assert await c.get_items(limit=0) == []

    try:
        asyncio.run(go())
    finally:
        v.close()


def test_session_settings_limit_is_what_the_runner_reads(vault_file: Path) -> None:
    agents = _sdk()
    v = _open(vault_file)
    try:
        s = SealedSession("limited", v, session_settings=agents.SessionSettings(limit=1))
        asyncio.run(s.add_items([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]))
        assert asyncio.run(s.get_items()) == [{"role": "user", "content": "b"}]
        model = _scripted_model(["ok"])
        agent = agents.Agent(name="t", model=model)
        asyncio.run(agents.Runner.run(agent, "c", session=s))
        assert [i["content"] for i in model.inputs[0]] == ["b", "c"]
    finally:
        v.close()


@pytest.mark.parametrize("method", ["run", "run_sync"])
def test_a_conversation_resumes_from_the_vault(vault_file: Path, method: str) -> None:
    agents = _sdk()
    model = _scripted_model(["San Francisco", "California", "cats"])
    agent = agents.Agent(name="test", model=model)

    def turn(session: Any, text: str) -> Any:
        if method == "run":
            return asyncio.run(agents.Runner.run(agent, text, session=session))
        # run_sync runs on the thread's event loop: a loop of its own, closed after (as the
        # SDK's own tests do), not one left open for the interpreter to collect.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return agents.Runner.run_sync(agent, text, session=session)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # The first turn, then the vault is closed: the second is another process's, in effect.
    v = _open(vault_file)
    try:
        first = turn(SealedSession("golden-gate", v), f"Which city is the Golden Gate in? my token is {SECRET}")
        assert first.final_output == "San Francisco"
    finally:
        v.close()
    v = _open(vault_file)
    try:
        session = SealedSession("golden-gate", v)
        second = turn(session, "Which state is it in?")
        assert second.final_output == "California"
        # The model saw the first turn, read back from the vault, redacted where the secret was.
        seen = model.inputs[1]
        assert [i.get("role") for i in seen] == ["user", "assistant", "user"]
        assert "[REDACTED:" in seen[0]["content"] and SECRET not in str(seen)
        assert seen[1]["content"][0]["text"] == "San Francisco"
        stored = asyncio.run(session.get_items())
        assert len(stored) == 4 and stored[-1]["content"][0]["text"] == "California"
        # Another session id is another conversation: it sees nothing of this one.
        turn(SealedSession("other", v), "What do I like?")
        assert [i.get("content") for i in model.inputs[2]] == ["What do I like?"]
        # The vault lists and searches it like any session.
        assert {s.id for s in v.list()} == {session.vault_id, SealedSession.vault_id_for("other")}
        assert {h.id for h in v.search("California")} == {str(session.vault_id)}
    finally:
        v.close()


def test_a_streamed_conversation_resumes_from_the_vault(vault_file: Path) -> None:
    # Runner.run_streamed: the SDK stores the turn's items when the stream is consumed.
    agents = _sdk()
    model = _scripted_model(["San Francisco", "California"])
    agent = agents.Agent(name="test", model=model)

    def turn(session: Any, text: str) -> Any:
        async def go() -> Any:
            result = agents.Runner.run_streamed(agent, text, session=session)
            kinds = {event.type async for event in result.stream_events()}
            assert "run_item_stream_event" in kinds
            return result

        return asyncio.run(go())

    v = _open(vault_file)
    try:
        assert (
            turn(SealedSession("streamed", v), f"Where is the bridge? token {SECRET}").final_output == "San Francisco"
        )
    finally:
        v.close()
    v = _open(vault_file)
    try:
        session = SealedSession("streamed", v)
        assert turn(session, "Which state?").final_output == "California"
        seen = model.inputs[1]
        assert [i.get("role") for i in seen] == ["user", "assistant", "user"]
        assert "[REDACTED:" in seen[0]["content"] and SECRET not in str(seen)
        assert [i.get("role") for i in asyncio.run(session.get_items())] == ["user", "assistant"] * 2
    finally:
        v.close()
