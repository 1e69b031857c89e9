"""``sessionseal hook ...``: what the agents' hooks run (docs/capture/hooks.md).

Each command reads the hook's JSON payload on stdin, imports the transcript it names, prints
nothing and exits 0 within :data:`_HOOK_DEADLINE`: a hook must never fail or hold up the agent,
and a keychain that does not answer must not keep it waiting.  What happened is in the audit
log (``import-transcripts`` records, or nothing when the vault could not be opened).

Runs for one session may overlap (Claude Code's Stop fires each turn, in the background): the
importer takes one transcript at a time under the vault's import lock, so the second run finds
the first one's work and appends only what is newer.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NoReturn

import click

from ._common import Context

__all__ = ["hook_group"]

#: The hook gives up after this long and exits 0: it must never hold the agent up.
_HOOK_DEADLINE: Final = 25.0
#: A Codex session id, as its rollout files end with it (rollout-<time>-<uuid>.jsonl).
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _transcript_path(payload: dict[str, Any]) -> str | None:
    path = payload.get("transcript_path")
    return path if isinstance(path, str) and path else None


def _codex_rollout(payload: dict[str, Any]) -> str | None:
    """The payload's path; where Codex gives none (``transcript_path`` may be null,
    developers.openai.com/codex/hooks), the rollout of its ``session_id`` under
    ``$CODEX_HOME/sessions/YYYY/MM/DD/``, the newest if there are several."""
    path = _transcript_path(payload)
    if path is not None:
        return path
    sid = payload.get("session_id")
    if not isinstance(sid, str) or not _UUID.fullmatch(sid):
        return None  # only a plain id goes into the pattern
    from ._hooks import home

    found = [
        p
        for suffix in (".jsonl", ".jsonl.zst")
        for p in (home("codex") / "sessions").glob(f"[0-9]*/[0-9]*/[0-9]*/rollout-*-{sid}{suffix}")
    ]
    return str(max(found, key=lambda p: p.name)) if found else None


def run_hook(obj: Context, find: Callable[[dict[str, Any]], str | None]) -> NoReturn:
    """Import the transcript *find* names in the payload on stdin; exit 0 within the deadline."""
    done = threading.Event()
    obj.in_hook = True  # a tier merge is left to a detached child, or pending: never run here

    def work() -> None:
        try:
            payload = json.loads(sys.stdin.buffer.read(1 << 20) or b"null")
            path = find(payload) if isinstance(payload, dict) else None
            if path is not None:
                obj.vault().import_transcripts([Path(path)])  # outcomes and failures are audited
                obj.close()
        except Exception:  # noqa: S110 - a hook never fails the agent; the vault audits what it can
            pass
        finally:
            done.set()

    # The payload is read in the worker too: a stdin that never closes must not hang the agent.
    threading.Thread(target=work, daemon=True).start()
    done.wait(_HOOK_DEADLINE)
    sys.stdout.flush()
    os._exit(0)  # a worker still stuck (a wedged keychain) must not keep the agent waiting


@click.group(name="hook")
def hook_group() -> None:
    """Entry points for agent hooks (they never fail the agent); 'sessionseal hooks install' sets them up."""


@hook_group.command(name="claude-session-end")
@click.pass_obj
def claude_session_end(obj: Context) -> None:
    """Import the session Claude Code just ended: its SessionEnd hook payload on stdin.

    Always exits 0 within a bounded time, prints nothing; failures go to the audit log.
    """
    run_hook(obj, _transcript_path)


@hook_group.command(name="claude-stop")
@click.pass_obj
def claude_stop(obj: Context) -> None:
    """Import what a Claude Code turn added: its Stop hook payload on stdin (each turn, in the background)."""
    run_hook(obj, _transcript_path)


@hook_group.command(name="claude-precompact")
@click.pass_obj
def claude_precompact(obj: Context) -> None:
    """Import a Claude Code session before it is compacted: its PreCompact hook payload on stdin."""
    run_hook(obj, _transcript_path)


@hook_group.command(name="codex-stop")
@click.pass_obj
def codex_stop(obj: Context) -> None:
    """Import what a Codex turn added: its Stop hook payload on stdin (the rollout by session id
    when the payload has no transcript path)."""
    run_hook(obj, _codex_rollout)


@hook_group.command(name="gemini-session-end")
@click.pass_obj
def gemini_session_end(obj: Context) -> None:
    """Import the session Gemini CLI just ended: its SessionEnd hook payload on stdin."""
    run_hook(obj, _transcript_path)
