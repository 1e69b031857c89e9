"""``sessionseal audit show`` and ``sessionseal audit verify`` (docs/cli.md, docs/spec/audit-log.md)."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from sessionseal.errors import AuditLogTampered, InvalidInput

from ._common import Context, echo_json, fail, handle_errors
from ._terminal import json_text, say

__all__ = ["audit_group"]

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: str, option: str) -> datetime:
    """A UTC instant from an RFC 3339 time, a date (``2026-11-21``) or a duration ago (``7d``, ``12h``)."""
    v = value.strip()
    m = _DURATION.match(v)
    if m:
        # A duration past the calendar (or of thousands of digits) is bad input, not a crash.
        try:
            return datetime.now(UTC) - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        except (OverflowError, ValueError):
            raise InvalidInput(f"{option} goes back further than the calendar; give a shorter duration") from None
    try:
        when = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{option} takes a date, an RFC 3339 time or a duration such as 7d or 12h") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@click.group("audit")
def audit_group() -> None:
    """Review and verify the vault's tamper-evident audit log."""


@audit_group.command("show")
@click.option("--since", metavar="WHEN", help="Only records at or after WHEN (date, RFC 3339 time, or 7d / 12h ago).")
@click.option("--until", metavar="WHEN", help="Only records before WHEN.")
@click.option(
    "--action",
    "actions",
    multiple=True,
    help="Only this action (repeatable): save, load, list, delete...; a glob takes a family: 'mcp.*'.",
)
@click.option("--session", metavar="ID", help="Only records about this session (while the vault holds its key).")
@click.option("--user", metavar="NAME", help="Only records of this OS user (name or uid).")
@click.option("--outcome", type=click.Choice(["ok", "denied", "error"]), help="Only this outcome.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N matching records.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one record per line (for jq and SIEM tools).")
@click.pass_obj
@handle_errors
def audit_show(  # noqa: PLR0917 - one parameter per filter
    obj: Context,
    since: str | None,
    until: str | None,
    actions: tuple[str, ...],
    session: str | None,
    user: str | None,
    outcome: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print audit records, oldest first, each marked verified or not.

    The chain is checked as it is read: a record the MAC chain does not vouch for (not yet
    chained, after the first bad record, or with a box that does not open) is marked
    unverified, with why.  Sessions are shown by id while the vault holds their key; an
    erased session's records show its tag only.
    """
    lo = parse_when(since, "--since") if since else None
    hi = parse_when(until, "--until") if until else None
    records, report = obj.vault().audit_entries(session=session)
    out: list[dict[str, Any]] = []
    for rec in records:
        if actions and not any(fnmatch.fnmatchcase(str(rec.get("action")), a) for a in actions):
            continue
        if user and user not in (rec.get("user"), str(rec.get("uid"))):
            continue
        if outcome and rec.get("outcome") != outcome:
            continue
        if lo or hi:
            try:
                t = datetime.fromisoformat(str(rec.get("time", "")).replace("Z", "+00:00"))
            except ValueError:
                continue
            if (lo and t < lo) or (hi and t >= hi):
                continue
        out.append(rec)
    if limit:
        out = out[-limit:]
    first = next((p for p in report.problems if p.severity == "error"), None)
    if first is not None:
        click.echo(
            f"sessionseal: warning: the audit log does not verify: {first.describe()}; "
            "records it does not vouch for are marked unverified",
            err=True,
        )
    if as_json:
        for rec in out:
            sys.stdout.write(json_text(json.dumps(rec, sort_keys=True, ensure_ascii=False)) + "\n")
        return
    from ._render import render_audit

    render_audit(out)


@audit_group.command("verify")
@click.option("--repair", is_flag=True, help="Seal a torn last line left by a killed writer, then verify.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
@handle_errors
def audit_verify(obj: Context, repair: bool, as_json: bool) -> None:
    """Check the MAC chain of the audit log against its anchored head.

    Exit status 0 when the chain is whole; 14 when a record was edited, removed, inserted
    or reordered, or the log was cut short or replaced; the first bad record is named.
    """
    report = obj.vault().verify_audit(repair=repair)
    if as_json:
        echo_json(report.as_dict())
    else:
        for line in report.repaired:
            say(f"repaired: {line}")
        for p in report.problems:
            if p.severity == "warning":
                say(f"sessionseal: warning: {p.describe()}")
        if report.ok:
            span = f"records {report.first_seq}-{report.last_seq}" if report.records else "no records yet"
            click.echo(f"audit log OK: {report.records} records ({span}) in {len(report.files)} file(s)")
    if not report.ok:
        first = next(p for p in report.problems if p.severity == "error")
        fail(f"the audit log does not verify: {first.describe()}", AuditLogTampered.exit_code)
