"""Checkpoints and forks: ``checkpoint create|list|restore|delete`` and ``fork`` (docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import Context, echo_json, handle_errors, private_text, text_file_option
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
@click.argument("name", metavar="[NAME|-]", required=False)
@text_file_option("--name-file", "the checkpoint's name")
@click.option("--json", "as_json", is_flag=True, help="Print the checkpoint as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_create(obj: Context, session_id: str, name: str | None, name_file: str | None, as_json: bool) -> None:
    """Save the session as it is now under NAME (default: checkpoint-N; - reads it from stdin)."""
    name = private_text(name, name_file, what="the checkpoint name", name="NAME", option="--name-file", dash=True)
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


def _ref(ref: str | None, ref_file: str | None) -> str:
    """The checkpoint a command names: NAME|N, - (stdin), --name-file, or a prompt."""
    found = private_text(
        ref,
        ref_file,
        what="the checkpoint name",
        name="NAME|N",
        option="--name-file",
        dash=True,
        prompt="Checkpoint (name or number)",
    )
    assert found is not None
    return found


@checkpoint_group.command(name="restore")
@click.argument("session_id", metavar="ID")
@click.argument("ref", metavar="[NAME|N|-]", required=False)
@text_file_option("--name-file", "the checkpoint's name or number")
@click.option("--fork", "as_fork", is_flag=True, help="Restore it as a new, linked session; leave this one as it is.")
@text_file_option("--title-file", "the new session's title (with --fork)")
@click.option("--title", help="With --fork: the new session's title (visible in the process list).")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_restore(
    obj: Context,
    *,
    session_id: str,
    ref: str | None,
    name_file: str | None,
    as_fork: bool,
    title_file: str | None,
    title: str | None,
    as_json: bool,
) -> None:
    """Put a session's content back as it was at a checkpoint.

    Nothing is lost: the session as it is now is first saved as a 'before-restore'
    checkpoint, and the restored content becomes a new version.  Title, tags, status,
    pin and links stay as they are now.  With --fork the session is left alone and the
    checkpoint becomes a new session linked to it.
    """
    if (title is not None or title_file is not None) and not as_fork:
        raise click.UsageError("--title goes with --fork")
    ref = _ref(ref, name_file)
    title = private_text(title, title_file, what="the title", name="--title", option="--title-file")
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
@click.argument("ref", metavar="[NAME|N|-]", required=False)
@text_file_option("--name-file", "the checkpoint's name or number")
@click.option("--json", "as_json", is_flag=True, help="Print the deleted checkpoint as JSON.")
@click.pass_obj
@handle_errors
def checkpoint_delete(obj: Context, session_id: str, ref: str | None, name_file: str | None, as_json: bool) -> None:
    """Delete a checkpoint (its file is overwritten; the session is untouched)."""
    cp = obj.vault().delete_checkpoint(session_id, _ref(ref, name_file))
    if as_json:
        echo_json(cp.to_json())
    else:
        say(f"Deleted checkpoint #{cp.number} '{cp.name}' of {session_id}")


@click.command()
@click.argument("session_id", metavar="ID")
@click.option("--at", "at", metavar="NAME|N", help="Fork the session as it was at this checkpoint.")
@text_file_option("--at-file", "the --at checkpoint's name or number")
@click.option("--title", help="The new session's title (default: the same, marked '(fork)').")
@text_file_option("--title-file", "the new session's title")
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
    obj: Context,
    *,
    session_id: str,
    at: str | None,
    at_file: str | None,
    title: str | None,
    title_file: str | None,
    continuation: bool,
    as_json: bool,
) -> None:
    """Start a new session from ID, linked to it ('show' prints the link); print its id."""
    at = private_text(at, at_file, what="the checkpoint name", name="--at", option="--at-file")
    title = private_text(title, title_file, what="the title", name="--title", option="--title-file")
    new_id = obj.vault().fork(session_id, checkpoint=at, title=title, continuation=continuation)
    if as_json:
        echo_json({"id": str(new_id), "from": session_id, "checkpoint": at, "continuation": continuation})
    else:
        click.echo(str(new_id))
