"""Registering ``sessionseal mcp serve`` with the agents (``mcp install|status|uninstall``; docs/mcp.md).

Each agent keeps its user-scope MCP servers in a file of its own:

- Claude Code: the top-level ``mcpServers`` of ``.claude.json`` in ``$CLAUDE_CONFIG_DIR`` or the
  home directory (where ``claude mcp add --scope user`` writes; a ``projects`` entry's servers
  are another scope, left alone).
- Codex: the ``[mcp_servers.sessionseal]`` table of ``config.toml`` in ``$CODEX_HOME`` or
  ``~/.codex``.  A TOML file is never rewritten: the table is appended as a block of text and
  uninstall takes exactly that block out again; a table of that name that is not our block is
  refused.
- Gemini CLI: ``mcpServers`` of ``settings.json`` in ``$GEMINI_CLI_HOME/.gemini`` or ``~/.gemini``.

The files are changed as ``hooks install`` changes the agents' settings (_hook_files.py): planned
first (``--dry-run`` shows the diff), backed up (0600, next to the file), written atomically; a
file that is not JSON (or TOML) is refused; uninstall gives back a backup's bytes when the file
is that backup with sessionseal's entry added, so a file nobody else changed comes back byte for byte.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

from sessionseal.errors import InvalidInput, StorageError

from . import _hook_files, _hooks
from ._hook_files import Change

__all__ = ["NAME", "file_path", "plan_install", "plan_uninstall", "server_argv", "state"]

#: The server's name in every agent's configuration.
NAME: Final = "sessionseal"
_MARK: Final = "# sessionseal MCP server: 'sessionseal mcp uninstall --codex' removes this table"
_HEADER: Final = f"[mcp_servers.{NAME}]"


def file_path(tool: str) -> Path:
    """The file the registration goes in, for *tool*."""
    if tool == "claude":
        base = os.environ.get("CLAUDE_CONFIG_DIR")
        return (Path(base) if base else Path.home()) / ".claude.json"
    if tool == "codex":
        return _hooks.home("codex") / "config.toml"
    return _hooks.home("gemini") / "settings.json"


def server_argv(vault: str | None, passphrase_file: str | None, *, serve_all: bool) -> list[str]:
    """The command an agent starts: this Python running ``-m sessionseal ... mcp serve``."""
    if passphrase_file and not os.path.isfile(passphrase_file):
        raise InvalidInput(f"--passphrase-file {passphrase_file} is not a file; the server would not open the vault")
    argv = [sys.executable, "-m", "sessionseal"]
    if vault:
        argv += ["--vault", os.path.abspath(vault)]
    if passphrase_file:
        argv += ["--passphrase-file", os.path.abspath(passphrase_file)]
    return [*argv, "mcp", "serve", *(["--all"] if serve_all else [])]


def _entry(tool: str, argv: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": argv[0], "args": argv[1:]}
    return {"type": "stdio", **entry, "env": {}} if tool == "claude" else entry


# -- JSON files (Claude Code, Gemini CLI) ---------------------------------------------------------


def _servers(doc: dict[str, Any], where: str) -> dict[str, Any] | None:
    servers = doc.get("mcpServers")
    if servers is not None and not isinstance(servers, dict):
        raise InvalidInput(f"{where}: 'mcpServers' is not an object; fix it first, nothing was changed")
    return servers


def _without(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """*doc* without our server, and without an ``mcpServers`` that only it was in."""
    out = copy.deepcopy(doc)
    servers = _servers(out, where)
    if servers is not None and NAME in servers:
        del servers[NAME]
        if not servers:
            del out["mcpServers"]
    return out


def _json_install(tool: str, path: Path, before: bytes | None, argv: list[str]) -> Change:
    doc = _hooks.load(before, str(path))
    new = copy.deepcopy(doc)
    servers = _servers(new, str(path))
    if servers is None:
        servers = new["mcpServers"] = {}
    servers[NAME] = _entry(tool, argv)
    after = before if before is not None and _hooks.same(new, doc) else _hooks.dump(new, before)
    return Change(tool, path, before, after)


def _json_uninstall(tool: str, path: Path, before: bytes) -> Change:
    doc = _hooks.load(before, str(path))
    bare = _without(doc, str(path))
    if _hooks.same(bare, doc):
        return Change(tool, path, before, before)
    for backup in _hook_files.backups(path):
        if backup.name.endswith(".absent"):
            if bare == {} and not path.is_symlink():
                return Change(tool, path, before, None)
            continue
        try:
            data = _hook_files.read(backup)
            if data is not None and _hooks.same(_without(_hooks.load(data, str(backup)), ""), bare):
                return Change(tool, path, before, data)
        except (InvalidInput, StorageError, UnicodeDecodeError):
            continue
    return Change(tool, path, before, _hooks.dump(bare, before))


# -- config.toml (Codex): one block of text, appended and taken out --------------------------------


def _toml_block(argv: list[str]) -> str:
    # JSON strings are TOML basic strings for what a path holds (escapes \\, \", control characters).
    args = ", ".join(json.dumps(a) for a in argv[1:])
    return f"{_MARK}\n{_HEADER}\ncommand = {json.dumps(argv[0])}\nargs = [{args}]\n"


_BLOCK: Final = re.compile(
    re.escape(_MARK) + r"\n" + re.escape(_HEADER) + r'\ncommand = "(?:[^"\\\n]|\\.)*"\nargs = \[[^\n]*\]\n'
)


def _toml_doc(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML ({exc}); fix it first, nothing was changed") from None


def _toml_install(path: Path, before: bytes | None, argv: list[str]) -> Change:
    text = "" if before is None else before.decode("utf-8")
    doc = _toml_doc(text, path)
    block = _toml_block(argv)
    found = _BLOCK.findall(text)
    table = doc.get("mcp_servers", {}).get(NAME) if isinstance(doc.get("mcp_servers"), dict) else None
    if table is not None and not found:
        raise InvalidInput(
            f"{path} has an [mcp_servers.{NAME}] table that sessionseal did not write; "
            "remove it first, nothing was changed"
        )
    if len(found) > 1:
        raise InvalidInput(f"{path} holds sessionseal's table twice; remove one, nothing was changed")
    if found:
        new = text.replace(found[0], block)
    else:
        sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        new = text + sep + block
    _toml_doc(new, path)  # what is written parses
    return Change("codex", path, before, new.encode())


def _toml_uninstall(path: Path, before: bytes) -> Change:
    text = before.decode("utf-8")
    _toml_doc(text, path)
    m = _BLOCK.search(text)
    if m is None:
        return Change("codex", path, before, before)
    head, tail = text[: m.start()], text[m.end() :]
    # Install put the block after a blank line ("\n", or "\n\n" after a last line without its
    # newline): the file as it was is one of these, and a backup says which.
    candidates = [head[:-1], head[:-2]] if not tail and head.endswith("\n\n") else []
    candidates.append(head + tail)
    for backup in _hook_files.backups(path):
        if backup.name.endswith(".absent"):
            if head + tail == "" and not path.is_symlink():
                return Change("codex", path, before, None)
            continue
        data = _hook_files.read(backup)
        if data is not None and data.decode("utf-8", "replace") in candidates:
            return Change("codex", path, before, data)
    return Change("codex", path, before, candidates[0].encode())


# -- the three agents ---------------------------------------------------------------------------------


def plan_install(tool: str, argv: list[str]) -> Change:
    """The file with the server registered (unchanged when it is, with this command)."""
    path = file_path(tool)
    before = _hook_files.read(path)
    if tool == "codex":
        return _toml_install(path, before, argv)
    return _json_install(tool, path, before, argv)


def plan_uninstall(tool: str) -> Change:
    """The file without the server's registration (a backup's bytes when it is that backup's)."""
    path = file_path(tool)
    before = _hook_files.read(path)
    if before is None:
        return Change(tool, path, None, None)
    if tool == "codex":
        return _toml_uninstall(path, before)
    return _json_uninstall(tool, path, before)


def _registered(tool: str, data: bytes | None, path: Path) -> Any:
    if data is None:
        return None
    if tool == "codex":
        servers = _toml_doc(data.decode("utf-8"), path).get("mcp_servers")
    else:
        servers = _servers(_hooks.load(data, str(path)), str(path))
    return servers.get(NAME) if isinstance(servers, dict) else None


def state(tool: str) -> dict[str, Any]:
    """``registered`` (a program that is there to run), ``stale`` (its program is gone), ``not
    registered``, or ``unreadable``; with the file."""
    path = file_path(tool)
    out: dict[str, Any] = {"tool": tool, "file": str(path)}
    try:
        entry = _registered(tool, _hook_files.read(path), path)
    except (InvalidInput, StorageError, UnicodeDecodeError) as exc:
        out["state"], out["error"] = "unreadable", str(exc)
        return out
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        out["state"] = "not registered"
        return out
    program = entry["command"]
    runs = not os.path.isabs(program) or os.access(program, os.X_OK)
    out["state"] = "registered" if runs else "stale"
    out["command"] = [program, *(a for a in entry.get("args", []) if isinstance(a, str))]
    return out
