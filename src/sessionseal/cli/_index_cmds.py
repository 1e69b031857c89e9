"""``sessionseal index merge``: the full-text index's due tier merges (docs/cli.md; docs/design.md,
"Tier merges out of the writer's call").

A write never merges a full tier itself: the CLI starts this command detached with ``--auto``
(stdio on /dev/null, never interactive) when the vault opens unattended, and a person may run it
at any time (a passphrase vault whose passphrase no background process can have, say).
"""

from __future__ import annotations

import click

from ._common import Context, echo_json, handle_errors

__all__ = ["index_group"]


@click.group(name="index")
def index_group() -> None:
    """The full-text index's upkeep ('reindex' rebuilds it)."""


@index_group.command(name="merge")
@click.option("--auto", is_flag=True, hidden=True, help="The background run a write started (prints nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def merge(obj: Context, auto: bool, as_json: bool) -> None:
    """Merge the full-text index's full tiers now (a matter of search speed; never needed for answers)."""
    maintenance = obj.vault(auto_cleanup=False).maintenance
    if auto:
        maintenance.run_auto()  # the outcome goes to ftsmerge.json, and the exit code
        return
    merges = maintenance.run()
    status = maintenance.status()
    if as_json:
        echo_json({"merges": merges, "running": merges is None, "due": status.due})
    elif merges is None:
        click.echo("A background merge is running; it merges every full tier before it ends", err=True)
    else:
        click.echo(f"Merged {merges} full tier(s) of the full-text index", err=True)
