"""``resume --into``: a stored session back in its agent (docs/capture/resume.md).  The options
are added to the ``resume`` command, which prints a session without them."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ._common import Context, echo_json
from ._terminal import say

if TYPE_CHECKING:
    from sessionseal import ResumeResult

__all__ = ["resume_into_options", "run_agent_resume", "wants_agent"]


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


_OPTIONS = [
    click.option(
        "--into",
        "into",
        type=click.Choice(["claude", "codex", "gemini"]),
        help="Resume it in this agent (the one it came from).",
    ),
    click.option(
        "--cwd",
        "cwd",
        metavar="DIR",
        help="With --into: the directory to resume from (default: the session's own if it exists, else here).",
    ),
    click.option(
        "--exec/--no-exec",
        "execute",
        default=True,
        help="With --into: run the agent in a private home and seal its session back when it exits (default); "
        "--no-exec only writes the session into the agent's own directory (needs --plaintext).",
    ),
    click.option("--plaintext", is_flag=True, help="With --no-exec: accept leaving the session there in plaintext."),
    click.option(
        "--agent-command",
        "agent_command",
        metavar="CMD",
        envvar="SESSIONSEAL_RESUME_AGENT",
        help="With --into: the command that stands for the agent (a wrapper; tests): its words, then the agent's "
        "resume arguments [env SESSIONSEAL_RESUME_AGENT].",
    ),
    click.option(
        "--dry-run", is_flag=True, help="With --into: say where it would be written and the command; do nothing."
    ),
    click.option(
        "--cleanup",
        "cleanup",
        is_flag=True,
        help="Instead: seal back and shred what killed resumes left in the vault's run/ directory.",
    ),
]


def resume_into_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``resume --into`` and ``resume --cleanup``, added to ``resume``."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def wants_agent(opts: dict[str, Any]) -> bool:
    """Whether ``resume`` was asked to resume in an agent (or to clean up), not to print."""
    if opts["into"] or opts["cleanup"]:
        return True
    given = [name for name in ("cwd", "plaintext", "dry_run") if opts[name]]
    if given or not opts["execute"]:
        raise click.UsageError("--cwd, --no-exec, --plaintext and --dry-run go with --into")
    return False


def run_agent_resume(obj: Context, session_id: str | None, as_json: bool, opts: dict[str, Any]) -> None:
    """``resume --into`` (a session, found by the caller) and ``resume --cleanup``."""
    from sessionseal import cleanup_resumes, resume_session

    if opts["cleanup"]:
        if session_id or opts["into"]:
            raise click.UsageError("--cleanup takes no ID and no --into")
        count, kept = cleanup_resumes(obj.vault())
        if as_json:
            echo_json({"removed": count, "kept": kept})
        else:
            say(f"Removed {count} leftover resume home(s)" + (f"; kept {len(kept)}: {', '.join(kept)}" if kept else ""))
        return
    assert session_id is not None
    command = opts["agent_command"]
    result = resume_session(
        obj.vault(),
        session_id,
        into=opts["into"],
        cwd=opts["cwd"],
        execute=opts["execute"],
        plaintext=opts["plaintext"],
        agent_command=shlex.split(command) if command else None,
        dry_run=opts["dry_run"],
    )
    if as_json:
        echo_json({**_result_json(result), "dry_run": opts["dry_run"]})
    elif opts["dry_run"]:
        say(f"Would write session {result.session_id} for {result.into}: {result.path}")
        click.echo(f"cd {shlex.quote(result.cwd)} && {shlex.join(result.command)}")
    else:
        _report(result)
