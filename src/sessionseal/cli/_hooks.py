"""sessionseal's hook entries in the agents' own settings files (docs/capture/hooks.md).

Pure where it can be: a settings document in, a settings document out.  Each agent keeps its
hooks in a JSON file of the same shape, ``{"hooks": {EVENT: [{"matcher"?, "hooks": [HOOK]}]}}``:

- Claude Code: ``settings.json`` in ``$CLAUDE_CONFIG_DIR`` or ``~/.claude`` ("Hooks reference",
  code.claude.com/docs/en/hooks: command hooks, ``timeout`` in seconds, ``"async": true`` runs a
  command hook in the background without holding the turn up).
- Codex: ``hooks.json`` in ``$CODEX_HOME`` or ``~/.codex`` (developers.openai.com/codex/hooks:
  the same event structure, ``timeout`` in seconds; hooks are on by default, ``[features]
  hooks = false`` turns them off).  Inline ``[hooks]`` tables in ``config.toml`` are left alone:
  a TOML file is never rewritten here.
- Gemini CLI: ``settings.json`` in ``$GEMINI_CLI_HOME/.gemini`` or ``~/.gemini``
  (``google-gemini/gemini-cli``: docs/hooks/reference.md, ``timeout`` in milliseconds;
  packages/core/src/utils/paths.ts, ``homedir()`` honours ``GEMINI_CLI_HOME``).

A hook entry is sessionseal's when its command runs sessionseal's ``hook <name>`` for one of
the names below, whichever Python or path ran the install: so an upgrade replaces it, and
uninstall finds it.  Nothing else in the file is touched.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sessionseal.errors import InvalidInput

__all__ = [
    "ENTRIES",
    "TOOLS",
    "Entry",
    "bare",
    "command_for",
    "dump",
    "events",
    "home",
    "install",
    "is_ours",
    "load",
    "same",
    "settings_path",
    "state",
    "uninstall",
]

TOOLS: Final = ("claude", "codex", "gemini")


@dataclass(frozen=True)
class Entry:
    """One hook sessionseal registers: the agent's event, the ``hook`` subcommand it runs, and
    the fields of the hook object after ``type`` and ``command``."""

    event: str
    subcommand: str
    fields: tuple[tuple[str, Any], ...] = ()


#: What each agent gets, and why (docs/capture/hooks.md, "What each hook does").
ENTRIES: Final[dict[str, tuple[Entry, ...]]] = {
    "claude": (
        # SessionEnd does not fire for a double Ctrl+C or a killed process: Stop (each turn)
        # and PreCompact catch what it misses, in the background (nothing waits for them; the
        # importer appends only what the transcript grew by).  SessionEnd runs as Claude Code
        # exits: in the foreground, so that it is not cut short; the hook gives up after 25 s,
        # before its 30 s timeout.
        Entry("SessionEnd", "claude-session-end", (("timeout", 30),)),
        Entry("Stop", "claude-stop", (("async", True),)),
        Entry("PreCompact", "claude-precompact", (("async", True),)),
    ),
    # Codex has no SessionEnd; its Stop payload carries the transcript path.
    "codex": (Entry("Stop", "codex-stop", (("timeout", 30),)),),
    "gemini": (Entry("SessionEnd", "gemini-session-end", (("name", "sessionseal"), ("timeout", 30000))),),
}

_SUBCOMMANDS: Final = frozenset(e.subcommand for entries in ENTRIES.values() for e in entries)
_FILES: Final = {"claude": "settings.json", "codex": "hooks.json", "gemini": "settings.json"}


def home(tool: str) -> Path:
    """The agent's own directory: where its settings live (moved by its environment variable)."""
    if tool == "claude":
        base = os.environ.get("CLAUDE_CONFIG_DIR")
        return Path(base) if base else Path.home() / ".claude"
    if tool == "codex":
        base = os.environ.get("CODEX_HOME")
        return Path(base) if base else Path.home() / ".codex"
    base = os.environ.get("GEMINI_CLI_HOME")
    return (Path(base) if base else Path.home()) / ".gemini"


def settings_path(tool: str) -> Path:
    """The file sessionseal's hooks go in, for *tool*."""
    return home(tool) / _FILES[tool]


def command_for(subcommand: str, *, python: str, vault: str | None, passphrase_file: str | None) -> str:
    """The shell command an agent runs: this Python running ``-m sessionseal`` (not a script on
    PATH, which the agent's environment may not have, nor a console script that a ``python -m``
    user may not have), with the vault and passphrase file given to the install, absolute."""
    argv = [python, "-m", "sessionseal"]
    if vault:
        argv += ["--vault", os.path.abspath(vault)]
    if passphrase_file:
        argv += ["--passphrase-file", os.path.abspath(passphrase_file)]
    return shlex.join([*argv, "hook", subcommand])


def is_ours(hook: Any, subcommand: str | None = None) -> bool:
    """Whether *hook* (one hook object) runs sessionseal's ``hook`` *subcommand* (any of ours)."""
    if not isinstance(hook, dict) or not isinstance(hook.get("command"), str):
        return False
    try:
        argv = shlex.split(hook["command"])
    except ValueError:
        return False
    if len(argv) < 3 or argv[-2] != "hook" or argv[-1] not in (_SUBCOMMANDS if subcommand is None else {subcommand}):
        return False
    # `python -m sessionseal ...`, or the sessionseal console script by any path.
    return argv[1:3] == ["-m", "sessionseal"] or os.path.basename(argv[0]) == "sessionseal"


def load(data: bytes | None, where: str) -> dict[str, Any]:
    """The settings document of *data* (None: no file yet, an empty one).

    :raises InvalidInput: not a JSON object (nothing is overwritten: the user fixes it).
    """
    if data is None:
        return {}

    def no_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}); fix it first, nothing was changed"
        ) from None
    except (ValueError, RecursionError):
        raise InvalidInput(f"{where} is not valid JSON; fix it first, nothing was changed") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where} is JSON but not an object; fix it first, nothing was changed")
    return doc


def dump(doc: dict[str, Any], like: bytes | None) -> bytes:
    """*doc* as JSON laid out as *like* was (its indent and final newline; keys in their order),
    or as the agents write their own files (two spaces, ``JSON.stringify(doc, null, 2)``)."""
    indent: int | str | None = 2
    newline = True
    if like is not None:
        text = like.decode("utf-8")
        newline = text.endswith("\n")
        lines = text.splitlines()
        if len(lines) <= 1 and text.strip() not in ("", "{}"):
            indent = None
        else:
            for line in lines[1:]:
                stripped = line.lstrip(" \t")
                if stripped and stripped != line:
                    width = line[: len(line) - len(stripped)]
                    indent = len(width) if set(width) == {" "} else width
                    break
    out = json.dumps(doc, indent=indent, ensure_ascii=False)
    return (out + ("\n" if newline else "")).encode()


def _event_lists(doc: dict[str, Any], where: str, *, create: bool) -> dict[str, Any] | None:
    hooks = doc.get("hooks")
    if hooks is None:
        if not create:
            return None
        hooks = doc["hooks"] = {}
    if not isinstance(hooks, dict):
        raise InvalidInput(f"{where}: 'hooks' is not an object; fix it first, nothing was changed")
    return hooks


def _groups(hooks: dict[str, Any], event: str, where: str) -> list[Any]:
    groups = hooks.get(event)
    if not isinstance(groups, list):
        raise InvalidInput(f"{where}: hooks.{event} is not a list; fix it first, nothing was changed")
    return groups


def install(doc: dict[str, Any], tool: str, command: Callable[[str], str], where: str) -> dict[str, Any]:
    """*doc* with sessionseal's hooks for *tool*: each one in place where it was (its command
    brought up to date), added in a group of its own at the end of its event where it was not,
    a second copy dropped."""
    out = copy.deepcopy(doc)
    hooks = _event_lists(out, where, create=True)
    assert hooks is not None
    for entry in ENTRIES[tool]:
        wanted = {"type": "command", "command": command(entry.subcommand), **dict(entry.fields)}
        if entry.event not in hooks:
            hooks[entry.event] = []
        groups = _groups(hooks, entry.event, where)
        placed = False
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(inner, list):
                continue
            for i, hook in enumerate(inner):
                if is_ours(hook, entry.subcommand):
                    inner[i] = None if placed else wanted
                    placed = True
            inner[:] = [h for h in inner if h is not None]
        groups[:] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
        if not placed:
            groups.append({"hooks": [wanted]})
    return out


def _order(value: Any) -> Any:
    """*value* with its keys' order made visible (dict equality ignores it)."""
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """The same JSON value, keys in the same order."""
    return bool(_order(a) == _order(b))


def uninstall(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """*doc* without any sessionseal hook; a group, event or ``hooks`` object left empty by
    that goes too (one that was empty already stays)."""
    out = copy.deepcopy(doc)
    hooks = _event_lists(out, where, create=False)
    if hooks is None:
        return out
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        emptied = False
        for gi, group in enumerate(groups):
            inner = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(inner, list) or not any(is_ours(h) for h in inner):
                continue
            inner[:] = [h for h in inner if not is_ours(h)]
            if not inner:
                groups[gi] = None
                emptied = True
        if emptied:
            groups[:] = [g for g in groups if g is not None]
            if not groups:
                del hooks[event]
                if not hooks:
                    del out["hooks"]
    return out


def _runs(hook: dict[str, Any]) -> bool:
    """Whether the program *hook* starts is there to run (a removed venv's Python is not)."""
    program = shlex.split(hook["command"])[0]
    return (os.path.isabs(program) and os.access(program, os.X_OK)) or not os.path.isabs(program)


def bare(doc: dict[str, Any]) -> dict[str, Any]:
    """*doc* without sessionseal's hooks nor any empty group, event or ``hooks`` object: two
    files with the same bare document differ in sessionseal's hooks and empty containers only."""
    out = uninstall(doc, "")
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event in list(hooks):
        groups = hooks[event]
        if isinstance(groups, list):
            groups[:] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
            if not groups:
                del hooks[event]
    if not hooks:
        del out["hooks"]
    return out


def state(doc: dict[str, Any], tool: str, command: Callable[[str], str] | None = None) -> tuple[str, list[str]]:
    """``installed`` (each of *tool*'s hooks once, with this *command* when given, else with a
    program that is there to run), ``partly`` or ``not installed``; and the events whose hook
    is missing, doubled or out of date."""
    hooks = doc.get("hooks")
    hooks = hooks if isinstance(hooks, dict) else {}
    found = 0
    missing: list[str] = []
    for entry in ENTRIES[tool]:
        groups = hooks.get(entry.event)
        ours = [
            h
            for g in (groups if isinstance(groups, list) else [])
            if isinstance(g, dict) and isinstance(g.get("hooks"), list)
            for h in g["hooks"]
            if is_ours(h, entry.subcommand)
        ]
        found += bool(ours)
        wanted = None if command is None else command(entry.subcommand)
        if len(ours) != 1 or (ours[0].get("command") != wanted if wanted is not None else not _runs(ours[0])):
            missing.append(entry.event)
    if not missing:
        return "installed", []
    return ("partly" if found else "not installed"), missing


def events(tool: str) -> Sequence[str]:
    """The events sessionseal hooks for *tool*."""
    return [e.event for e in ENTRIES[tool]]
