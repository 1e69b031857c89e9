"""Google ADK's session service in a vault (sessionseal.integrations.google_adk;
docs/integrations/google-adk.md): what this service adds to ADK's contract
(test_google_adk_conformance.py), with ADK's own Runner, service registry and ``adk`` CLI
driving it.  Needs google-adk (the SDK venv of .ci/run, SESSIONSEAL_REQUIRE_SDK); skipped
elsewhere."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import Field

from sessionseal import PassphraseProvider, Vault, _container
from sessionseal._query import ListQuery
from sessionseal.errors import IntegrityError, InvalidInput, SessionNotFound

pytestmark = pytest.mark.sdk

SECRET = "ghp_" + "Gk4" * 12
PASSPHRASE = "pw"


def _sdk(name: str) -> ModuleType:
    if os.environ.get("SESSIONSEAL_REQUIRE_SDK"):
        return importlib.import_module(name)
    module: ModuleType = pytest.importorskip(name)
    return module


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _open(path: Path) -> Vault:
    provider = PassphraseProvider(PASSPHRASE, log2_n=14)
    return Vault.open(path, key_provider=provider) if path.exists() else Vault.init(path, key_provider=provider)


@pytest.fixture
def adk() -> ModuleType:
    _sdk("google.adk")
    return _sdk("sessionseal.integrations.google_adk")


@pytest.fixture
def vault_file(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_file: Path) -> Iterator[Vault]:
    v = _open(vault_file)
    try:
        yield v
    finally:
        v.close()


def text_event(author: str, text: str, **kwargs: Any) -> Any:
    t = _sdk("google.genai.types")
    role = "user" if author == "user" else "model"
    content = t.Content(role=role, parts=[t.Part(text=text)])
    return _sdk("google.adk.events.event").Event(author=author, invocation_id="inv", content=content, **kwargs)


def test_it_is_an_adk_session_service(adk: ModuleType, vault: Vault) -> None:
    base = _sdk("google.adk.sessions.base_session_service")
    assert isinstance(adk.SealedSessionService(vault), base.BaseSessionService)


def test_one_vault_session_per_adk_session_tagged_for_list_filters(adk: ModuleType, vault: Vault) -> None:
    service = adk.SealedSessionService(vault)
    s = run(service.create_session(app_name="weather", user_id="ada", session_id="s1", state={"city": "Oslo"}))
    run(service.create_session(app_name="weather", user_id="bob", session_id="s1"))
    run(service.create_session(app_name="news", user_id="ada", session_id="s2"))
    run(service.append_event(s, text_event("user", "is it raining?")))
    sid = adk.SealedSessionService.session_id_for("weather", "ada", "s1")
    assert {x.id for x in vault.list(ListQuery(tags=("adk-app:weather", "adk-user:ada")))} == {sid}
    assert len(vault.list(ListQuery(tags=("adk-app:weather",)))) == 2
    assert len(vault.list(ListQuery(tags=("google-adk",)))) == 3
    doc = json.loads(vault.load_json(sid))
    assert {k: doc["source"][k] for k in ("tool", "app_name", "user_id", "session_id", "state", "events")} == {
        "tool": "google-adk",
        "app_name": "weather",
        "user_id": "ada",
        "session_id": "s1",
        "state": {"city": "Oslo"},
        "events": 1,
    }
    # The event is a source record, verbatim; its text a message that show and search read.
    assert doc["source_records"][0]["record"]["content"]["parts"] == [{"text": "is it raining?"}]
    assert {h.id for h in vault.search("raining")} == {str(sid)}
    # A name that is no tag (blanks, too long) is still listed: the source decides.
    long_user = "user with blanks " + "x" * 60
    run(service.create_session(app_name="weather", user_id=long_user, session_id="s3"))
    assert [x.id for x in run(service.list_sessions(app_name="weather", user_id=long_user)).sessions] == ["s3"]


def test_app_and_user_state_live_in_state_sessions(adk: ModuleType, vault: Vault) -> None:
    service = adk.SealedSessionService(vault)
    state = {"app:model": "m1", "user:lang": "nb", "turns": 0}
    run(service.create_session(app_name="weather", user_id="ada", session_id="s1", state=state))
    app_sid = adk.SealedSessionService.state_id_for("weather")
    user_sid = adk.SealedSessionService.state_id_for("weather", "ada")
    assert json.loads(vault.load_json(app_sid))["source"]["state"] == {"model": "m1"}
    assert json.loads(vault.load_json(user_sid))["source"]["state"] == {"lang": "nb"}
    # Deleting a session crypto-erases it; the state it shares stays.
    run(service.delete_session(app_name="weather", user_id="ada", session_id="s1"))
    with pytest.raises(SessionNotFound):
        vault.load(adk.SealedSessionService.session_id_for("weather", "ada", "s1"))
    assert "delete" in [e["action"] for e in vault.audit_entries()[0]]
    assert run(service.get_user_state(app_name="weather", user_id="ada")) == {"lang": "nb"}
    # A user's state is erased as any session is: Vault.delete of its state session.
    vault.delete(user_sid)
    assert run(service.get_user_state(app_name="weather", user_id="ada")) == {}


def test_a_secret_is_redacted_in_the_vault_and_on_resume(adk: ModuleType, vault: Vault, vault_file: Path) -> None:
    service = adk.SealedSessionService(vault)
    s = run(service.create_session(app_name="a", user_id="u", session_id="s", state={"token": SECRET}))
    run(service.append_event(s, text_event("user", f"deploy with {SECRET}")))
    got = run(service.get_session(app_name="a", user_id="u", session_id="s"))
    assert "[REDACTED:" in got.events[0].content.parts[0].text and "[REDACTED:" in got.state["token"]
    assert SECRET not in got.model_dump_json()
    for f in vault_file.rglob("*"):
        assert not f.is_file() or SECRET.encode() not in f.read_bytes()
    # Nothing redacted: what was appended comes back exactly.
    clean = text_event("assistant", "it is dry", timestamp=got.last_update_time + 1)
    run(service.append_event(got, clean))
    assert run(service.get_session(app_name="a", user_id="u", session_id="s")).events[-1] == clean


def test_a_field_the_sanitizer_made_invalid_is_left_out_not_the_event(adk: ModuleType) -> None:
    # A bytes field's base64 text that a secret rule rewrote no longer decodes: the event
    # still loads, without that field (the vault keeps the record as stored).
    record: dict[str, Any] = {
        "author": "user",
        "invocation_id": "i",
        "id": "e1",
        "timestamp": 1.0,
        "content": {
            "role": "user",
            "parts": [{"inline_data": {"data": "[REDACTED:x:ab12]", "mime_type": "image/png"}}, {"text": "hi"}],
        },
    }
    event = adk._event(record)
    assert (
        event.content.parts[0].inline_data.data is None and event.content.parts[0].inline_data.mime_type == "image/png"
    )
    assert event.content.parts[1].text == "hi" and event.id == "e1"
    assert record["content"]["parts"][0]["inline_data"]["data"] == "[REDACTED:x:ab12]"  # not the caller's copy
    with pytest.raises(InvalidInput):
        adk._event(["not", "an", "event"])  # nothing to leave out makes it one


def test_a_window_of_recent_events_reads_the_latest_groups_alone(adk: ModuleType, vault: Vault) -> None:
    config = _sdk("google.adk.sessions.base_session_service").GetSessionConfig
    service = adk.SealedSessionService(vault)
    s = run(service.create_session(app_name="a", user_id="u", session_id="s", state={"k": 1}))
    for i in range(6):
        run(service.append_event(s, text_event("user", f"e{i}", timestamp=1000.0 + i)))
    sid = adk.SealedSessionService.session_id_for("a", "u", "s")
    full = run(service.get_session(app_name="a", user_id="u", session_id="s"))
    for n in (1, 2, 6, 7):
        got = run(service.get_session(app_name="a", user_id="u", session_id="s", config=config(num_recent_events=n)))
        assert got.events == full.events[-n:] and got.state == full.state
        assert got.last_update_time == full.last_update_time
    # The marker of a window is the version read: appending through it is not stale.
    window = run(service.get_session(app_name="a", user_id="u", session_id="s", config=config(num_recent_events=2)))
    run(service.append_event(window, text_event("assistant", "e6", timestamp=1006.0)))
    # Damage the first event's group: a full read fails closed; a window of the latest does
    # not decrypt it.
    path = vault.path / "sessions" / (vault.parts.keys.file_name(sid) + ".sst")
    raw = bytearray(path.read_bytes())
    with vault.parts.ctx.sessions.reader(path.name) as (read_at, size):
        _, frames, _ = _container._walk(read_at, size, vault.vault_id, sid)
    offset, length, _ = frames[2]  # the first append group's EVENTS frame
    raw[offset + length - 8] ^= 1
    path.write_bytes(bytes(raw))
    got = run(service.get_session(app_name="a", user_id="u", session_id="s", config=config(num_recent_events=3)))
    assert [e.content.parts[0].text for e in got.events] == ["e4", "e5", "e6"]
    got = run(
        service.get_session(
            app_name="a", user_id="u", session_id="s", config=config(num_recent_events=3, after_timestamp=1005.0)
        )
    )
    assert [e.content.parts[0].text for e in got.events] == ["e5", "e6"]
    with pytest.raises(IntegrityError):
        run(service.get_session(app_name="a", user_id="u", session_id="s"))


def test_an_append_is_a_vault_append_not_a_rewrite(adk: ModuleType, vault: Vault) -> None:
    service = adk.SealedSessionService(vault)
    s = run(service.create_session(app_name="a", user_id="u", session_id="s"))
    run(service.append_event(s, text_event("user", "first")))
    path = (
        vault.path
        / "sessions"
        / (vault.parts.keys.file_name(adk.SealedSessionService.session_id_for("a", "u", "s")) + ".sst")
    )
    before = path.read_bytes()
    run(service.append_event(s, text_event("assistant", "x" * 5000)))
    after = path.read_bytes()
    assert after.startswith(before) and len(after) - len(before) < 5000
    actions = [
        e["action"] for e in vault.audit_entries(session=adk.SealedSessionService.session_id_for("a", "u", "s"))[0]
    ]
    assert actions.count("save") == 1 and actions.count("append") == 2


def test_bad_arguments_are_refused(adk: ModuleType, vault: Vault) -> None:
    service = adk.SealedSessionService(vault)
    with pytest.raises(InvalidInput):
        run(service.create_session(app_name="", user_id="u"))
    with pytest.raises(InvalidInput):
        run(service.get_session(app_name="a", user_id=None, session_id="s"))
    with pytest.raises(InvalidInput):
        run(service.list_sessions(app_name=""))
    assert vault.list() == []


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("sessionseal://", None),
        ("sessionseal:///", None),
        ("sessionseal:///srv/vault", "/srv/vault"),
        ("sessionseal://rel/vault", "rel/vault"),
        ("sessionseal://~/v%20x", os.path.expanduser("~/v x")),
    ],
)
def test_uri_names_the_vault(adk: ModuleType, monkeypatch: pytest.MonkeyPatch, uri: str, path: str | None) -> None:
    monkeypatch.delenv("SESSIONSEAL_VAULT", raising=False)
    assert adk._path_of(uri) == path
    monkeypatch.setenv("SESSIONSEAL_VAULT", "/from/env")
    assert adk._path_of(uri) == (path or "/from/env")


@pytest.mark.parametrize("uri", ["sqlite:///x", "sessionseal:///v?passphrase=pw", "sessionseal:///v#k"])
def test_a_bad_uri_is_refused(adk: ModuleType, uri: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        adk.SealedSessionService(uri=uri)
    assert "pw" not in str(caught.value)


def test_services_yaml_registers_the_scheme_for_adk(
    adk: ModuleType, tmp_path: Path, vault_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `adk web` / `adk api_server` do with the agents dir and --session_service_uri.
    registry = _sdk("google.adk.cli.service_registry")
    factory = _sdk("google.adk.cli.utils.service_factory")
    _open(vault_file).close()
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "services.yaml").write_text(_SERVICES_YAML)
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the agents dir first
    registry.load_services_module(str(agents))
    service = factory.create_session_service_from_options(
        base_dir=agents, session_service_uri=f"sessionseal://{vault_file}"
    )
    assert isinstance(service, adk.SealedSessionService)
    s = run(service.create_session(app_name="a", user_id="u", session_id="s"))
    assert run(service.get_session(app_name="a", user_id="u", session_id="s")) == s
    assert service.vault.path == vault_file.resolve()
    run(service.close())  # the vault it opened; the next use opens it again
    assert run(service.get_session(app_name="a", user_id="u", session_id="s")) == s
    run(service.close())


def test_register_adds_the_scheme_from_python(
    adk: ModuleType, vault_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _sdk("google.adk.cli.service_registry")
    _open(vault_file).close()
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASSPHRASE)
    adk.register("sealed")
    service = registry.get_service_registry().create_session_service(f"sealed://{vault_file}", agents_dir="x")
    assert isinstance(service, adk.SealedSessionService)
    assert run(service.list_sessions(app_name="a")).sessions == []
    run(service.close())


_SERVICES_YAML = """\
services:
  - scheme: sessionseal
    type: session
    class: sessionseal.integrations.google_adk.SealedSessionService
"""


def _scripted_model() -> Any:
    """A model that answers each turn with what it was sent: the number of contents and their
    text (ADK's repository has a MockModel for this, not shipped in its wheel)."""
    base = _sdk("google.adk.models.base_llm")
    response = _sdk("google.adk.models.llm_response")
    t = _sdk("google.genai.types")

    class Scripted(base.BaseLlm):  # type: ignore[misc,name-defined,unused-ignore]
        model: str = "scripted"
        seen: list[Any] = Field(default_factory=list)

        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:
            self.seen.append(llm_request.contents)
            texts = [p.text for c in llm_request.contents for p in c.parts or [] if p.text]
            text = f"{len(llm_request.contents)} contents: " + " | ".join(texts)
            yield response.LlmResponse(content=t.Content(role="model", parts=[t.Part(text=text)]))

    return Scripted()


def test_a_runner_conversation_resumes_from_the_vault(adk: ModuleType, vault_file: Path) -> None:
    runners = _sdk("google.adk.runners")
    agents = _sdk("google.adk.agents")
    t = _sdk("google.genai.types")
    model = _scripted_model()

    def turn(vault: Vault, text: str, state_delta: dict[str, Any] | None = None) -> list[Any]:
        runner = runners.Runner(
            app_name="weather",
            agent=agents.LlmAgent(name="assistant", model=model, instruction="Be brief."),
            session_service=adk.SealedSessionService(vault),
            auto_create_session=True,
        )

        async def go() -> list[Any]:
            message = t.Content(role="user", parts=[t.Part(text=text)])
            run = runner.run_async(user_id="ada", session_id="s1", new_message=message, state_delta=state_delta)
            return [e async for e in run]

        return list(run(go()))

    # Each turn on a vault opened anew: the second is another process's, in effect.
    v = _open(vault_file)
    try:
        first = turn(v, f"Which city is rainy? my token is {SECRET}", {"user:units": "metric", "temp:scratch": 1})
        assert first[-1].content.parts[0].text.startswith("1 contents:")
    finally:
        v.close()
    v = _open(vault_file)
    try:
        second = turn(v, "And tomorrow?")
        # The model saw the first turn, read back from the vault, redacted where the secret was.
        seen = " ".join(p.text for c in model.seen[1] for p in c.parts if p.text)
        assert second[-1].content.parts[0].text.startswith("3 contents:")
        assert "[REDACTED:" in seen and SECRET not in seen and "1 contents:" in seen
        service = adk.SealedSessionService(v)
        stored = run(service.get_session(app_name="weather", user_id="ada", session_id="s1"))
        assert [e.author for e in stored.events] == ["user", "assistant", "user", "assistant"]
        assert stored.state == {"user:units": "metric"}
        assert run(service.get_user_state(app_name="weather", user_id="ada")) == {"units": "metric"}
    finally:
        v.close()


_AGENT_PY = """
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_response import LlmResponse
from google.genai import types


class Echo(BaseLlm):
    model: str = "echo"

    async def generate_content_async(self, llm_request, stream=False):
        texts = [p.text for c in llm_request.contents for p in c.parts or [] if p.text]
        text = f"{len(llm_request.contents)} contents: " + " | ".join(texts)
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


root_agent = LlmAgent(name="echo_agent", model=Echo())
"""


def test_adk_run_resumes_a_session_from_the_vault_across_processes(
    adk: ModuleType, tmp_path: Path, vault_file: Path
) -> None:
    # ADK's own CLI, twice, in two processes, on one vault named by --session_service_uri.
    agent = tmp_path / "agents" / "echo_agent"
    agent.mkdir(parents=True)
    (agent / "__init__.py").write_text("from . import agent\n")
    (agent / "agent.py").write_text(textwrap.dedent(_AGENT_PY))
    (agent / "services.yaml").write_text(_SERVICES_YAML)  # `adk run` reads the agent's folder
    _open(vault_file).close()
    env = {**os.environ, "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "ADK_DISABLE_LOAD_DOTENV": "1", "HOME": str(tmp_path)}
    uri = f"--session_service_uri=sessionseal://{vault_file}"
    for query in (f"remember {SECRET}", "what did I say?"):
        out = subprocess.run(
            [sys.executable, "-m", "google.adk.cli", "run", uri, "--session_id", "s1", str(agent), query],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr[-2000:]
    v = _open(vault_file)
    try:
        service = adk.SealedSessionService(v)
        [listed] = run(service.list_sessions(app_name="echo_agent")).sessions
        stored = run(service.get_session(app_name="echo_agent", user_id=listed.user_id, session_id="s1"))
        texts = [e.content.parts[0].text for e in stored.events]
        assert len(texts) == 4 and texts[3].startswith("3 contents:") and "[REDACTED:" in texts[3]
        assert SECRET not in " ".join(texts)
    finally:
        v.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    # Only ever http://127.0.0.1:<port> of the server this test started.
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def test_adk_web_keeps_its_sessions_in_the_vault(adk: ModuleType, tmp_path: Path, vault_file: Path) -> None:
    # `adk web --session_service_uri=sessionseal://...` with services.yaml in the agents dir:
    # no code. A session made and run through its HTTP API lands in the vault.
    agents = tmp_path / "agents"
    agent = agents / "echo_agent"
    agent.mkdir(parents=True)
    (agent / "__init__.py").write_text("from . import agent\n")
    (agent / "agent.py").write_text(textwrap.dedent(_AGENT_PY))
    (agents / "services.yaml").write_text(_SERVICES_YAML)
    _open(vault_file).close()
    port = _free_port()
    env = {**os.environ, "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "ADK_DISABLE_LOAD_DOTENV": "1", "HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "google.adk.cli", "web", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*argv, f"--session_service_uri=sessionseal://{vault_file}", str(agents)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to 60 s for the server to listen; it never needs a given speed
            if server.poll() is not None:
                pytest.fail(f"adk web exited: {server.stderr.read()[-2000:] if server.stderr else ''}")
            try:
                _http("GET", f"{base}/list-apps")
                break
            except OSError:
                time.sleep(0.1)
        created = _http("POST", f"{base}/apps/echo_agent/users/ada/sessions", {"state": {"user:lang": "nb"}})
        sid = created["id"]
        message = {"role": "user", "parts": [{"text": f"hello {SECRET}"}]}
        events = _http(
            "POST",
            f"{base}/run",
            {"app_name": "echo_agent", "user_id": "ada", "session_id": sid, "new_message": message},
        )
        assert events[-1]["content"]["parts"][0]["text"].startswith("1 contents:")
        listed = _http("GET", f"{base}/apps/echo_agent/users/ada/sessions")
        assert [s["id"] for s in listed] == [sid]
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=60)
        if server.stderr is not None:
            server.stderr.close()
    v = _open(vault_file)
    try:
        service = adk.SealedSessionService(v)
        stored = run(service.get_session(app_name="echo_agent", user_id="ada", session_id=sid))
        assert [e.author for e in stored.events] == ["user", "echo_agent"]
        assert "[REDACTED:" in stored.events[0].content.parts[0].text and stored.state == {"user:lang": "nb"}
    finally:
        v.close()


_WRITER = """
import asyncio, sys
from sessionseal import PassphraseProvider, Vault
from sessionseal.integrations.google_adk import SealedSessionService
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

name, path = sys.argv[1], sys.argv[2]

async def main(service):
    try:  # both processes create it: one of them wins, under the session's lock
        await service.create_session(app_name="a", user_id="shared", session_id="shared")
    except AlreadyExistsError:
        pass
    mine = await service.create_session(app_name="a", user_id=name, session_id="own")
    for i in range(6):
        delta = {"user:" + name: i, "app:" + name: i, "n" + name: i}
        await service.append_event(mine, Event(author=name, invocation_id=f"{name}{i}", actions=EventActions(state_delta=delta)))
        while True:  # the shared session: read, append; a stale copy is read again
            s = await service.get_session(app_name="a", user_id="shared", session_id="shared")
            try:
                await service.append_event(s, Event(author=name, invocation_id=f"{name}{i}"))
                break
            except StaleSessionError:
                continue

with Vault.open(path, key_provider=PassphraseProvider("pw", log2_n=14)) as vault:
    asyncio.run(main(SealedSessionService(vault)))
"""


def test_two_processes_write_one_vault(adk: ModuleType, vault_file: Path) -> None:
    _open(vault_file).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, n, str(vault_file)]) for n in ("p", "q")]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    v = _open(vault_file)
    try:
        service = adk.SealedSessionService(v)
        shared = run(service.get_session(app_name="a", user_id="shared", session_id="shared"))
        assert sorted(e.invocation_id for e in shared.events) == sorted(f"{n}{i}" for n in "pq" for i in range(6))
        for n in "pq":
            own = run(service.get_session(app_name="a", user_id=n, session_id="own"))
            assert [e.invocation_id for e in own.events] == [f"{n}{i}" for i in range(6)]
            assert own.state == {f"n{n}": 5, f"user:{n}": 5, "app:p": 5, "app:q": 5}
        assert len(run(service.list_sessions(app_name="a")).sessions) == 3
    finally:
        v.close()
