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
            "rebased": e.rebased,
        }

    if as_json:
        echo_json(
            {
                "remote": listing.remote,
                "device": listing.device.hex,
                "pairing_code": listing.pairing_code,
                "epochs_held": listing.epochs_held,
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


def _step_doc(step: Any) -> dict[str, Any]:
    return {
        "remote": step.remote,
        "device": step.device.hex,
        "other": step.other.hex if step.other else None,
        "epoch": step.epoch,
        "pairing_code": step.pairing_code,
        "enrolled": step.enrolled,
        "devices": step.devices,
    }


@device_group.command(name="enroll")
@click.argument("remote_name", metavar="[NAME]", required=False)
@click.option("--accept", "accept_device", metavar="DEVICE", help="On an enrolled device: enrol DEVICE (its id).")
@click.option("--code", metavar="CODE", help="With --accept: the pairing code the new device shows.")
@click.option("--finish", is_flag=True, help="On the new device, once accepted: take the remote's key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def enroll_command(
    obj: Context,
    /,
    *,
    remote_name: str | None,
    accept_device: str | None,
    code: str | None,
    finish: bool,
    as_json: bool,
) -> None:
    """Enrol a device on the remote (docs/sync.md, "Devices"): on the new device, without
    options, show its pairing code; on an enrolled device, --accept DEVICE --code CODE checks the
    code against the new device's record and gives it the remote's key; then --finish on the
    new device takes that key.  Audited (counts only)."""
    from sessionseal import _device_enroll

    if finish and accept_device is not None:
        raise click.UsageError("give --accept (on an enrolled device) or --finish (on the new one), not both")
    if (accept_device is None) != (code is None):
        raise click.UsageError("--accept DEVICE and --code CODE go together")
    vault = obj.vault(auto_cleanup=False)
    if accept_device is not None and code is not None:
        step = _device_enroll.accept(vault, remote_name, accept_device, code)
        text = (
            f"Enrolled device {accept_device} on {step.remote} (epoch {step.epoch}); "
            "run 'sessionseal device enroll --finish' on it"
        )
    elif finish:
        step = _device_enroll.finish(vault, remote_name)
        text = (
            f"This device is enrolled on {step.remote} (epoch {step.epoch}); "
            "'sessionseal sync --push' sends its sessions"
        )
    else:
        step = _device_enroll.request(vault, remote_name)
        if step.enrolled:
            text = f"This device is enrolled on {step.remote} already"
        else:
            text = (
                f"This device ({step.device.hex}) on {step.remote}: pairing code {_grouped(step.pairing_code)}\n"
                f"On an enrolled device, run: sessionseal device enroll {step.remote} --accept {step.device.hex} "
                f"--code {step.pairing_code}\nthen here: sessionseal device enroll {step.remote} --finish"
            )
    if as_json:
        echo_json(_step_doc(step))
        return
    click.echo(text, err=True)


@device_group.command(name="revoke")
@click.argument("remote_name", metavar="NAME")
@click.argument("device", metavar="DEVICE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@handle_errors
def revoke_command(obj: Context, /, *, remote_name: str, device: str, as_json: bool) -> None:
    """Revoke DEVICE (its id) on the remote NAME: a new epoch whose key only the other enrolled
    devices receive; what is pushed from then on DEVICE cannot read.  Audited (counts only)."""
    from sessionseal import _device_enroll

    step = _device_enroll.revoke(obj.vault(auto_cleanup=False), remote_name, device)
    if as_json:
        echo_json(_step_doc(step))
        return
    click.echo(
        f"Revoked device {device} on {step.remote}: epoch {step.epoch}, its key wrapped for {step.devices} devices",
        err=True,
    )
