"""``sessionseal mcp serve|install|status|uninstall`` (docs/mcp.md; the server: _mcp_server.py,
the agents' files: _mcp_files.py)."""

from __future__ import annotations

import os
import sys
from typing import Any, Final

import click

from ._common import Context, echo_json, fail, handle_errors, passphrase_source
from ._hooks_cmds import report_changes
from ._terminal import shown

__all__ = ["EXIT_NO_EXTRA", "mcp_group"]

#: The exit status when the ``mcp`` extra is not installed (docs/cli.md, "Exit codes").
EXIT_NO_EXTRA: Final = 18
#: How long the key store has to answer a tool call's open of the vault.
KEYCHAIN_DEADLINE: Final = 5.0
_TOOLS: Final = ("claude", "codex", "gemini")
_NAMES: Final = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI"}


@click.group(name="mcp")
def mcp_group() -> None:
    """Let agents search their own sealed history over MCP (read-only, scoped, audited)."""


@mcp_group.command(name="serve")
@click.option("--all", "serve_all", is_flag=True, help="Serve every workspace, not only the client's roots.")
@click.option(
    "--private-tag",
    default="private",
    show_default=True,
    metavar="TAG",
    help="Sessions with this tag are never served, not even by id.",
)
@click.pass_obj
@handle_errors
def serve(obj: Context, serve_all: bool, private_tag: str) -> None:
    """Run the MCP server on stdin/stdout (an agent starts it; see 'sessionseal mcp install').

    Tools: search_sessions, list_sessions, get_session, latest_session, resume_hint; all
    read-only.  Each call is audited (action mcp.<tool>); never the query.
    """
    try:
        import mcp  # noqa: F401 - only whether it is there
    except ImportError:
        fail("the MCP server needs the mcp package: pip install 'sessionseal[mcp]'", EXIT_NO_EXTRA)
    if not private_tag.strip():
        raise click.UsageError("--private-tag takes a tag")
    from sessionseal import Vault

    from ._mcp_server import build_server

    def open_vault() -> Vault:
        # Never a prompt (stdin is the protocol), never the automatic cleanup (the server only reads).
        return Vault.open(
            obj.vault_path, passphrase=passphrase_source(obj.passphrase_file), interactive=False, auto_cleanup=False
        )

    server, close = build_server(
        open_vault, serve_all=serve_all, private_tag=private_tag.strip(), deadline=KEYCHAIN_DEADLINE
    )
    try:
        server.run("stdio")  # until the agent closes stdin
    finally:
        close()
    # A worker may still wait on a wedged key store: do not wait for it at exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _tool_flags(fn: Any) -> Any:
    for tool in reversed(_TOOLS):
        fn = click.option(f"--{tool}", tool, is_flag=True, help=f"{_NAMES[tool]} (none of the three: all).")(fn)
    return fn


def _chosen(flags: dict[str, bool], *, present_only: bool = False) -> list[str]:
    """The agents named; none named: all three (for install, those present on this machine)."""
    from . import _hooks

    named = [t for t in _TOOLS if flags.get(t)]
    if named:
        return named
    return [t for t in _TOOLS if not present_only or _hooks.home(t).is_dir()]


@mcp_group.command(name="install")
@_tool_flags
@click.option("--all", "serve_all", is_flag=True, help="Register 'mcp serve --all' (every workspace).")
@click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def install(obj: Context, /, *, serve_all: bool, dry_run: bool, as_json: bool, **flags: bool) -> None:
    """Register the server with each agent (user scope; idempotent; backed up first).

    Claude Code: mcpServers in ~/.claude.json; Codex: [mcp_servers.sessionseal] in config.toml;
    Gemini CLI: mcpServers in settings.json.  The server runs this Python's sessionseal with this
    --vault and --passphrase-file.  Without a tool flag, the agents present on this machine.
    """
    from . import _mcp_files

    argv = _mcp_files.server_argv(obj.vault_path, obj.passphrase_file, serve_all=serve_all)
    # Every file is read and checked before any is changed.
    changes = [_mcp_files.plan_install(t, argv) for t in _chosen(flags, present_only=True)]
    report_changes(changes, [], dry_run=dry_run, as_json=as_json, verb="registered", file_key="file")


@mcp_group.command(name="uninstall")
@_tool_flags
@click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def uninstall(obj: Context, /, *, dry_run: bool, as_json: bool, **flags: bool) -> None:
    """Remove the server's registration (only it) from each agent, backed up first.

    A file nobody else changed since the install comes back byte for byte.
    """
    from . import _mcp_files

    changes = [_mcp_files.plan_uninstall(t) for t in _chosen(flags)]
    changes = [c for c in changes if c.before is not None]
    report_changes(changes, [], dry_run=dry_run, as_json=as_json, verb="unregistered", file_key="file")


@mcp_group.command(name="status")
@_tool_flags
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def status(obj: Context, /, *, as_json: bool, **flags: bool) -> None:
    """Say for each agent whether the server is registered (exit 0 whatever it is)."""
    from . import _mcp_files

    states = [_mcp_files.state(t) for t in _chosen(flags)]
    if as_json:
        echo_json({"tools": states})
        return
    for s in states:
        line = f"{_NAMES[s['tool']]:<12} {s['state']:<16} {s['file']}"
        if s.get("error"):
            line += f" ({s['error']})"
        click.echo(shown(line))
