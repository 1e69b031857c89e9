"""``sessionseal snapshot``: a consistent copy of the vault for any file backup (docs/sync.md,
"Backups"; docs/secure-deletion.md, "What this means for backups of the vault directory")."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sessionseal.errors import InvalidInput

from ._common import Context, echo_json, handle_errors, interactive, passphrase_source, warn_if_short

__all__ = ["key_group", "kit_passphrase", "snapshot"]


@click.command(name="snapshot")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    help="A new or empty directory outside the vault.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def snapshot(obj: Context, to: Path, as_json: bool) -> None:
    """Copy the vault into DIR under the vault lock: a consistent copy (no lock or temp file,
    owner-only, fsynced) that opens as this vault with its key, for restic, borg or any backup."""
    vault = obj.vault(auto_cleanup=False)  # a backup never starts by removing sessions
    if interactive() and not as_json:
        bar: Any = click.progressbar(length=1, label="Copying", file=sys.stderr)
        with bar:

            def step(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

            result = vault.backups.snapshot(to, progress=step)
    else:
        result = vault.backups.snapshot(to)
    if as_json:
        echo_json(
            {
                "path": str(result.path),
                "files": result.files,
                "bytes": result.bytes,
                "sessions": result.sessions,
                "checkpoints": result.checkpoints,
                "epoch": result.epoch,
                "trimmed": result.trimmed,
                "left_out": result.left_out,
            }
        )
        return
    click.echo(
        f"Snapshot of {result.sessions} session(s) ({result.files} files, {result.bytes} bytes) in {result.path}; "
        f"it opens with this vault's master key of epoch {result.epoch} (after a delete, cleanup or rekey, only "
        "with that epoch's key: keep a recovery kit of the same time, 'sessionseal key export')",
        err=True,
    )


@click.group(name="key")
def key_group() -> None:
    """Recovery kits: the vault's master key under a passphrase of its own, for a fresh machine."""


def kit_passphrase(kit_passphrase_file: str | None, *, confirm: bool) -> Callable[[], str]:
    source = passphrase_source(
        kit_passphrase_file,
        confirm=confirm,
        env=None,  # never from the environment: a kit's passphrase is asked for, or read from a file
        what="Recovery kit passphrase",
        option="--kit-passphrase-file",
    )
    if confirm:
        source = warn_if_short(source, "recovery kit passphrase")

    def get() -> str:
        try:
            return source().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the recovery kit passphrase is not UTF-8 text") from None

    return get


@key_group.command(name="export")
@click.option("--recovery-kit", "recovery_kit", required=True, metavar="FILE", help="The new kit file (0600).")
@click.option(
    "--kit-passphrase-file",
    metavar="FILE",
    help="Read the kit's passphrase from FILE (mode 600); else it is asked twice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def export_kit(obj: Context, recovery_kit: str, kit_passphrase_file: str | None, as_json: bool) -> None:
    """Write a recovery kit: the vault's current master key under a passphrase of its own, which
    restores this vault (or a snapshot of it made before the next delete, cleanup or rekey) on a
    fresh machine with 'sessionseal key import'; with remotes, also their keys, so that
    'sessionseal remote restore' restores from the bucket alone. The key is never printed."""
    from sessionseal import _kitremote

    vault = obj.vault(auto_cleanup=False)
    epoch, remotes = _kitremote.export(vault, recovery_kit, kit_passphrase(kit_passphrase_file, confirm=True)())
    if as_json:
        path = str(Path(recovery_kit).absolute())
        echo_json({"path": path, "vault_id": str(vault.vault_id), "epoch": epoch, "remotes": remotes})
        return
    also = f", and the keys of {remotes} remote(s) ('sessionseal remote restore' on a fresh device)" if remotes else ""
    click.echo(
        f"Wrote a recovery kit of epoch {epoch}{also} to {recovery_kit}: keep it, and its passphrase, apart from "
        "the vault. It opens this vault until its next delete, cleanup or rekey, and copies made before that "
        "for good: export a new one after each (and after each device revocation)",
        err=True,
    )


@key_group.command(name="import")
@click.option("--recovery-kit", "recovery_kit", required=True, metavar="FILE", help="The kit file.")
@click.option("--kit-passphrase-file", metavar="FILE", help="Read the kit's passphrase from FILE (mode 600).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def import_kit(obj: Context, recovery_kit: str, kit_passphrase_file: str | None, as_json: bool) -> None:
    """Restore the vault's master key from a recovery kit into this machine's key store (the OS
    keychain; a passphrase vault that lost its key file gets a new one under the vault passphrase),
    after checking that it opens the vault's key table. A key already there is never replaced."""
    from sessionseal import import_recovery_kit

    try:
        with open(recovery_kit, "rb") as f:
            data = f.read(64 * 1024 + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the recovery kit {recovery_kit}: {exc.strerror}") from None
    epoch, changed = import_recovery_kit(
        obj.vault_path,
        data,
        kit_passphrase(kit_passphrase_file, confirm=False),
        passphrase=passphrase_source(obj.passphrase_file),
        interactive=interactive(),
    )
    if as_json:
        echo_json({"epoch": epoch, "stored": changed})
        return
    where = "was already in the key store" if not changed else "is now in the key store"
    click.echo(f"The vault's master key of epoch {epoch} {where}; the vault opens", err=True)
