"""``sessionseal remote``: the S3-compatible stores a vault syncs through (docs/sync.md)."""

from __future__ import annotations

from typing import Any, Final

import click

from ._common import Context, echo_json, handle_errors

__all__ = ["remote_group"]

#: What ``remote list`` says of credentials: where they come from, since none is stored.
_CREDENTIALS: Final = (
    "credentials are never stored in the vault: they come from the usual AWS sources when a remote "
    "is used (the remote's --profile, else AWS_PROFILE or the environment's AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, the shared ~/.aws files, SSO, instance or container metadata)"
)


def _doc(remote: Any, last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "auto_push": remote.auto_push,
        "last_auto_push": last,
        "name": remote.name,
        "url": remote.url,
        "endpoint": remote.endpoint,
        "profile": remote.profile,
        "region": remote.region,
        "device": str(remote.device),
        "added_at": remote.added_at,
        "credentials": f"profile {remote.profile}" if remote.profile else "default AWS chain",
    }


@click.group(name="remote")
def remote_group() -> None:
    """The S3-compatible stores (AWS S3, R2, B2, MinIO, rclone serve s3...) the vault syncs through."""


@remote_group.command(name="add")
@click.argument("remote_name", metavar="NAME")
@click.argument("remote_url", metavar="s3://BUCKET[/PREFIX]")
@click.option("--endpoint", metavar="URL", help="An S3-compatible server (http(s)://HOST[:PORT]); default: AWS S3.")
@click.option("--profile", metavar="P", help="The AWS profile whose credentials to use (never stored).")
@click.option("--region", metavar="R", help="The region to sign for (default: the profile's, or us-east-1).")
@click.option("--no-check", is_flag=True, help="Do not check that the remote is reachable and writable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def add(
    obj: Context,
    /,
    *,
    remote_name: str,
    remote_url: str,
    endpoint: str | None,
    profile: str | None,
    region: str | None,
    no_check: bool,
    as_json: bool,
) -> None:
    """Add a remote: checked first (a probe object written, read back and removed under this
    device's prefix) unless --no-check; kept in the vault's encrypted config; audited."""
    remote = obj.vault(auto_cleanup=False).remotes.add(
        remote_name, remote_url, endpoint=endpoint, profile=profile, region=region, check=not no_check
    )
    if as_json:
        echo_json(_doc(remote) | {"checked": not no_check})
        return
    how = "not checked" if no_check else "reachable and writable"
    click.echo(f"Added remote {remote.name}: {remote.url} ({how}); device {remote.device.hex}", err=True)


@remote_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def list_remotes(obj: Context, as_json: bool) -> None:
    """List the remotes, and where each one's credentials come from (never from the vault)."""
    vault = obj.vault(auto_cleanup=False)
    remotes = vault.remotes.list()
    status = vault.remotes.auto_status()
    if as_json:
        echo_json(
            {
                "remotes": [_doc(r, status.get(r.name)) for r in remotes],
                "credentials": _CREDENTIALS,
                "last_auto_push_unopened": status.get(""),
            }
        )
        return
    for r in remotes:
        where = f" at {r.endpoint}" if r.endpoint else ""
        region = f" region {r.region}" if r.region else ""
        creds = f"profile {r.profile}" if r.profile else "default AWS chain"
        auto = f"\tauto push: {_auto_text(r.auto_push, status.get(r.name))}" if r.auto_push is not None else ""
        click.echo(f"{r.name}\t{r.url}{where}{region}\tcredentials: {creds}{auto}")
    if "" in status:
        click.echo(f"The last automatic push could not open the vault: {_auto_text(0, status[''])}", err=True)
    if not remotes:
        click.echo("No remotes; add one with 'sessionseal remote add NAME s3://BUCKET/PREFIX'", err=True)
    click.echo(f"Note: {_CREDENTIALS}", err=True)


def _auto_text(delay: float | None, last: dict[str, Any] | None) -> str:
    head = f"on, {delay:g} s after a write"
    if last is None:
        return f"{head}; none ran yet"
    if last.get("outcome") == "ok":
        return f"{head}; last one at {last.get('at')}: ok"
    return (
        f"{head}; last one at {last.get('at')} FAILED ({last.get('error')}, exit {last.get('exit_code')}): "
        "run 'sessionseal sync NAME --push' to see why"
    )


@remote_group.command(name="auto")
@click.argument("remote_name", metavar="NAME")
@click.argument("state", type=click.Choice(["on", "off"]), metavar="on|off")
@click.option(
    "--delay",
    type=click.FloatRange(0, 3600),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long after a write before pushing: the writes within it go out in one push.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def auto(obj: Context, /, *, remote_name: str, state: str, delay: float, as_json: bool) -> None:
    """Push to the remote automatically after every write (off by default): a background
    'sessionseal sync NAME --push' starts SECONDS after a write, one at a time, never blocking
    or failing the write; its outcome shows in 'remote list'. Keychain vaults only."""
    remote = obj.vault(auto_cleanup=False).remotes.auto(remote_name, on=state == "on", delay=delay)
    if as_json:
        echo_json(_doc(remote))
        return
    if remote.auto_push is None:
        click.echo(f"Automatic push to {remote.name} is off", err=True)
    else:
        click.echo(f"Automatic push to {remote.name} is on: {remote.auto_push:g} s after a write", err=True)


@remote_group.command(name="remove")
@click.argument("remote_name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def remove(obj: Context, remote_name: str, as_json: bool) -> None:
    """Forget a remote; its objects stay in the bucket (nothing there is deleted)."""
    remote = obj.vault(auto_cleanup=False).remotes.remove(remote_name)
    if as_json:
        echo_json({"removed": _doc(remote)})
        return
    click.echo(f"Removed remote {remote.name} ({remote.url}); nothing in the bucket was deleted", err=True)
