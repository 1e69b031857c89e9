"""``sessionseal head``: the vault's head outside the vault (issue 20; docs/keychain.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import click

from ._common import Context, echo_json, handle_errors

if TYPE_CHECKING:
    from sessionseal import HeadStatus

__all__ = ["head_group"]

#: What a passphrase vault can and cannot see (its key file is inside the vault).
_INSIDE: Final = (
    "this vault's key file is inside the vault: a rollback of the whole directory is consistent and "
    "undetectable from inside. Keep the head above outside the vault (another machine, a password "
    "manager, your notes) and check it with 'sessionseal verify --expect-head HEAD'"
)


def _doc(status: HeadStatus) -> dict[str, Any]:
    at = status.recorded[1]
    return {
        "head": status.kept_head,
        "counter": status.counter,
        "tracked": status.tracked,
        "kept_outside": status.kept_outside,
        "recorded_head": status.recorded[0],
        "recorded_at": datetime.fromtimestamp(at, UTC).isoformat() if at else None,
        "keychain_head": status.key_store,
        "rolled_back": status.rolled_back,
        "accepted": status.accepted,
    }


def _render(status: HeadStatus) -> None:
    click.echo(status.kept_head)
    if not status.tracked:
        click.echo(
            "the vault's state is not recorded yet (made before sessionseal recorded it): run 'sessionseal migrate'",
            err=True,
        )
    elif status.rolled_back:
        click.echo(
            f"ROLLED BACK: the key table records head {status.recorded[0]}, the OS keychain {status.key_store}; "
            "writes are refused. If the restore was deliberate: 'sessionseal head accept'",
            err=True,
        )
    elif status.kept_outside:
        click.echo(
            f"the OS keychain keeps head {status.key_store}; the key table last wrote it at state "
            f"{status.recorded[0]} (now {status.counter}): they agree",
            err=True,
        )
    else:
        click.echo(_INSIDE, err=True)


@click.group(name="head")
def head_group() -> None:
    """The vault's head: its state counter, kept outside the vault to see a rollback."""


@head_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def show(obj: Context, as_json: bool) -> None:
    """Print the vault's head (keep it to check later with 'verify --expect-head'), and whether
    the key table agrees with the head the OS keychain keeps."""
    status = obj.vault().head()
    if as_json:
        echo_json(_doc(status) | ({} if status.kept_outside else {"note": _INSIDE}))
    else:
        _render(status)


@head_group.command(name="accept")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def accept(obj: Context, as_json: bool) -> None:
    """Accept a vault restored from a backup on purpose: its key table becomes the vault's state
    and the OS keychain's head follows it (audited as 'head.accept')."""
    status = obj.vault(auto_cleanup=False).head(accept=True)
    if as_json:
        echo_json(_doc(status))
    elif not status.kept_outside:
        click.echo("Nothing to accept: a passphrase vault keeps no head outside it; " + _INSIDE, err=True)
    elif status.accepted:
        click.echo(f"Accepted the vault as it is; the OS keychain now keeps head {status.key_store}", err=True)
    else:
        click.echo("Nothing to accept: the key table and the OS keychain's head agree", err=True)
