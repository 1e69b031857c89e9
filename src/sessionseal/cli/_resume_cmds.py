"""``resume``: a stored session back in its agent (docs/capture/resume.md)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import click

from ._common import Context, echo_json, handle_errors
from ._terminal import say

if TYPE_CHECKING:
    from sessionseal import ResumeResult

__all__ = ["resume_command"]


def _result_json(r: ResumeResult) -> dict[str, Any]:
    return {
        "session_id": str(r.session_id),
        "into": r.into,
        "source_id": r.source_id,
        "cwd": r.cwd,
        "path": r.path,
        "files": r.files,
        "command": r.command,
        "env": r.env,
        "executed": r.executed,
        "agent_status": r.agent_status,
        "sealed": [{"path": o.path, "action": o.action, "messages": o.messages, "error": o.error} for o in r.sealed],
        "shredded": r.shredded,
        "swept": r.swept,
    }


def _report(r: ResumeResult) -> None:
    if not r.executed:
        say(f"Wrote session {r.session_id} for {r.into}: {r.path} (plaintext until you remove it)")
        click.echo(f"cd {shlex.quote(r.cwd)} && {shlex.join(r.command)}")
        return
    actions = ", ".join(f"{o.action} ({o.messages} messages)" for o in r.sealed) or "nothing new"
    say(f"{r.into} exited with status {r.agent_status}; sealed back: {actions}; its private home was shredded")


@click.command(name="resume")
@click.argument("session_id", metavar="ID", required=False)
@click.option(
    "--into", "into", type=click.Choice(["claude", "codex"]), help="The agent to resume it in (the one it came from)."
)
@click.option(
    "--cwd",
    "cwd",
    metavar="DIR",
    help="The directory to resume from (default: the session's own if it exists, else the current one).",
)
@click.option(
    "--exec/--no-exec",
    "execute",
    default=True,
    help="Run the agent in a private home and seal its session back when it exits (default); "
    "--no-exec only writes the session into the agent's own directory (needs --plaintext).",
)
@click.option("--plaintext", is_flag=True, help="With --no-exec: accept leaving the session there in plaintext.")
@click.option(
    "--agent-command",
    "agent_command",
    metavar="CMD",
    envvar="SESSIONSEAL_RESUME_AGENT",
    help="The command that stands for the agent (a wrapper; tests): its words, then the agent's resume "
    "arguments [env SESSIONSEAL_RESUME_AGENT].",
)
@click.option(
    "--cleanup",
    "cleanup",
    is_flag=True,
    help="Instead: seal back and shred what killed resumes left in the vault's run/ directory.",
)
@click.option(
    "--dry-run", is_flag=True, help="Say where the session would be written and the command; write and run nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_obj
@handle_errors
def resume_command(
    obj: Context,
    /,
    *,
    session_id: str | None,
    into: str | None,
    cwd: str | None,
    execute: bool,
    plaintext: bool,
    agent_command: str | None,
    cleanup: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Resume session ID in the agent it came from: Claude Code or Codex.

    Writes the session in the agent's own layout (the records it was imported from, sanitized)
    into a private home under the vault, starts the agent on it from the session's directory,
    and when the agent exits seals what it added back into the vault and shreds the home: the
    plaintext exists only while the agent runs.
    """
    from sessionseal import cleanup_resumes, resume_session

    if cleanup:
        if session_id or into:
            raise click.UsageError("--cleanup takes no ID and no --into")
        count, kept = cleanup_resumes(obj.vault())
        if as_json:
            echo_json({"removed": count, "kept": kept})
        else:
            say(f"Removed {count} leftover resume home(s)" + (f"; kept {len(kept)}: {', '.join(kept)}" if kept else ""))
        return
    if not session_id or not into:
        raise click.UsageError("give a session ID and --into claude|codex")
    result = resume_session(
        obj.vault(),
        session_id,
        into=into,
        cwd=cwd,
        execute=execute,
        plaintext=plaintext,
        agent_command=shlex.split(agent_command) if agent_command else None,
        dry_run=dry_run,
    )
    if as_json:
        echo_json({**_result_json(result), "dry_run": dry_run})
    elif dry_run:
        say(f"Would write session {result.session_id} for {result.into}: {result.path}")
        click.echo(f"cd {shlex.quote(result.cwd)} && {shlex.join(result.command)}")
    else:
        _report(result)
