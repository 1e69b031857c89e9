"""``sessionseal device``: the devices of a remote and this device's pairing code (docs/sync.md,
"Devices")."""

from __future__ import annotations

from typing import Any

import click

from ._common import Context, echo_json, handle_errors

__all__ = ["device_group"]


def _grouped(code: str | None) -> str:
    # Read aloud or typed on the other device: four groups of four (the code is the 16 characters).
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4)) if code else "(none yet)"


@click.group(name="device")
def device_group() -> None:
    """The devices that share the vault through a remote, and pairing (docs/sync.md)."""


@device_group.command(name="list")
@click.argument("remote_name", metavar="[NAME]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def list_command(obj: Context, remote_name: str | None, as_json: bool) -> None:
    """The remote's devices as this device can verify them (enrolled, revoked, not enrolled),
    and this device's pairing code, which an enrolled device checks to enrol it."""
    from sessionseal import list_devices

    listing = list_devices(obj.vault(auto_cleanup=False), remote_name)

    def doc(e: Any) -> dict[str, Any]:
        return {
            "device": e.device.hex,
            "pairing_code": e.pairing_code,
            "status": e.status,
            "this_device": e.this_device,
            "created_at": e.created_at,
            "enrolled_by": e.enrolled_by.hex if e.enrolled_by else None,
            "revoked_by": e.revoked_by.hex if e.revoked_by else None,
        }

    if as_json:
        echo_json(
            {
                "remote": listing.remote,
                "device": listing.device.hex,
                "pairing_code": listing.pairing_code,
                "devices": [doc(e) for e in listing.devices],
            }
        )
        return
    for e in listing.devices:
        mark = "*" if e.this_device else " "
        click.echo(f"{mark} {e.device.hex}  {_grouped(e.pairing_code)}  {e.status}")
    click.echo(
        f"This device ({listing.device.hex}) on {listing.remote}: pairing code {_grouped(listing.pairing_code)}",
        err=True,
    )
