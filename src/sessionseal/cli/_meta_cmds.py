"""Metadata edits: ``tag``, ``rename``, ``describe``, ``set-status``, ``link`` (docs/cli.md)."""

from __future__ import annotations

import click

from sessionseal.errors import InvalidInput

from ._common import Context, echo_json, handle_errors, private_text, private_words, text_file_option
from ._terminal import shown

__all__ = ["describe", "link", "rename", "set_status", "tag"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("session_id", metavar="ID")
@click.argument("changes", metavar="[+TAG|-TAG|-]...", nargs=-1)
@text_file_option("--changes-file", "the changes (+TAG -TAG TAG, blank- or line-separated)")
@click.option("--json", "as_json", is_flag=True, help="Print the tags afterwards as JSON.")
@click.pass_obj
@handle_errors
def tag(obj: Context, session_id: str, changes: tuple[str, ...], changes_file: str | None, as_json: bool) -> None:
    """Add (+TAG, or TAG) and remove (-TAG) tags.

    Given -, the changes are read from stdin; given none, they are asked for at a terminal.
    """
    changes = private_words(
        changes,
        changes_file,
        what="the tag changes",
        name="+TAG|-TAG",
        option="--changes-file",
        dash=True,
        prompt="Tag changes (+TAG -TAG TAG)",
    )
    if not changes:
        raise InvalidInput("no tag changes were given; give +TAG, -TAG or TAG")
    add = [c[1:] if c.startswith("+") else c for c in changes if not c.startswith("-")]
    remove = [c[1:] for c in changes if c.startswith("-")]
    tags = obj.vault().tag(session_id, add=add, remove=remove)
    if as_json:
        echo_json({"id": session_id, "tags": tags})
    else:
        click.echo(shown(" ".join(tags)) or "(no tags)")


@click.command()
@click.argument("session_id", metavar="ID")
@click.argument("title", metavar="[TITLE|-]", required=False)
@text_file_option("--title-file", "the title")
@click.pass_obj
@handle_errors
def rename(obj: Context, session_id: str, title: str | None, title_file: str | None) -> None:
    """Set a session's title (secrets in it are redacted, as everywhere).

    TITLE - reads it from stdin; left out, it is asked for at a terminal.
    """
    text = private_text(
        title, title_file, what="the title", name="TITLE", option="--title-file", dash=True, prompt="Title"
    )
    assert text is not None
    changed = obj.vault().rename(session_id, text)
    click.echo("Renamed" if changed else "The title was already that", err=True)


@click.command()
@click.argument("session_id", metavar="ID")
@click.argument("text", metavar="[TEXT|-]", required=False)
@text_file_option("--text-file", "the description")
@click.pass_obj
@handle_errors
def describe(obj: Context, session_id: str, text: str | None, text_file: str | None) -> None:
    """Set a session's description (secrets in it are redacted).

    TEXT - reads it from stdin; left out, it is asked for at a terminal.
    """
    description = private_text(
        text, text_file, what="the description", name="TEXT", option="--text-file", dash=True, prompt="Description"
    )
    assert description is not None
    changed = obj.vault().describe(session_id, description)
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
