"""``sessionseal sync``: this device's sessions to a remote and the other devices' into this
vault (docs/sync.md, "Push" and "Pull")."""

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
@click.option(
    "--pull", "pull", is_flag=True, help="Check every device's log on the remote and apply the other devices' changes."
)
@click.option("--dry-run", is_flag=True, help="Say what would be sent or applied; write nothing, here or there.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--prune",
    "prune",
    is_flag=True,
    help="Delete this device's objects on the remote that no entry of its log names (a killed push's).",
)
@click.option(
    "--min-age",
    type=click.FloatRange(0),
    default=24 * 3600.0,
    show_default=True,
    metavar="SECONDS",
    help="With --prune: keep objects younger than this (by the server's clock).",
)
@click.option("--auto", "auto", is_flag=True, hidden=True, help="The background push a write starts (remote auto).")
@click.pass_obj
@handle_errors
def sync_command(
    obj: Context,
    /,
    *,
    remote_name: str | None,
    push: bool,
    pull: bool,
    prune: bool,
    min_age: float,
    dry_run: bool,
    as_json: bool,
    auto: bool,
) -> None:
    """Sync the vault through a remote (the only one, or NAME): --push sends the sessions that
    are new or changed since the last push (appended turns as just the new events), resumes a
    push that was killed; --pull reads every device's log there and checks it (cut, edited,
    reordered or rolled back: exit 19), then applies the other devices' new sessions, appends
    and metadata (a diverged line becomes a linked fork), resuming a pull that was killed.
    Audited (counts only)."""
    if auto:
        _auto(obj)
        return
    if push + pull + prune != 1:
        raise click.UsageError("give one of --push, --pull or --prune")
    if prune:
        _prune(obj, remote_name, min_age=min_age, dry_run=dry_run, as_json=as_json)
        return
    if pull:
        _pull(obj, remote_name, dry_run=dry_run, as_json=as_json)
        return
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
        + (f"; {result.resent} left by an interrupted push sent again" if result.resent else "")
        + _ckpts(result.checkpoints, result.checkpoints_deleted, "would be sent" if dry_run else "sent")
        + (
            f"; {result.tombstoned} deleted sessions tombstoned, {result.objects_deleted} objects deleted"
            + (f" ({result.objects_kept} the bucket refused to delete)" if result.objects_kept else "")
            if result.tombstoned or result.objects_deleted or result.objects_kept
            else ""
        ),
        err=True,
    )
    sys.stderr.flush()


def _prune(obj: Context, remote_name: str | None, *, min_age: float, dry_run: bool, as_json: bool) -> None:
    result = obj.vault(auto_cleanup=False).remotes.prune(remote_name, min_age=min_age, dry_run=dry_run)
    if as_json:
        echo_json({"remote": result.remote, "device": str(result.device), **result.counts(), "why": result.unproven})
        return
    if result.unproven is not None:
        click.echo(
            f"Deleted nothing on {result.remote}: {result.unproven} ({result.objects} objects of this device, "
            f"{result.entries} log entries read)",
            err=True,
        )
        return
    would = "Would delete" if dry_run else "Deleted"
    click.echo(
        f"{would} {result.deleted} of {result.objects} objects of this device on {result.remote} that no entry of "
        f"its log names ({_mb(result.bytes)}); {result.named} named, kept"
        + (f"; {result.young} unnamed but younger than {min_age:g} s, kept" if result.young else "")
        + (f"; {result.foreign} not content objects, kept" if result.foreign else ""),
        err=True,
    )


def _auto(obj: Context) -> None:
    """The background push a write started (docs/sync.md, "Automatic push"): its stdio is
    /dev/null, so the outcome goes to the audit log and autopush.json, and the exit code."""
    done = obj.vault(auto_cleanup=False).remotes.run_auto()
    bad = [o for o in (done or {}).values() if o["outcome"] != "ok"]
    if bad:
        sys.exit(int(bad[0].get("exit_code", 1)))


def _pull(obj: Context, remote_name: str | None, *, dry_run: bool, as_json: bool) -> None:
    def progress(done: int, total: int, nbytes: int) -> None:
        if done < total:
            click.echo(f"applied {done:,} of {total:,} entries, {_mb(nbytes)} fetched", err=True)

    result = obj.vault(auto_cleanup=False).remotes.pull(remote_name, dry_run=dry_run, progress=progress)
    check = result.check
    if as_json:
        devices = [
            {
                "device": str(d.device),
                "this_device": d.mine,
                "entries": d.entries,
                "seq": d.seq,
                "head": d.head,
                "pending": d.pending,
                "blocked": d.blocked,
                "rebased": d.rebased,
                "kinds": d.kinds,
            }
            for d in check.devices
        ]
        echo_json({"remote": check.remote, **result.counts(), "logs": devices})
        return
    for d in check.devices:
        who = "this device" if d.mine else f"device {d.device.hex}"
        late = "; its last entry is not written yet (an upload in flight)" if d.pending else ""
        if d.blocked:
            late += f"; read up to its entries of epoch {d.blocked}, whose key this device does not hold (yet)"
        click.echo(f"{who}: {d.entries:,} entries check out (head at {d.head}){late}", err=True)
    would = "would apply" if dry_run else "applied"
    forks = f", {result.forked} diverged lines kept as forks" if result.forked else ""
    click.echo(
        f"Checked {len(check.devices)} device logs on {check.remote}; {would} {result.put} sessions, "
        f"{result.appended} appends, {result.meta} metadata changes{forks}"
        + (f" ({result.meta_older} older metadata changes lost to newer ones)" if result.meta_older else "")
        + (f"; {result.skipped} entries name sessions this vault lacks" if result.skipped else "")
        + (f"; {would} {result.erased} deletes" if result.erased else "")
        + (f" ({result.kept} unpushed local versions kept as new sessions)" if result.kept else "")
        + (f"; {result.deleted} entries name deleted sessions" if result.deleted else "")
        + _ckpts(result.checkpoints, result.checkpoints_deleted, "would be added" if dry_run else "added")
        + (f"; {result.refused} entries of revoked devices refused" if result.refused else "")
        + (f"; took up {check.taken} new epochs" if check.taken else "")
        + (f"; {check.epochs_pending} new epoch keys not proved yet (pending)" if check.epochs_pending else "")
        + f"; {_mb(result.bytes)} fetched",
        err=True,
    )


def _ckpts(made: int, deleted: int, verb: str) -> str:
    """The summary's clause on checkpoints (docs/sync.md), or nothing when there were none."""
    if not made and not deleted:
        return ""
    return f"; checkpoints: {made} {verb}, {deleted} deleted"
