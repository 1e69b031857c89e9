"""``sessionseal passphrase change``: a passphrase vault's passphrase (docs/cli.md, docs/keychain.md)."""

from __future__ import annotations

import click

from ._common import Context, echo_json, handle_errors, passphrase_source, warn_if_short

__all__ = ["passphrase_group"]


@click.group(name="passphrase")
def passphrase_group() -> None:
    """Manage the passphrase of a passphrase vault."""


@passphrase_group.command(name="change")
@click.option(
    "--new-passphrase-file",
    metavar="FILE",
    help="Read the new passphrase from FILE (mode 600); else it is asked twice at a terminal.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def change(obj: Context, new_passphrase_file: str | None, as_json: bool) -> None:
    """Re-wrap the vault's master keys under a new passphrase (and a new salt).

    The current passphrase comes as for every command (--passphrase-file,
    SESSIONSEAL_PASSPHRASE, a prompt) and is checked first.  The new one never comes from the
    environment: --new-passphrase-file, or a prompt with confirmation.  The key file is
    replaced atomically and the old one's content overwritten; the change is audited.  The
    master keys stay the same: if the old passphrase may have leaked with a copy of the vault,
    run 'sessionseal rekey' afterwards.
    """
    vault = obj.vault()
    new = passphrase_source(
        new_passphrase_file,
        confirm=True,
        env=None,
        what="New vault passphrase",
        option="--new-passphrase-file",
    )
    overwritten = vault.change_passphrase(warn_if_short(new, "new passphrase"))
    if as_json:
        echo_json({"vault_id": str(vault.vault_id), "changed": True, "old_key_file_overwritten": overwritten})
        return
    click.echo(
        "Changed the vault's passphrase; the old one no longer opens this vault (old copies of the vault "
        "still open with it: run 'sessionseal rekey' if it may have leaked)",
        err=True,
    )
