"""``sessionseal snapshot``: a consistent copy of the vault for any file backup (docs/sync.md,
"Backups"; docs/secure-deletion.md, "What this means for backups of the vault directory")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import Context, echo_json, handle_errors, interactive

__all__ = ["snapshot"]


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
