"""``verify``: check the whole vault, and ``--repair`` what can be repaired (docs/reliability.md)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

import click

from ._common import Context, echo_json, handle_errors, interactive
from ._terminal import say

if TYPE_CHECKING:
    from sessionseal import VerifyResult

__all__ = ["EXIT_VERIFY_FAILED", "verify"]

#: 'verify' found errors: damage, tampering or unsafe entries (docs/cli.md, "Exit codes").
EXIT_VERIFY_FAILED: Final = 15


@click.command()
@click.option("--read-data", is_flag=True, help="Decrypt and check every frame and document, not only the summaries.")
@click.option(
    "--repair",
    is_flag=True,
    help="Remove killed writers' leftovers, cut torn appends, rebuild the index; then check again.",
)
@click.option(
    "--expect-head",
    metavar="HEAD",
    help="A head 'sessionseal head show' printed earlier: the vault's history must hold it (else a rollback).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
@handle_errors
def verify(obj: Context, read_data: bool, repair: bool, expect_head: str | None, as_json: bool) -> None:
    """Check the whole vault: modes and owners, the key table, every container, the index,
    the config and the audit chain.

    Exit status 0 when nothing is wrong or there are only warnings (leftovers of killed
    writers, a stale index: nothing lost); 15 when something is damaged, tampered with or
    unsafe. --repair never deletes anything that still decrypts.
    """
    vault = obj.vault()
    behind: str | None = None
    if expect_head is not None:
        from sessionseal.errors import IntegrityError, StorageError

        # A head that is not this vault's is bad input (exit 8), before anything is checked. The
        # check reads the audit chain, not a counter: reads of a restored copy move its state on
        # but never bring back the record the kept head names (docs/keychain.md, "The vault's head").
        try:
            behind = vault.head().descent(expect_head)
        except (IntegrityError, StorageError):
            # Fail closed: what could not be read is reported by the check below as well.
            behind = "the head you kept could not be checked: the key table or the audit log cannot be read"
    if interactive() and not as_json:
        result = _with_progress(vault, read_data=read_data, repair=repair)
    else:
        result = vault.verify(read_data=read_data, repair=repair)
    if behind is not None:
        from sessionseal import VerifyProblem

        result.problems.append(VerifyProblem("error", "rollback", "keytable.sst", behind))
    if as_json:
        echo_json(result.to_json())
    else:
        _render(result)
    if not result.ok:
        sys.exit(EXIT_VERIFY_FAILED)


def _with_progress(vault: Any, *, read_data: bool, repair: bool) -> VerifyResult:
    bar: Any = click.progressbar(length=1, label="Checking", file=sys.stderr)
    with bar:

        def step(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        result: VerifyResult = vault.verify(read_data=read_data, repair=repair, progress=step)
        return result


def _render(result: VerifyResult) -> None:
    for line in result.repaired:
        say(f"repaired: {line}")
    for p in result.problems:
        say(f"{p.severity}: [{p.code}] {p.describe()}")
    c = result.counts
    what = "every frame" if result.read_data else "headers and summaries"
    summary = (
        f"{c.get('sessions', 0)} sessions, {c.get('checkpoints', 0)} checkpoints, {c.get('keys', 0)} keys, "
        f"{c.get('index_entries', 0)} index entries, {c.get('audit_records', 0)} audit records ({what})"
    )
    if result.ok:
        warn = f", {len(result.warnings)} warning(s)" if result.warnings else ""
        click.echo(f"vault OK: {summary}{warn}")
    else:
        click.echo(
            f"vault has {len(result.errors)} error(s) and {len(result.warnings)} warning(s): {summary}. "
            "See docs/reliability.md for what each means",
            err=True,
        )
