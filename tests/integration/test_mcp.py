"""``sessionseal mcp serve`` end to end (issue 23): the SDK's own client over a real stdio
subprocess (``python -m sessionseal mcp serve``): the tools and their annotations, each tool, the
caps, scoping by the client's roots, ``--all``, the private tag, a locked keychain answering with a
tool error within seconds, and the audit records (client, ids, never the query)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import FileUrl

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.session import ListRootsFnT
from mcp.client.stdio import stdio_client

from sessionseal import PassphraseProvider, Vault
from tests._infra.keychain import SecretService
from tests.integration._cli import SRC, sessionseal

PASSPHRASE = "mcp-test-passphrase-long-enough"
WORD = "zebracorn"  # the searched word: must never reach the audit log
PROJ, OTHER = "/home/dev/proj", "/home/dev/other"
BIG = 9_000  # characters of one tool output (over the 2,000 cap)
CLIENT = types.Implementation(name="test-agent", version="9.8.7")


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("mcp") / "vault"
    v = Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))  # scrypt floor: each server opens it
    ids = {
        "proj": v.save(
            {
                "title": "fix the parser",
                "workspace": PROJ,
                "messages": [
                    {"role": "user", "content": f"why does the {WORD} test fail?"},
                    {"role": "assistant", "content": [{"type": "tool_result", "content": "y" * BIG}]},
                    *({"role": "assistant", "content": f"step {n}"} for n in range(30)),
                ],
            }
        ),
        "sub": v.save({"title": "in a subdirectory", "workspace": PROJ + "/sub", "messages": []}),
        "private": v.save(
            {
                "title": "my diary",
                "workspace": PROJ,
                "tags": ["private"],
                "messages": [{"role": "user", "content": WORD}],
            }
        ),
        "other": v.save({"title": "elsewhere", "workspace": OTHER, "messages": [{"role": "user", "content": WORD}]}),
    }
    v.close()
    return {"path": path, "ids": {k: str(i) for k, i in ids.items()}}


def _env(path: Path, **extra: str) -> dict[str, str]:
    return {"SESSIONSEAL_VAULT": str(path), "PYTHONPATH": str(SRC), "LANG": "C.UTF-8", **extra}


def _talk(
    env: dict[str, str], args: list[str], fn: Callable[[ClientSession], Awaitable[Any]], roots: list[str] | None
) -> Any:
    """Start the server as an agent does, shake hands (advertising *roots*), run *fn*."""

    async def list_roots(_ctx: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl(f"file://{r}")) for r in roots or []])

    callback = None if roots is None else cast("ListRootsFnT", list_roots)

    async def main() -> Any:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "sessionseal", "mcp", "serve", *args], env=env
        )
        with open(os.devnull, "w") as devnull:
            async with (
                stdio_client(params, errlog=devnull) as (r, w),
                ClientSession(r, w, list_roots_callback=callback, client_info=CLIENT) as s,
            ):
                await s.initialize()
                return await fn(s)

    return asyncio.run(main())


async def _call(s: ClientSession, name: str, /, **args: Any) -> types.CallToolResult:
    return await s.call_tool(name, args)


def test_every_tool_is_read_only_and_says_history_is_untrusted(vault: dict[str, Any]) -> None:
    async def fn(s: ClientSession) -> Any:
        return (await s.list_tools()).tools

    tools = _talk(_env(vault["path"], SESSIONSEAL_PASSPHRASE=PASSPHRASE), [], fn, [PROJ])
    assert sorted(t.name for t in tools) == [
        "get_session",
        "latest_session",
        "list_sessions",
        "resume_hint",
        "search_sessions",
    ]
    for t in tools:
        a = t.annotations
        assert a is not None
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
            True,
            False,
            True,
            False,
        )
        assert "untrusted data" in (t.description or "") and "prompt injection" in (t.description or "")


def test_tools_serve_the_roots_page_and_cap_and_never_the_private_tag(vault: dict[str, Any]) -> None:
    ids = vault["ids"]

    async def fn(s: ClientSession) -> dict[str, Any]:
        out = {
            "search": await _call(s, "search_sessions", query=WORD),
            "list": await _call(s, "list_sessions"),
            "latest": await _call(s, "latest_session"),
            "page1": await _call(s, "get_session", session_id=ids["proj"], max_messages=5),
            "page2": await _call(s, "get_session", session_id=ids["proj"], offset=2, max_chars=1000),
            "private": await _call(s, "get_session", session_id=ids["private"]),
            "other": await _call(s, "get_session", session_id=ids["other"]),
            "hint": await _call(s, "resume_hint", session_id=ids["proj"], tool="codex"),
            "hint_gemini": await _call(s, "resume_hint", session_id=ids["proj"], tool="gemini"),
            "hint_private": await _call(s, "resume_hint", session_id=ids["private"]),
            "too_many": await _call(s, "list_sessions", limit=51),
        }
        return out

    r = _talk(_env(vault["path"], SESSIONSEAL_PASSPHRASE=PASSPHRASE), [], fn, [PROJ])
    search = r["search"].structured_content
    assert [h["id"] for h in search["hits"]] == [ids["proj"]]  # not the private one, not another root's
    assert WORD in search["hits"][0]["snippet"] and search["scope"] == "roots"
    assert {x["id"] for x in r["list"].structured_content["sessions"]} == {ids["proj"], ids["sub"]}
    assert r["latest"].structured_content["session"]["id"] in (ids["proj"], ids["sub"])
    page1 = r["page1"].structured_content
    assert page1["total_messages"] == 32 and page1["next_offset"] == 5 and len(page1["messages"]) == 5
    cut = page1["messages"][1]["text"]
    assert cut.startswith("[tool output] " + "y" * 2000) and f"{BIG - 2000} more characters of tool output cut" in cut
    page2 = r["page2"].structured_content
    assert page2["messages"][0]["index"] == 2 and sum(len(m["text"]) for m in page2["messages"]) <= 1000
    for refused in ("private", "other", "hint_private"):
        assert r[refused].is_error, refused
        assert "no session with that id in this server's scope" in r[refused].content[0].text
    assert r["hint"].structured_content["commands"] == {"codex": f"sessionseal resume {ids['proj']} --into codex"}
    hint = r["hint_gemini"].structured_content["commands"]
    assert hint == {"gemini": f"sessionseal resume {ids['proj']} --into gemini"}
    assert r["too_many"].is_error and "limit takes 1 to 50" in r["too_many"].content[0].text


def test_all_widens_the_scope_but_never_to_the_private_tag(vault: dict[str, Any]) -> None:
    ids = vault["ids"]

    async def fn(s: ClientSession) -> dict[str, Any]:
        return {
            "search": await _call(s, "search_sessions", query=WORD),
            "other": await _call(s, "get_session", session_id=ids["other"]),
            "private": await _call(s, "get_session", session_id=ids["private"]),
        }

    r = _talk(_env(vault["path"], SESSIONSEAL_PASSPHRASE=PASSPHRASE), ["--all"], fn, [PROJ])
    assert {h["id"] for h in r["search"].structured_content["hits"]} == {ids["proj"], ids["other"]}
    assert not r["other"].is_error and r["private"].is_error


def test_a_client_without_roots_is_scoped_to_the_servers_directory(vault: dict[str, Any], tmp_path: Path) -> None:
    async def fn(s: ClientSession) -> Any:
        return (await _call(s, "list_sessions")).structured_content["sessions"]

    # No roots capability: the directory the agent started the server in (here: none of the sessions').
    assert _talk(_env(vault["path"], SESSIONSEAL_PASSPHRASE=PASSPHRASE), [], fn, None) == []


def test_each_call_is_audited_with_the_client_and_ids_never_the_query(vault: dict[str, Any]) -> None:
    ids = vault["ids"]
    env = _env(vault["path"], SESSIONSEAL_PASSPHRASE=PASSPHRASE)

    async def fn(s: ClientSession) -> None:
        await _call(s, "search_sessions", query=WORD)
        await _call(s, "get_session", session_id=ids["private"])

    _talk(env, [], fn, [PROJ])
    shown = sessionseal("audit", "show", "--action", "mcp.*", "--json", env=env)
    assert shown.code == 0, shown.err
    records = [json.loads(line) for line in shown.out.splitlines()]
    search = [r for r in records if r["action"] == "mcp.search_sessions"][-1]
    assert search["outcome"] == "ok"
    assert search["detail"]["client"] == "test-agent" and search["detail"]["client_version"] == "9.8.7"
    assert search["detail"]["results"] == 1 and search["detail"]["bytes"] > 0
    assert ids["proj"] in json.dumps(search)  # the session served, shown while the vault holds its key
    denied = [r for r in records if r["action"] == "mcp.get_session"][-1]
    assert denied["outcome"] == "denied"
    assert all(r["action"].startswith("mcp.") for r in records)
    raw = b"".join(p.read_bytes() for p in (vault["path"] / "audit").iterdir() if p.is_file())
    assert WORD.encode() not in raw and WORD not in shown.out


def test_a_passphrase_vault_without_its_passphrase_answers_with_a_tool_error(vault: dict[str, Any]) -> None:
    async def fn(s: ClientSession) -> tuple[types.CallToolResult, float]:
        start = time.monotonic()
        return await _call(s, "list_sessions"), time.monotonic() - start

    result, _ = _talk(_env(vault["path"]), [], fn, [PROJ])
    # The passphrase's absence named (a prompt would have run into the server's bound instead).
    assert result.is_error and "SESSIONSEAL_PASSPHRASE" in result.content[0].text
    assert "did not answer" not in result.content[0].text


def test_a_locked_keychain_answers_with_a_tool_error_within_seconds(
    secret_service_factory: Callable[..., SecretService], tmp_path: Path
) -> None:
    ss = secret_service_factory()
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(tmp_path / "vault"))
    assert sessionseal("init", env=env).code == 0
    ss.lock()

    async def fn(s: ClientSession) -> tuple[types.CallToolResult, float]:
        start = time.monotonic()
        return await _call(s, "list_sessions"), time.monotonic() - start

    result, _ = _talk({**env, "PYTHONPATH": str(SRC)}, [], fn, [str(tmp_path)])
    assert result.is_error, result
    assert "keychain" in result.content[0].text.lower() or "key store" in result.content[0].text.lower()
    # The keychain refused at once: not the message of the server's 5 s bound (a prompt would
    # have run into it), whatever the call's wall time on a loaded machine.
    assert "did not answer" not in result.content[0].text


def test_a_keychain_that_does_not_answer_is_a_tool_error_within_the_bound(
    secret_service_factory: Callable[..., SecretService], tmp_path: Path
) -> None:
    """The Secret Service stopped (SIGSTOP): a D-Bus call to it would wait; the server gives up
    after its 5 s bound and says so, and the next call does not start a second wait."""
    ss = secret_service_factory()
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(tmp_path / "vault"))
    assert sessionseal("init", env=env).code == 0

    async def fn(s: ClientSession) -> list[tuple[types.CallToolResult, float]]:
        out = []
        for _ in range(2):
            start = time.monotonic()
            out.append((await _call(s, "list_sessions"), time.monotonic() - start))
        return out

    os.kill(ss.daemon_pid, signal.SIGSTOP)
    try:
        answers = _talk({**env, "PYTHONPATH": str(SRC)}, [], fn, [str(tmp_path)])
    finally:
        os.kill(ss.daemon_pid, signal.SIGCONT)
    for result, seconds in answers:
        assert result.is_error, result
        # A deadline ended each call, the server's 5 s or the key store's own 4 s a call (an open
        # makes several): its message says so; the bound on the wall time is far above both, so
        # that only a call left waiting on the daemon, not a loaded machine, can fail it.
        assert "did not answer within" in result.content[0].text
        assert seconds < 60


def test_without_the_extra_serve_says_what_to_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['mcp'] = None; from sessionseal.cli import main; main(['mcp', 'serve'])"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 18
    assert (
        proc.stderr.strip()
        == "sessionseal: error: the MCP server needs the mcp package: pip install 'sessionseal[mcp]'"
    )


def test_the_base_install_never_imports_mcp(tmp_path: Path) -> None:
    code = (
        "import sys, sessionseal, sessionseal.cli; from sessionseal import Vault, AsyncVault; "
        "from sessionseal.cli import _mcp_cmds, _mcp_history, _mcp_files; "
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
