"""Getting sessions out and in: ``export`` and ``import`` (docs/cli.md, docs/spec/bundle-v1.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._common import Context, echo_json, handle_errors, passphrase_source, read_input
from ._filters import query_of, select_filters
from ._terminal import say

__all__ = ["export_command", "import_command"]

_BUNDLE_OPTION = click.option(
    "--bundle-passphrase-file",
    metavar="FILE",
    help="Read the bundle's passphrase from FILE (else SESSIONSEAL_BUNDLE_PASSPHRASE, else a prompt).",
)


def _bundle_passphrase(path: str | None, *, confirm: bool) -> Any:
    return passphrase_source(
        path,
        confirm=confirm,
        env="SESSIONSEAL_BUNDLE_PASSPHRASE",
        what="Bundle passphrase",
        option="--bundle-passphrase-file",
    )


@click.command(name="export")
@click.argument("session_ids", metavar="[ID]...", nargs=-1)
@click.option(
    "--all", "export_all", is_flag=True, help="Every session (archived too) that the filters select (all without)."
)
@select_filters
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["bundle", "json", "yaml", "markdown", "html"]),
    default="bundle",
    show_default=True,
    help="bundle: encrypted under a passphrase, for another machine or user; the others are plaintext "
    "(html: one page, or a directory with an index page for --all or several IDs).",
)
@click.option(
    "--out",
    "out",
    metavar="FILE|DIR|-",
    required=True,
    help="Where to write it (- : stdout, plaintext only; a directory for html of several sessions).",
)
@click.option("--plaintext", is_flag=True, help="Allow a plaintext format (sanitized, but readable by anyone).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@_BUNDLE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what was exported as JSON.")
@click.pass_obj
@handle_errors
def export_command(
    obj: Context,
    /,
    *,
    session_ids: tuple[str, ...],
    export_all: bool,
    fmt: str,
    out: str,
    plaintext: bool,
    force: bool,
    bundle_passphrase_file: str | None,
    as_json: bool,
    here: bool,
    **filters: Any,
) -> None:
    """Export sessions: IDs, or --all (with the filters of 'list' given after it).

    A bundle is encrypted (scrypt + AES-GCM) under a passphrase of its own and can hold many
    sessions; 'sessionseal import' reads it on the other side.  json, yaml, markdown and
    html write the sanitized session as plaintext and need --plaintext; html of --all or of
    several IDs is a directory (0700) with an index page.  Files are created owner-only
    (0600); an existing file is kept unless --force.
    """
    if bool(session_ids) == export_all:
        raise click.UsageError("give session IDs or --all (not both)")
    if out == "-" and fmt == "bundle":
        raise click.UsageError("write a bundle to a file (--out FILE), not to stdout")
    if fmt != "bundle" and plaintext:
        click.echo(
            f"sessionseal: warning: writing {fmt} in plaintext; the content is sanitized but readable "
            "by anyone who can read the file",
            err=True,
        )
    vault = obj.vault()
    passphrase = _bundle_passphrase(bundle_passphrase_file, confirm=True)() if fmt == "bundle" else None
    result = vault.export(
        list(session_ids) if session_ids else None,
        query=None if session_ids else query_of(here, "all", filters),
        format=fmt,
        passphrase=passphrase,
        plaintext=plaintext,
        out=None if out == "-" else out,
        overwrite=force,
    )
    if result.data is not None:
        sys.stdout.buffer.write(result.data)
        sys.stdout.flush()
    summary = {
        "format": result.format,
        "sessions": [str(s) for s in result.session_ids],
        "path": result.path,
        "bytes": result.nbytes,
    }
    if as_json:
        echo_json(summary)
    elif result.path:
        say(f"Exported {len(result.session_ids)} session(s) as {fmt} to {result.path}")


@click.command(name="import")
@click.argument("source", metavar="FILE|-")
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "replace", "copy"]),
    default="skip",
    show_default=True,
    help="A session whose id is already in the vault: skip it, replace it (a checkpoint keeps the old), or copy.",
)
@_BUNDLE_OPTION
@click.option(
    "--allow-expensive-kdf",
    is_flag=True,
    help="Open a bundle that asks for more scrypt work than sessionseal writes (up to 4 GiB of memory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
@click.pass_obj
@handle_errors
def import_command(
    obj: Context,
    /,
    *,
    source: str,
    on_conflict: str,
    bundle_passphrase_file: str | None,
    allow_expensive_kdf: bool,
    as_json: bool,
) -> None:
    """Import a bundle (from 'export') or session JSON (one document or a list).

    Everything imported is validated and sanitized with this vault's rules; a bad document
    imports nothing.  Times are kept.  A bundle that asks for more scrypt work than
    sessionseal writes, or holds more than the vault stores, is refused before any work
    (exit 8).
    """
    from sessionseal import Vault

    data = read_input(source, Vault.MAX_SESSION_BYTES + (1 << 20))
    result = obj.vault().import_sessions(
        data,
        passphrase=_bundle_passphrase(bundle_passphrase_file, confirm=False),
        on_conflict=on_conflict,
        allow_expensive_kdf=allow_expensive_kdf,
    )
    if as_json:
        echo_json(
            {
                "source": result.source,
                "imported": [str(s) for s in result.imported],
                "skipped": [{"id": i, "reason": r} for i, r in result.skipped],
                "redactions": result.redactions,
            }
        )
        return
    for sid in result.imported:
        click.echo(str(sid))
    for given, why in result.skipped:
        say(f"sessionseal: skipped {given}: {why} (see --on-conflict)")
    redacted = sum(result.redactions.values())
    note = f"; {redacted} secret(s) redacted on the way in" if redacted else ""
    click.echo(f"Imported {len(result.imported)} session(s) from a {result.source}{note}", err=True)
