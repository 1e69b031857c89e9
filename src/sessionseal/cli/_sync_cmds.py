"""``sessionseal sync``: this device's sessions to a remote (docs/sync.md, "Push")."""

from __future__ import annotations

import sys
import time

import click

from ._common import Context, echo_json, handle_errors

__all__ = ["sync_command"]

#: Seconds between two progress lines of a long push (the first comes after as long).
_PROGRESS_EVERY = 2.0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


@click.command(name="sync")
@click.argument("remote_name", metavar="[NAME]", required=False)
@click.option("--push", "push", is_flag=True, help="Send this device's new and changed sessions to the remote.")
@click.option("--pull", "pull", is_flag=True, help="Not built yet (docs/sync.md, 'What is coming').")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; write nothing, here or on the remote.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def sync_command(
    obj: Context, /, *, remote_name: str | None, push: bool, pull: bool, dry_run: bool, as_json: bool
) -> None:
    """Sync the vault through a remote (the only one, or NAME): --push sends the sessions that
    are new or changed since the last push (appended turns as just the new events), resumes a
    push that was killed, and is audited (counts and bytes only)."""
    if pull or not push:
        raise click.UsageError("only 'sync --push' is built so far; 'sync --pull' is coming (docs/sync.md)")
    last = [time.monotonic()]

    def progress(done: int, total: int, nbytes: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY and done < total:
            last[0] = now
            click.echo(f"pushed {done:,} of {total:,} sessions, {_mb(nbytes)} sent", err=True)

    result = obj.vault(auto_cleanup=False).remotes.push(remote_name, dry_run=dry_run, progress=progress)
    if as_json:
        echo_json({"remote": result.remote, "device": str(result.device), **result.counts()})
        return
    would = "Would send" if dry_run else "Sent"
    what = f"{result.put} new or rewritten, {result.appended} appends, {result.meta} metadata changes"
    click.echo(
        f"{would} {result.sessions:,} sessions to {result.remote} ({what}): {result.entries} log entries, "
        f"{result.objects} objects, {_mb(result.bytes)}"
        + (f"; {result.resent} left by an interrupted push sent again" if result.resent else ""),
        err=True,
    )
    sys.stderr.flush()
