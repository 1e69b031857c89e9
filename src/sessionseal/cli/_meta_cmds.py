"""Metadata edits: ``tag``, ``rename``, ``describe``, ``set-status``, ``link`` (docs/cli.md)."""

from __future__ import annotations

import click

from ._common import Context, echo_json, handle_errors
from ._terminal import shown

__all__ = ["describe", "link", "rename", "set_status", "tag"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("session_id", metavar="ID")
@click.argument("changes", metavar="+TAG|-TAG...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the tags afterwards as JSON.")
@click.pass_obj
@handle_errors
def tag(obj: Context, session_id: str, changes: tuple[str, ...], as_json: bool) -> None:
    """Add (+TAG, or TAG) and remove (-TAG) tags."""
    add = [c[1:] if c.startswith("+") else c for c in changes if not c.startswith("-")]
    remove = [c[1:] for c in changes if c.startswith("-")]
    tags = obj.vault().tag(session_id, add=add, remove=remove)
    if as_json:
        echo_json({"id": session_id, "tags": tags})
    else:
        click.echo(shown(" ".join(tags)) or "(no tags)")


@click.command()
@click.argument("session_id", metavar="ID")
@click.argument("title")
@click.pass_obj
@handle_errors
def rename(obj: Context, session_id: str, title: str) -> None:
    """Set a session's title (secrets in it are redacted, as everywhere)."""
    changed = obj.vault().rename(session_id, title)
    click.echo("Renamed" if changed else "The title was already that", err=True)


@click.command()
@click.argument("session_id", metavar="ID")
@click.argument("text")
@click.pass_obj
@handle_errors
def describe(obj: Context, session_id: str, text: str) -> None:
    """Set a session's description (secrets in it are redacted)."""
    changed = obj.vault().describe(session_id, text)
    click.echo("Description set" if changed else "The description was already that", err=True)


@click.command(name="set-status")
@click.argument("session_id", metavar="ID")
@click.argument("status", type=click.Choice(["active", "paused", "completed", "failed", "archived"]))
@click.pass_obj
@handle_errors
def set_status(obj: Context, session_id: str, status: str) -> None:
    """Set a session's status (active and paused sessions are never removed by retention)."""
    changed = obj.vault().set_status(session_id, status)
    click.echo(f"Status set to {status}" if changed else f"The status was already {status}", err=True)


@click.command()
@click.argument("session_id", metavar="ID")
@click.option("--parent", metavar="OTHER", help="The session this one continues or branched from.")
@click.option("--clear", is_flag=True, help="Remove the parent link.")
@click.pass_obj
@handle_errors
def link(obj: Context, session_id: str, parent: str | None, clear: bool) -> None:
    """Link a session to its parent session (shown by 'show')."""
    if (parent is None) == (not clear):
        raise click.UsageError("give --parent OTHER or --clear")
    changed = obj.vault().link(session_id, parent=None if clear else parent)
    click.echo("Linked" if changed and not clear else ("Unlinked" if changed else "Nothing to change"), err=True)
