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
from ._terminal import json_text, say, shown

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
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new records as they are written (a live tail); stop with Ctrl-C or SIGTERM (exit 0).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05, max=60),
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how often the log is looked at.",
)
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
    follow: bool,
    interval: float,
) -> None:
    """Print audit records, oldest first, each marked verified or not.

    The chain is checked as it is read: a record the MAC chain does not vouch for (not yet
    chained, after the first bad record, or with a box that does not open) is marked
    unverified, with why.  Sessions are shown by id while the vault holds their key; an
    erased session's records show its tag only.  With --follow, new records are printed as
    they come (across the log's rotation), until Ctrl-C or SIGTERM.
    """
    lo = parse_when(since, "--since") if since else None
    hi = parse_when(until, "--until") if until else None

    def wanted(rec: dict[str, Any]) -> bool:
        if actions and not any(fnmatch.fnmatchcase(str(rec.get("action")), a) for a in actions):
            return False
        if user and user not in (rec.get("user"), str(rec.get("uid"))):
            return False
        if outcome and rec.get("outcome") != outcome:
            return False
        if lo or hi:
            try:
                t = datetime.fromisoformat(str(rec.get("time", "")).replace("Z", "+00:00"))
            except ValueError:
                return False
            if (lo and t < lo) or (hi and t >= hi):
                return False
        return True

    if not follow:
        _show(obj, session, wanted, limit, as_json)
        return
    from ._follow import follow_log, stop_signals

    # From the start: a signal during the first read ends the tail too, with exit 0.
    with stop_signals() as stop:
        vault, records = _show(obj, session, wanted, limit, as_json)
        follow_log(vault, records, stop=stop, session=session, wanted=wanted, interval=interval, emit=_emitter(as_json))


def _show(
    obj: Context, session: str | None, wanted: Any, limit: int | None, as_json: bool
) -> tuple[Any, list[dict[str, Any]]]:
    vault = obj.vault()
    records, report = vault.audit_entries(session=session)
    out = [rec for rec in records if wanted(rec)]
    if limit:
        out = out[-limit:]
    first = next((p for p in report.problems if p.severity == "error"), None)
    if first is not None:
        click.echo(
            f"sessionseal: warning: the audit log does not verify: {first.describe()}; "
            "records it does not vouch for are marked unverified",
            err=True,
        )
    _print_records(out, as_json=as_json)
    return vault, records


def _emitter(as_json: bool) -> Any:
    def emit(recs: list[dict[str, Any]]) -> None:
        _print_records(recs, as_json=as_json, follow=True)

    return emit


def _print_records(out: list[dict[str, Any]], *, as_json: bool, follow: bool = False) -> None:
    if as_json:
        for rec in out:
            sys.stdout.write(json_text(json.dumps(rec, sort_keys=True, ensure_ascii=False)) + "\n")
        sys.stdout.flush()
        return
    if follow:
        # New records of a tail: one line each, as they come (the first batch was a table).
        for rec in out:
            click.echo(shown(_line_of(rec)))
        sys.stdout.flush()
        return
    from ._render import render_audit

    render_audit(out)
    sys.stdout.flush()


def _line_of(rec: dict[str, Any]) -> str:
    seq = rec.get("seq")
    verified = "yes" if rec.get("verified") is True else f"NO ({rec.get('problem', 'unchecked')})"
    parts = [
        f"{'-' if seq is None else seq:>6}",
        verified,
        str(rec.get("time", ""))[:19].replace("T", " "),
        str(rec.get("action", "")),
        str(rec.get("outcome", "")),
        str(rec.get("session", "") or "-"),
        f"{rec.get('user', '')} ({rec.get('uid', '')})",
        f"{rec.get('program', '')} pid {rec.get('pid', '')}",
    ]
    if rec.get("error"):
        parts.append(str(rec["error"]))
    detail = rec.get("detail")
    if isinstance(detail, dict):
        parts.append(", ".join(f"{k}={v}" for k, v in detail.items()))
    return "  ".join(parts).replace("\n", "\\n")


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


@audit_group.command("report")
@click.option("--since", metavar="WHEN", help="Only records at or after WHEN (date, RFC 3339 time, or 7d / 12h ago).")
@click.option("--until", metavar="WHEN", help="Only records before WHEN.")
@click.option("--user", metavar="NAME", help="Only records of this OS user (name or uid).")
@click.option("--session", metavar="ID", help="Only records about this session (while the vault holds its key).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    default="html",
    show_default=True,
    help="html: one self-contained page for a reviewer; json: the same report for SIEM tools.",
)
@click.option("--out", "out", metavar="FILE|-", required=True, help="Where to write it (0600; - : stdout).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.pass_obj
@handle_errors
def audit_report(  # noqa: PLR0917 - one parameter per filter
    obj: Context,
    since: str | None,
    until: str | None,
    user: str | None,
    session: str | None,
    fmt: str,
    out: str,
    force: bool,
) -> None:
    """Write a reviewer's report of the audit log: the chain's verification (and its first
    bad record), a timeline per OS user and per session, refusals and failures, what left the
    vault, deletions and cleanups with their rule, and activity over time.

    Only what the audit records hold: no session content.  Writing it is recorded in the log
    (audit.report).  Exit 0 even when the chain does not verify (the report says so at the
    top; 'audit verify' gives the exit status).
    """
    lo = parse_when(since, "--since") if since else None
    hi = parse_when(until, "--until") if until else None
    from sessionseal import audit_report as make_report

    model, data = make_report(
        obj.vault(),
        since=lo,
        until=hi,
        user=user,
        session=session,
        format=fmt,
        out=None if out == "-" else out,
        overwrite=force,
    )
    if data is not None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    verification = model["verification"]
    if not verification["ok"]:
        say(f"sessionseal: warning: the audit log does not verify: {verification['first_bad']['message']}")
    if out != "-":
        s = model["summary"]
        say(
            f"Wrote the audit report ({fmt}, {s['records']} records, {s['refusals']} refusals or failures, "
            f"{s['egress']} exports and reads) to {out}"
        )
