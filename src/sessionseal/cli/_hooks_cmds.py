"""``sessionseal hooks install|status|uninstall`` (docs/capture/hooks.md; the files: _hook_files.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from sessionseal.errors import InvalidInput

from ._common import Context, echo_json, handle_errors
from ._terminal import shown

__all__ = ["hooks_group", "off_switch", "report_changes", "tool_state"]

_NAMES = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI"}


def _tool_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    for tool in reversed(("claude", "codex", "gemini")):
        fn = click.option(f"--{tool}", tool, is_flag=True, help=f"{_NAMES[tool]} (none of the three: all).")(fn)
    return fn


def _chosen(claude: bool, codex: bool, gemini: bool) -> tuple[list[str], bool]:
    """The tools asked for, and whether they were named (else: all three)."""
    named = [t for t, on in (("claude", claude), ("codex", codex), ("gemini", gemini)) if on]
    return (named, True) if named else (["claude", "codex", "gemini"], False)


def _command(obj: Context) -> Callable[[str], str]:
    """The command each hook runs: this Python, this vault and passphrase file."""
    from . import _hooks

    if obj.passphrase_file and not os.path.isfile(obj.passphrase_file):
        raise InvalidInput(f"--passphrase-file {obj.passphrase_file} is not a file; the hooks would not open the vault")
    return lambda sub: _hooks.command_for(
        sub, python=sys.executable, vault=obj.vault_path, passphrase_file=obj.passphrase_file
    )


def off_switch(tool: str) -> str | None:
    """Why the agent would not run hooks at all, as its own settings say (None: nothing says so)."""
    import tomllib

    from . import _hook_files, _hooks

    try:
        if tool == "codex":
            # developers.openai.com/codex/hooks: on by default; [features] hooks (or its older
            # alias codex_hooks) = false turns them off.  Read only: config.toml is never written.
            data = _hook_files.read(_hooks.home("codex") / "config.toml")
            features = tomllib.loads(data.decode()).get("features", {}) if data else {}
            flag = features.get("hooks", features.get("codex_hooks")) if isinstance(features, dict) else None
            return "config.toml sets [features] hooks = false" if flag is False else None
        if tool == "gemini":
            doc = _hooks.load(_hook_files.read(_hooks.settings_path("gemini")), "settings.json")
            config = doc.get("hooksConfig")
            if isinstance(config, dict) and config.get("enabled") is False:
                return "settings.json sets hooksConfig.enabled = false"
    except (InvalidInput, OSError, ValueError):
        return None  # status reports the file itself
    return None


def tool_state(tool: str, command: Callable[[str], str] | None = None) -> dict[str, Any]:
    """One tool's hooks: ``installed``, ``partly``, ``not installed``, ``tool not present``, or
    ``unreadable`` (the settings file is not JSON), with the file and what is missing."""
    from . import _hook_files, _hooks

    path = _hooks.settings_path(tool)
    out: dict[str, Any] = {"tool": tool, "settings": str(path), "missing": [], "off": None}
    if not _hooks.home(tool).is_dir():
        out["state"] = "tool not present"
        return out
    try:
        doc = _hooks.load(_hook_files.read(path), str(path))
        out["state"], out["missing"] = _hooks.state(doc, tool, command)
    except (InvalidInput, OSError) as exc:
        out["state"], out["error"] = "unreadable", str(exc)
    out["off"] = off_switch(tool)
    return out


@click.group(name="hooks")
def hooks_group() -> None:
    """Set up, check or remove the agents' hooks that capture every session into the vault."""


def _change_json(change: Any, backup: Any, dry_run: bool, file_key: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tool": change.tool,
        file_key: str(change.path),
        "changed": change.changed,
        "backup": None if backup is None else str(backup),
        "removed_file": change.changed and change.after is None,
    }
    if dry_run:
        doc["diff"] = change.diff()
    return doc


def report_changes(
    changes: list[Any], skipped: list[str], *, dry_run: bool, as_json: bool, verb: str, file_key: str = "settings"
) -> None:
    """Apply (unless *dry_run*) and report the planned changes to the agents' files (those of
    ``hooks`` and of ``mcp install|uninstall``); *file_key* names the file in the JSON."""
    from . import _hook_files

    done = []
    for change in changes:
        backup = None if dry_run else _hook_files.apply(change)
        done.append(_change_json(change, backup, dry_run, file_key))
    if as_json:
        echo_json(
            {"dry_run": dry_run, "tools": done, "skipped": [{"tool": t, "state": "tool not present"} for t in skipped]}
        )
        return
    for change, doc in zip(changes, done, strict=True):
        name = _NAMES[change.tool]
        if dry_run:
            click.echo(shown(doc["diff"]), nl=False)
            if not change.changed:
                click.echo(shown(f"{name}: {change.path} already {verb}; nothing to change"), err=True)
        elif change.changed:
            where = f"; backup: {doc['backup']}" if doc["backup"] else ""
            click.echo(shown(f"{name}: {verb} in {change.path}{where}"), err=True)
        else:
            click.echo(shown(f"{name}: already {verb} in {change.path}"), err=True)
    for tool in skipped:
        click.echo(
            f"{_NAMES[tool]}: not present (no {tool} home); skipped, name --{tool} to set it up anyway", err=True
        )


@hooks_group.command(name="install")
@_tool_flags
@click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def install(obj: Context, /, *, claude: bool, codex: bool, gemini: bool, dry_run: bool, as_json: bool) -> None:
    """Merge sessionseal's hooks into each agent's own settings (idempotent, backed up first).

    Claude Code: SessionEnd, Stop (in the background) and PreCompact; Codex: Stop; Gemini CLI:
    SessionEnd.  Each runs this Python's sessionseal with this --vault and --passphrase-file.
    Without a tool flag, the agents present on this machine.
    """
    from . import _hook_files, _hooks

    tools, named = _chosen(claude, codex, gemini)
    command = _command(obj)
    skipped = [t for t in tools if not named and not _hooks.home(t).is_dir()]
    # Every file is read and checked before any is changed: one that is not JSON changes nothing.
    changes = [_hook_files.plan_install(t, command) for t in tools if t not in skipped]
    report_changes(changes, skipped, dry_run=dry_run, as_json=as_json, verb="installed")
    if not dry_run and not as_json and any(c.tool == "codex" and c.changed for c in changes):
        click.echo("Codex runs a new hook once you have reviewed and trusted it: open /hooks in Codex", err=True)


@hooks_group.command(name="uninstall")
@_tool_flags
@click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def uninstall(obj: Context, /, *, claude: bool, codex: bool, gemini: bool, dry_run: bool, as_json: bool) -> None:
    """Remove sessionseal's hooks (only those) from each agent's settings, backed up first.

    A file nobody else changed since the install comes back byte for byte.
    """
    from . import _hook_files, _hooks

    tools, _named = _chosen(claude, codex, gemini)
    present = [t for t in tools if _hooks.settings_path(t).exists() or _hooks.settings_path(t).is_symlink()]
    changes = [_hook_files.plan_uninstall(t) for t in present]
    report_changes(changes, [], dry_run=dry_run, as_json=as_json, verb="uninstalled")


@hooks_group.command(name="status")
@_tool_flags
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def status(obj: Context, claude: bool, codex: bool, gemini: bool, as_json: bool) -> None:
    """Say for each agent whether sessionseal's hooks are installed (exit 0 whatever they are)."""
    tools, _named = _chosen(claude, codex, gemini)
    # Any sessionseal hook whose program is there counts: one installed with another --vault is installed.
    states = [tool_state(t) for t in tools]
    if as_json:
        echo_json({"tools": states})
        return
    for s in states:
        line = f"{_NAMES[s['tool']]:<12} {s['state']:<16} {s['settings']}"
        if s["missing"] and s["state"] == "partly":
            line += f" (missing or out of date: {', '.join(s['missing'])}; run 'sessionseal hooks install')"
        if s.get("error"):
            line += f" ({s['error']})"
        if s["off"]:
            line += f" (hooks are off: {s['off']})"
        click.echo(shown(line))
