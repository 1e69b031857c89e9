"""``cleanup``, ``pin``/``unpin``, ``archive``/``unarchive`` and ``stats`` (docs/cli.md, docs/retention.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ._common import Context, echo_json, handle_errors, interactive
from ._terminal import say
from ._usage_cmds import USAGE_DESTS, USAGE_OPTIONS, usage_command

if TYPE_CHECKING:
    from sessionseal import CleanupPlan, CleanupResult, RetentionConfig, Vault

__all__ = ["archive", "cleanup", "pin", "stats", "unarchive", "unpin"]

#: Policy flags and the config fields they set.
_POLICY_FLAGS = ("max_age", "keep_last", "keep_daily", "keep_weekly", "keep_monthly", "max_size")


def _policy_from_flags(vault: Vault, flags: dict[str, Any]) -> tuple[RetentionConfig, str]:
    """The policy to run, and where its rules came from.

    Rule flags replace the config's default rules rather than merging with them (a flag
    alone means what it says); --by and --min-age adjust whichever rules apply; the
    config's tag rules, and so their protections, always apply.
    """
    from sessionseal import RetentionConfig
    from sessionseal.models import parse_model

    given = {k: v for k, v in flags.items() if v is not None}
    base = vault.config().retention.model_dump()
    if any(k in given for k in _POLICY_FLAGS):
        base.update({k: None for k in _POLICY_FLAGS})
        source = "flags"
    else:
        source = "config"
    base.update(given)
    return parse_model(RetentionConfig, base, "cleanup policy"), source


@click.command()
@click.option("--max-age", metavar="DURATION", help="Keep what is younger than this (e.g. 90d, 12w).")
@click.option(
    "--by",
    "age_by",
    type=click.Choice(["updated", "accessed"]),
    help="Measure age from the last update (default) or the last access.",
)
@click.option("--keep-last", type=click.IntRange(min=0), metavar="N", help="Keep the N newest (0: none).")
@click.option("--keep-daily", type=click.IntRange(min=0), metavar="N", help="Keep the newest of each of N days.")
@click.option("--keep-weekly", type=click.IntRange(min=0), metavar="N", help="... of each of N weeks.")
@click.option("--keep-monthly", type=click.IntRange(min=0), metavar="N", help="... of each of N months.")
@click.option("--max-size", metavar="SIZE", help="Remove the oldest sessions above this stored size (e.g. 5GiB).")
@click.option("--min-age", metavar="DURATION", help="Spare what changed more recently [default: 1d; 0 allowed].")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@click.option("--show-kept", is_flag=True, help="List the kept sessions too, with the rule that kept each.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def cleanup(obj: Context, /, dry_run: bool, yes: bool, show_kept: bool, as_json: bool, **flags: Any) -> None:
    """Remove sessions by retention policy: from the vault config, or from these options.

    Pinned, active and paused sessions, and sessions younger than --min-age, are never
    removed.  Removal is a crypto-erase, as for 'delete'.  Without --yes it asks first, and
    without a terminal it refuses.
    """
    vault = obj.vault(auto_cleanup=False)
    policy, source = _policy_from_flags(vault, flags)
    plan = vault.plan_cleanup(policy)
    if dry_run or not plan.remove:
        # Nothing the policy removes; leftovers of interrupted deletes go without asking.
        result = vault.cleanup(plan=plan) if not dry_run and plan.orphans else None
        _report(plan, source, result, as_json=as_json, show_kept=show_kept, dry_run=dry_run)
        return
    if not as_json:
        _report(plan, source, None, as_json=False, show_kept=show_kept, dry_run=False)
    if not yes:
        if not interactive():
            raise click.UsageError(
                f"refusing to remove {len(plan.remove)} session(s) without confirmation; "
                "pass --yes, or --dry-run to look first"
            )
        click.confirm(f"Remove {len(plan.remove)} session(s) for good?", abort=True, err=True)
    result = _run_with_progress(vault, plan, show=not as_json and interactive() and len(plan.remove) > 20)
    if as_json:
        _report(plan, source, result, as_json=True, show_kept=show_kept, dry_run=False)
        return
    click.echo(
        f"Removed {len(result.removed)} session(s), {_size(result.bytes_freed)}; their keys are destroyed "
        f"(master key epoch {result.epoch}) and their files overwritten",
        err=True,
    )
    for sid, why in result.skipped:
        say(f"sessionseal: note: kept {sid}: {why}")
    if result.orphans_removed:
        click.echo(f"Also removed {result.orphans_removed} file(s) left by an interrupted delete", err=True)
    for line in result.warnings:
        say(f"sessionseal: warning: {line}")


def _run_with_progress(vault: Vault, plan: CleanupPlan, *, show: bool) -> CleanupResult:
    if not show:
        return vault.cleanup(plan=plan)
    bar: Any = click.progressbar(length=len(plan.remove), label="Erasing", file=sys.stderr)
    with bar:
        done = 0

        def step(n: int, _total: int) -> None:
            nonlocal done
            bar.update(n - done)
            done = n

        return vault.cleanup(plan=plan, progress=step)


def _report(
    plan: CleanupPlan, source: str, result: CleanupResult | None, *, as_json: bool, show_kept: bool, dry_run: bool
) -> None:
    if as_json:
        doc: dict[str, Any] = {
            "dry_run": dry_run,
            "policy_source": source,
            "policy": plan.policy.model_dump(mode="json"),
            "remove": [d.as_dict() for d in plan.remove],
            "kept_by_rule": plan.kept_by_rule(),
            "bytes_to_free": plan.bytes_freed,
            "orphans": plan.orphans,
            "keyless": plan.keyless,
            "warnings": plan.warnings,
        }
        if show_kept:
            doc["keep"] = [d.as_dict() for d in plan.keep]
        if result is not None:
            doc.update(
                removed=[str(s) for s in result.removed],
                skipped=[{"id": str(s), "reason": why} for s, why in result.skipped],
                bytes_freed=result.bytes_freed,
                orphans_removed=result.orphans_removed,
                epoch=result.epoch,
                warnings=plan.warnings + result.warnings,
            )
        echo_json(doc)
        return
    from ._render import render_plan

    shown = plan.decisions if show_kept else plan.remove
    render_plan(shown, source, plan.policy.describe())
    kept = ", ".join(f"{rule} {n}" for rule, n in plan.kept_by_rule().items()) or "none"
    if not plan.remove:
        say(f"Nothing to remove; keeping {len(plan.keep)}: {kept}")
    else:
        verb = "would be removed" if dry_run else "to remove"
        say(f"{len(plan.remove)} {verb} ({_size(plan.bytes_freed)}); keeping {len(plan.keep)}: {kept}")
    if plan.orphans:
        click.echo(f"{plan.orphans} file(s) left by an interrupted delete will be removed too", err=True)
    for line in plan.warnings:
        say(f"sessionseal: warning: {line}")


def _size(n: int) -> str:
    from ._render import size

    return size(n)


def _edit_command(name: str, verb: str, call: Callable[[Vault, str], bool], already: str, help_: str) -> click.Command:
    @click.command(name=name, help=help_)
    @click.argument("session_ids", metavar="ID...", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    @handle_errors
    def command(obj: Context, session_ids: tuple[str, ...], as_json: bool) -> None:
        vault = obj.vault()
        changed = [(sid, call(vault, sid)) for sid in session_ids]
        if as_json:
            echo_json([{"id": sid, "changed": c} for sid, c in changed])
            return
        for sid, c in changed:
            click.echo(f"{verb} {sid}" if c else f"{sid} was already {already}", err=True)

    return command


pin = _edit_command("pin", "Pinned", lambda v, s: v.pin(s), "pinned", "Protect sessions from every retention policy.")
unpin = _edit_command("unpin", "Unpinned", lambda v, s: v.unpin(s), "unpinned", "Let retention policies apply again.")
archive = _edit_command(
    "archive",
    "Archived",
    lambda v, s: v.archive(s),
    "archived",
    "Archive sessions: kept encrypted, hidden from 'list' unless --archived or --all.",
)
unarchive = _edit_command(
    "unarchive",
    "Unarchived",
    lambda v, s: v.unarchive(s),
    "not archived",
    "Restore archived sessions to the status they had.",
)


def _usage_options(fn: Any) -> Any:
    for option in reversed(USAGE_OPTIONS):
        fn = option(fn)
    return fn


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_usage_options
@click.pass_obj
@handle_errors
def stats(obj: Context, /, as_json: bool, usage: bool, **opts: Any) -> None:
    """Counts by status, sizes stored and original, compression, oldest and newest; with --usage,
    tokens and cost by day, week, month, model, workspace or tool."""
    if usage:
        usage_command(obj.vault(), as_json, opts)
        return
    given = [name for name in USAGE_DESTS if opts.get(name)]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} goes with --usage")
    st = obj.vault().stats()
    doc: dict[str, Any] = {
        "sessions": st.sessions,
        "by_status": st.by_status,
        "pinned": st.pinned,
        "stored_bytes": st.stored_bytes,
        "original_bytes": st.original_bytes,
        "compression_ratio": st.compression_ratio,
        "oldest_created": st.oldest_created.isoformat() if st.oldest_created else None,
        "newest_updated": st.newest_updated.isoformat() if st.newest_updated else None,
        "messages": st.messages,
        "cost_usd": st.cost_usd,
        "redactions": st.redactions,
        "unreadable": st.unreadable,
        "warn_size": st.warn_size,
        "warnings": st.warnings,
    }
    if as_json:
        echo_json(doc)
    else:
        statuses = ", ".join(f"{k} {v}" for k, v in st.by_status.items() if v) or "-"
        ratio = f"{st.compression_ratio:.2f}x" if st.compression_ratio else "-"
        rows = [
            ("sessions", f"{st.sessions} ({statuses}); pinned {st.pinned}"),
            ("stored", _size(st.stored_bytes)),
            ("original", f"{_size(st.original_bytes)} (compression {ratio})"),
            ("oldest", f"{st.oldest_created:%Y-%m-%d %H:%M}Z" if st.oldest_created else "-"),
            ("newest", f"{st.newest_updated:%Y-%m-%d %H:%M}Z" if st.newest_updated else "-"),
            ("messages", str(st.messages)),
            ("cost", f"${st.cost_usd:.2f}"),
            ("redactions", str(st.redactions)),
        ]
        if st.warn_size is not None:
            rows.append(("warn size", _size(st.warn_size)))
        for k, v in rows:
            click.echo(f"{k:<10}  {v}")
    for line in st.warnings:
        say(f"sessionseal: warning: {line}")
