"""Taking in agent transcripts: ``import-transcripts`` (docs/importing.md; the hooks are in _hook_cmds.py)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from ._common import Context, echo_json, handle_errors, interactive

if TYPE_CHECKING:
    from sessionseal import TranscriptOutcome

__all__ = ["import_transcripts"]


def _outcome_json(o: TranscriptOutcome) -> dict[str, Any]:
    return {
        "path": o.path,
        "tool": o.tool,
        "source_id": o.source_id,
        "session_id": str(o.session_id) if o.session_id else None,
        "action": o.action,
        "messages": o.messages,
        "unknown_records": o.unknown,
        "tool_results": o.tool_results,
        "redactions": o.redactions,
        "removed": o.removed,
        "kept": o.kept,
        "error": o.error,
        "warnings": o.warnings,
    }


def _render(outcomes: list[TranscriptOutcome], dry_run: bool) -> None:
    from rich.table import Table

    from ._render import stdout_console

    console, t = stdout_console()  # file names and errors are shown literally, escapes visible
    table = Table(show_edge=False, pad_edge=False)
    for col in ("tool", "file", "action", "msgs", "redacted", "kept raw", "session"):
        table.add_column(col, justify="right" if col in ("msgs", "redacted", "kept raw") else "left")
    for o in outcomes:
        action = o.action + (" (would)" if dry_run and o.action in ("new", "appended", "updated") else "")
        if o.removed:
            action += ", original removed"
        elif o.kept:
            action += f", original kept ({o.kept})"
        table.add_row(
            o.tool or "-",
            t(os.path.basename(o.path)),
            t(action if not o.error else f"{action}: {o.error}"),
            str(o.messages),
            str(sum(o.redactions.values())),
            str(sum(o.unknown.values())),
            str(o.session_id or "-"),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    console.print(", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no transcripts found")
    originals = _originals(outcomes)
    if originals["removed"] or originals["kept"]:
        kept = ", ".join(f"{n} {why}" for why, n in sorted(originals["kept"].items()))
        console.print(f"originals: {originals['removed']} removed" + (f", kept: {kept}" if kept else ""))


def _originals(outcomes: list[TranscriptOutcome]) -> dict[str, Any]:
    """How many originals were removed, and how many kept for each reason."""
    kept: dict[str, int] = {}
    for o in outcomes:
        if o.kept:
            kept[o.kept] = kept.get(o.kept, 0) + 1
    return {"removed": sum(o.removed for o in outcomes), "kept": kept}


@click.command(name="import-transcripts")
@click.option(
    "--claude",
    "claude",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="Claude Code transcripts (default DIR: $CLAUDE_CONFIG_DIR/projects or ~/.claude/projects).",
)
@click.option(
    "--codex",
    "codex",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="Codex rollouts, .jsonl and .jsonl.zst (default DIR: $CODEX_HOME/sessions or ~/.codex/sessions).",
)
@click.option(
    "--gemini",
    "gemini",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="Gemini CLI sessions, .json and .jsonl (default DIR: $GEMINI_CLI_HOME/.gemini/tmp or ~/.gemini/tmp).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be imported; store nothing.")
@click.option("--since", metavar="WHEN", help="Only files modified at or after WHEN (a date, RFC 3339, or 7d ago).")
@click.option(
    "--remove-originals",
    is_flag=True,
    help="Overwrite and delete each file once its import is verified by reading it back, if it ends with a "
    "complete line, is quiet and (Linux) open for writing nowhere; a file kept says why.",
)
@click.option(
    "--quiet-period",
    type=click.IntRange(min=0),
    default=None,
    metavar="SECONDS",
    help="With --remove-originals: remove only files unmodified for this long (default 600).",
)
@click.option("--yes", "-y", is_flag=True, help="With --remove-originals: do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file, then a summary.")
@click.pass_obj
@handle_errors
def import_transcripts(
    obj: Context,
    /,
    *,
    claude: str | None,
    codex: str | None,
    gemini: str | None,
    dry_run: bool,
    since: str | None,
    remove_originals: bool,
    quiet_period: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Import Claude Code, Codex and Gemini CLI transcripts: sanitized, encrypted, idempotent.

    Unchanged files are skipped, grown ones have their new turns appended; each session is
    tagged claude-code, codex or gemini-cli and keeps the transcript's times, directory and
    models.  Give --claude, --codex, --gemini, or several.
    """
    from sessionseal import find_transcripts

    from ._audit_cmds import parse_when

    if claude is None and codex is None and gemini is None:
        raise click.UsageError("give --claude [DIR], --codex [DIR], --gemini [DIR], or several")
    if quiet_period is not None and not remove_originals:
        raise click.UsageError("--quiet-period goes with --remove-originals")
    when = parse_when(since, "--since") if since else None
    paths = find_transcripts(
        claude=False if claude is None else (claude or True),
        codex=False if codex is None else (codex or True),
        gemini=False if gemini is None else (gemini or True),
    )
    if remove_originals and not dry_run and paths and not yes:
        if not interactive():
            raise click.UsageError("refusing to delete originals without confirmation; pass --yes")
        click.confirm(f"Delete {len(paths)} original file(s) once each is imported and verified?", abort=True, err=True)
    vault = obj.vault()
    if interactive() and not as_json and len(paths) > 1:
        from rich.progress import Progress

        with Progress(transient=True, console=None) as bar:
            task = bar.add_task("importing", total=len(paths))
            outcomes = vault.import_transcripts(
                paths,
                dry_run=dry_run,
                since=when,
                remove_originals=remove_originals,
                quiet_period=quiet_period,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    else:
        outcomes = vault.import_transcripts(
            paths, dry_run=dry_run, since=when, remove_originals=remove_originals, quiet_period=quiet_period
        )
    if as_json:
        summary: dict[str, Any] = {"dry_run": dry_run, "files": [_outcome_json(o) for o in outcomes]}
        if remove_originals and not dry_run:
            summary["originals"] = _originals(outcomes)
        echo_json(summary)
    else:
        _render(outcomes, dry_run)
    if any(o.action == "failed" for o in outcomes):
        sys.exit(9)
