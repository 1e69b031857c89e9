"""Checkpoints and forks: ``checkpoint create|list|restore|delete`` and ``fork`` (docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import Context, echo_json, handle_errors
from ._terminal import say, shown

if TYPE_CHECKING:
    from sessionseal import Checkpoint

__all__ = ["checkpoint_group", "fork"]


def _line(cp: Checkpoint) -> str:
    when = cp.created_at[:19].replace("T", " ")
    reason = "" if cp.reason == "manual" else f"  ({cp.reason})"
    return f"#{cp.number:<4} {when}  {cp.message_count:>6} msgs  {cp.name}{reason}"


@click.group(name="checkpoint")
def checkpoint_group() -> None:
    """Named restore points of a session: create, list, restore, delete."""


@checkpoint_group.command(name="create")
@click.argument("session_id", metavar="ID")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the checkpoint as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_create(obj: Context, session_id: str, name: str | None, as_json: bool) -> None:
    """Save the session as it is now under NAME (default: checkpoint-N)."""
    cp = obj.vault().checkpoint(session_id, name)
    if as_json:
        echo_json(cp.to_json())
    else:
        say(f"Checkpoint #{cp.number} '{cp.name}' of {session_id} saved ({cp.message_count} messages)")


@checkpoint_group.command(name="list")
@click.argument("session_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def checkpoint_list(obj: Context, session_id: str, as_json: bool) -> None:
    """List a session's checkpoints, oldest first."""
    found = obj.vault().checkpoints(session_id)
    if as_json:
        echo_json([cp.to_json() for cp in found])
        return
    if not found:
        click.echo(f"Session {session_id} has no checkpoints; see 'sessionseal checkpoint create'", err=True)
        return
    for cp in found:
        click.echo(shown(_line(cp)))


@checkpoint_group.command(name="restore")
@click.argument("session_id", metavar="ID")
@click.argument("ref", metavar="NAME|N")
@click.option("--fork", "as_fork", is_flag=True, help="Restore it as a new, linked session; leave this one as it is.")
@click.option("--title", help="With --fork: the new session's title.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_restore(
    obj: Context, *, session_id: str, ref: str, as_fork: bool, title: str | None, as_json: bool
) -> None:
    """Put a session's content back as it was at a checkpoint.

    Nothing is lost: the session as it is now is first saved as a 'before-restore'
    checkpoint, and the restored content becomes a new version.  Title, tags, status,
    pin and links stay as they are now.  With --fork the session is left alone and the
    checkpoint becomes a new session linked to it.
    """
    if title is not None and not as_fork:
        raise click.UsageError("--title goes with --fork")
    vault = obj.vault()
    if as_fork:
        new_id = vault.fork(session_id, checkpoint=ref, title=title)
        if as_json:
            echo_json({"id": session_id, "checkpoint": ref, "fork": str(new_id)})
        else:
            click.echo(str(new_id))
            click.echo(f"Checkpoint {ref} of {session_id} restored as the new session above", err=True)
        return
    saved = vault.restore_checkpoint(session_id, ref)
    if as_json:
        echo_json({"id": session_id, "checkpoint": ref, "saved_before_restore": saved.to_json()})
    else:
        say(
            f"Restored {session_id} to checkpoint {ref}; what it held before is checkpoint #{saved.number} "
            f"'{saved.name}' (restore that to undo)"
        )


@checkpoint_group.command(name="delete")
@click.argument("session_id", metavar="ID")
@click.argument("ref", metavar="NAME|N")
@click.option("--json", "as_json", is_flag=True, help="Print the deleted checkpoint as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_delete(obj: Context, session_id: str, ref: str, as_json: bool) -> None:
    """Delete a checkpoint (its file is overwritten; the session is untouched)."""
    cp = obj.vault().delete_checkpoint(session_id, ref)
    if as_json:
        echo_json(cp.to_json())
    else:
        say(f"Deleted checkpoint #{cp.number} '{cp.name}' of {session_id}")


@click.command()
@click.argument("session_id", metavar="ID")
@click.option("--at", "at", metavar="NAME|N", help="Fork the session as it was at this checkpoint.")
@click.option("--title", help="The new session's title (default: the same, marked '(fork)').")
@click.option(
    "--continue",
    "continuation",
    is_flag=True,
    help="A continuation: carry the state (directory, environment, config, tags) on, not the conversation.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new id as JSON.")
@click.pass_obj
@handle_errors
def fork(
    obj: Context, *, session_id: str, at: str | None, title: str | None, continuation: bool, as_json: bool
) -> None:
    """Start a new session from ID, linked to it ('show' prints the link); print its id."""
    new_id = obj.vault().fork(session_id, checkpoint=at, title=title, continuation=continuation)
    if as_json:
        echo_json({"id": str(new_id), "from": session_id, "checkpoint": at, "continuation": continuation})
    else:
        click.echo(str(new_id))
