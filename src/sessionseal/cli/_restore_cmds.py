"""``sessionseal remote restore``: a fresh device restored from a recovery kit and the bucket
alone (docs/sync.md, "Recovery kit"; the steps are :mod:`sessionseal._kitremote`'s)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sessionseal.errors import InvalidInput, VaultNotFound

from ._backup_cmds import kit_passphrase
from ._common import Context, echo_json, handle_errors, interactive, passphrase_source, warn_if_short

if TYPE_CHECKING:
    from sessionseal import Vault

__all__ = ["restore_remote"]


def _open_or_init(obj: Context, key_provider: str) -> tuple[Vault, bool]:
    """The vault at the path, or a new one (as ``init --key-provider`` makes it)."""
    from sessionseal import Vault

    try:
        return obj.vault(auto_cleanup=False), False
    except VaultNotFound:
        pass
    passphrase = (
        warn_if_short(passphrase_source(obj.passphrase_file, confirm=True))() if key_provider == "passphrase" else None
    )
    Vault.init(obj.vault_path, key_provider=key_provider, passphrase=passphrase, interactive=interactive()).close()
    return obj.vault(auto_cleanup=False), True


@click.command(name="restore")
@click.option("--recovery-kit", "recovery_kit", required=True, metavar="FILE", help="A kit 'key export' wrote.")
@click.option("--kit-passphrase-file", metavar="FILE", help="Read the kit's passphrase from FILE (mode 600).")
@click.option("--remote", "kit_remote", metavar="NAME", help="The kit's remote to restore (when it carries several).")
@click.option("--name", "remote_name", metavar="NAME", help="Call the remote NAME here (default: its name in the kit).")
@click.option("--profile", metavar="P", help="The AWS profile whose credentials to use (never stored).")
@click.option("--region", metavar="R", help="The region to sign for (default: the kit's).")
@click.option(
    "--key-provider",
    type=click.Choice(["keychain", "passphrase"]),
    default="keychain",
    show_default=True,
    help="Where a vault made here keeps its new master key (when there is no vault at the path).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def restore_remote(
    obj: Context,
    /,
    *,
    recovery_kit: str,
    kit_passphrase_file: str | None,
    kit_remote: str | None,
    remote_name: str | None,
    profile: str | None,
    region: str | None,
    key_provider: str,
    as_json: bool,
) -> None:
    """Restore from a recovery kit and the bucket alone, on a fresh device: the kit is opened,
    the bucket checked (its remote, its newest epoch, each log against the kit's witnesses),
    this vault (made when there is none) enrols itself as a new device of the remote with the
    kit's key, and every session is pulled. Nothing is kept when a check fails. Audited."""
    from sessionseal import _kitremote, _recoverykit

    try:
        with open(recovery_kit, "rb") as f:
            data = f.read(_recoverykit.MAX_KIT + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the recovery kit {recovery_kit}: {exc.strerror}") from None
    kit = _recoverykit.parse(data)
    unlocked = _kitremote.unlock(kit, kit_passphrase(kit_passphrase_file, confirm=False)(), kit_remote)
    vault, created = _open_or_init(obj, key_provider)
    if not as_json:
        click.echo(f"Checking the remote and enrolling this device (epoch {unlocked.part.epoch})...", err=True)

    def progress(done: int, total: int, nbytes: int) -> None:
        if done < total and not as_json:
            click.echo(f"applied {done:,} of {total:,} entries, {nbytes / 1e6:.1f} MB fetched", err=True)

    done = _kitremote.restore(vault, unlocked, name=remote_name, profile=profile, region=region, progress=progress)
    pulled = done.pull
    if as_json:
        echo_json(
            {
                **pulled.counts(),  # the pull's "devices" counts the logs read, this device's included
                "remote": done.remote,
                "device": str(done.device),
                "epoch": done.epoch,
                "device_records": done.devices,
                "vault_created": created,
                "vault_path": str(Path(vault.path)),
            }
        )
        return
    made = "Created the vault and restored" if created else "Restored"
    click.echo(
        f"{made} remote {done.remote}: this device ({done.device.hex}) is enrolled under epoch {done.epoch}; "
        f"{pulled.put:,} sessions, {pulled.appended:,} appends and {pulled.meta:,} metadata changes applied from "
        f"{done.devices} device(s). Keep a new recovery kit of this vault ('sessionseal key export')",
        err=True,
    )
