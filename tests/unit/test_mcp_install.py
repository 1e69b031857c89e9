"""``mcp install|status|uninstall`` (issue 23): the server registered with Claude Code
(``.claude.json`` ``mcpServers``), Codex (a ``[mcp_servers.sessionseal]`` block of
``config.toml``) and Gemini CLI (``settings.json`` ``mcpServers``): idempotent, backed up,
broken or foreign files refused, uninstall byte for byte; and the registered command runs."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_hooks_install import Homes

CLAUDE_JSON = '{\n    "numStartups": 41,\n    "projects": {"/p": {"mcpServers": {}}},\n    "userID": "x"\n}\n'
CODEX_TOML = '# my codex\nmodel = "gpt-5"\n\n[mcp_servers.other]\ncommand = "npx"\nargs = ["-y", "other"]'
GEMINI_JSON = '{\n  "theme": "dark",\n  "mcpServers": {\n    "fs": {"command": "npx"}\n  }\n}\n'


@pytest.fixture
def homes(tmp_path: Path) -> Homes:
    h = Homes(tmp_path)
    h.make_vault()
    return h


def files(h: Homes) -> dict[str, Path]:
    return {"claude": h.claude / ".claude.json", "codex": h.codex / "config.toml", "gemini": h.gemini / "settings.json"}


def registered(h: Homes) -> dict[str, Any]:
    f = files(h)
    return {
        "claude": json.loads(f["claude"].read_text())["mcpServers"]["sessionseal"],
        "codex": tomllib.loads(f["codex"].read_text())["mcp_servers"]["sessionseal"],
        "gemini": json.loads(f["gemini"].read_text())["mcpServers"]["sessionseal"],
    }


def status(h: Homes) -> dict[str, str]:
    r = h.run("mcp", "status", "--json")
    assert r.code == 0, r.err
    return {s["tool"]: s["state"] for s in json.loads(r.out)["tools"]}


def test_install_is_idempotent_and_uninstall_gives_each_file_back_byte_for_byte(homes: Homes) -> None:
    f = files(homes)
    f["claude"].write_text(CLAUDE_JSON)
    f["codex"].write_text(CODEX_TOML)
    f["gemini"].write_text(GEMINI_JSON)
    assert status(homes) == dict.fromkeys(f, "not registered")
    r = homes.run("mcp", "install", "--json")
    assert r.code == 0, r.err
    assert all(t["changed"] and t["backup"] for t in json.loads(r.out)["tools"])
    argv = [sys.executable, "-m", "sessionseal", "--vault", str(homes.vault), "--passphrase-file"]
    for tool, entry in registered(homes).items():
        assert [entry["command"], *entry["args"]][:6] == argv, tool
        assert entry["args"][-2:] == ["mcp", "serve"]
    assert registered(homes)["claude"]["type"] == "stdio"
    # Everything else is kept: the keys, their order, the layout, the other servers.
    claude = json.loads(f["claude"].read_text())
    assert list(claude) == ["numStartups", "projects", "userID", "mcpServers"]
    assert f["claude"].read_text().startswith('{\n    "numStartups": 41,')
    assert f["codex"].read_text().startswith(CODEX_TOML + "\n\n# sessionseal MCP server")
    assert set(json.loads(f["gemini"].read_text())["mcpServers"]) == {"fs", "sessionseal"}
    assert status(homes) == dict.fromkeys(f, "registered")
    once = {t: p.read_bytes() for t, p in f.items()}
    again = homes.run("mcp", "install", "--json")
    assert not any(t["changed"] for t in json.loads(again.out)["tools"])
    assert {t: p.read_bytes() for t, p in f.items()} == once
    assert homes.run("mcp", "uninstall").code == 0
    assert f["claude"].read_text() == CLAUDE_JSON
    assert f["codex"].read_text() == CODEX_TOML
    assert f["gemini"].read_text() == GEMINI_JSON
    assert status(homes) == dict.fromkeys(f, "not registered")


def test_files_the_install_created_are_removed_by_the_uninstall(homes: Homes) -> None:
    f = files(homes)
    assert homes.run("mcp", "install", "--all").code == 0
    assert registered(homes)["gemini"]["args"][-3:] == ["mcp", "serve", "--all"]
    assert tomllib.loads(f["codex"].read_text())["mcp_servers"]["sessionseal"]["command"] == sys.executable
    assert homes.run("mcp", "uninstall").code == 0
    assert not any(p.exists() for p in f.values())


def test_codex_file_with_a_final_line_without_newline_and_later_edits(homes: Homes) -> None:
    f = files(homes)["codex"]
    f.write_text('model = "o3"\n')
    assert homes.run("mcp", "install", "--codex").code == 0
    # The user adds a table after ours: uninstall takes out our block only.
    f.write_text(f.read_text() + '\n[profiles.fast]\nmodel = "mini"\n')
    assert homes.run("mcp", "uninstall", "--codex").code == 0
    assert tomllib.loads(f.read_text()) == {"model": "o3", "profiles": {"fast": {"model": "mini"}}}
    assert "sessionseal" not in f.read_text()


def test_broken_or_foreign_files_are_refused_and_left_alone(homes: Homes) -> None:
    f = files(homes)
    f["claude"].write_text('{"mcpServers": ')
    r = homes.run("mcp", "install", "--claude")
    assert r.code == 8 and "is not valid JSON" in r.err and f["claude"].read_text() == '{"mcpServers": '
    foreign = '[mcp_servers.sessionseal]\ncommand = "my-own"\n'
    f["codex"].write_text(foreign)
    r = homes.run("mcp", "install", "--codex")
    assert r.code == 8 and "that sessionseal did not write" in r.err and f["codex"].read_text() == foreign
    f["codex"].write_text("model = \n")
    r = homes.run("mcp", "install", "--codex")
    assert r.code == 8 and "is not valid TOML" in r.err
    f["gemini"].write_text('{"mcpServers": []}')
    r = homes.run("mcp", "install", "--gemini")
    assert r.code == 8 and "'mcpServers' is not an object" in r.err
    assert not list(homes.codex.glob("*backup*")) and not list(homes.gemini.glob("*backup*"))


def test_without_a_flag_only_the_agents_present_are_set_up(homes: Homes) -> None:
    homes.gemini.rmdir()
    assert homes.run("mcp", "install").code == 0
    assert files(homes)["claude"].exists() and files(homes)["codex"].exists()
    assert not homes.gemini.exists()
    assert homes.run("mcp", "install", "--gemini").code == 0  # named: set up anyway
    assert files(homes)["gemini"].exists()


def test_dry_run_shows_the_diff_and_writes_nothing(homes: Homes) -> None:
    files(homes)["gemini"].write_text(GEMINI_JSON)
    r = homes.run("mcp", "install", "--gemini", "--dry-run")
    assert r.code == 0 and '+    "sessionseal": {' in r.out
    assert files(homes)["gemini"].read_text() == GEMINI_JSON
    assert not list(homes.gemini.glob("*backup*"))


def test_doctor_reports_the_registration(homes: Homes) -> None:
    assert homes.run("mcp", "install", "--claude").code == 0
    r = homes.run("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert checks["mcp:claude"]["status"] == "ok" and "is registered" in checks["mcp:claude"]["message"]
    assert checks["mcp:gemini"]["hint"] == "sessionseal mcp install --gemini"


def test_the_registered_command_starts_the_server(homes: Homes) -> None:
    """What Claude Code would run, run through the SDK's own client: it answers."""
    pytest.importorskip("mcp")
    import asyncio

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from tests.integration._cli import SRC

    assert homes.run("mcp", "install", "--claude").code == 0
    entry = json.loads(files(homes)["claude"].read_text())["mcpServers"]["sessionseal"]
    assert entry["type"] == "stdio"

    async def main() -> list[str]:
        env = {**homes.env, "PYTHONPATH": str(SRC)}
        params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env)
        async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            listed = await s.call_tool("list_sessions", {})
            assert not listed.is_error, listed.content
            return sorted(t.name for t in (await s.list_tools()).tools)

    assert "get_session" in asyncio.run(main())
