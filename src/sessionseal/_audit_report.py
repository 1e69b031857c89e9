"""``sessionseal audit report``: what a reviewer of a shared workstation looks at (docs/reports.md).

Built from the audit records alone, as ``audit show`` reads them (checked as they are read,
subjects opened with the keys the vault holds): the chain's verification with its first bad
record, a timeline per OS user and per session, refusals and failures, what left the vault,
deletions and cleanups with the rule that decided them, and activity over time.  The records
hold no session content, so neither does the report: no title, no text, no query.

:func:`build` makes the report as a JSON-ready dict (``--format json``, for SIEM ingestion);
``_audit_page.render_html`` draws it as one self-contained page; :func:`audit_report` reads the
vault's log, makes either, writes it and records the access.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._audit import VerifyReport, parse_time
from ._audit_page import render_html, session_name, subjects_of
from ._fs import write_private_file
from ._vault._auditing import Auditor, audited_by
from ._vault._common import parse_id
from .errors import InvalidInput

if TYPE_CHECKING:
    from ._vault import Vault

__all__ = ["REPORT_VERSION", "audit_report", "build", "render_json"]

REPORT_VERSION: Final = 1
#: Error classes and what a reviewer calls them.
_KINDS: Final = {
    "WrongPassphrase": "wrong passphrase",
    "KeyStoreError": "keychain locked or unavailable",
    "KeyUnavailable": "keychain locked or unavailable",
    "KeyNotFound": "keychain without this vault's key",
    "UnsafePermissions": "refused: permissions (another user, a link, a loose mode)",
    "IntegrityError": "integrity error",
    "AuditLogTampered": "integrity error",
    "VaultRolledBack": "integrity error (rolled back)",
    "ConfigNotRecorded": "integrity error (config)",
    "LockTimeout": "lock timeout",
}
#: Actions by which something of a session left the vault.
_EGRESS: Final = ("export", "resume")
_DELETIONS: Final = ("delete", "cleanup", "cleanup.plan", "checkpoint.delete", "destroy")


def kind_of(rec: Mapping[str, Any]) -> str:
    """What a refused or failed record was, in a reviewer's words."""
    error = rec.get("error")
    if isinstance(error, str) and error in _KINDS:
        return _KINDS[error]
    if rec.get("outcome") == "denied":
        return "refused"
    return f"failure ({error})" if isinstance(error, str) else "failure"


def _bucket(span: timedelta) -> str:
    if span <= timedelta(hours=2):
        return "minute"
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=180):
        return "day"
    return "week"


def _floor(when: datetime, bucket: str) -> datetime:
    when = when.astimezone(UTC)
    if bucket == "minute":
        return when.replace(second=0, microsecond=0)
    if bucket == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if bucket == "day" else day - timedelta(days=day.weekday())


_STEP: Final = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}


def _activity(timed: Sequence[tuple[datetime, Mapping[str, Any]]]) -> dict[str, Any]:
    if not timed:
        return {"bucket": "day", "series": [], "by_user": {}}
    first, last = timed[0][0], timed[-1][0]
    bucket = _bucket(last - first)
    start, end = _floor(first, bucket), _floor(last, bucket)
    slots: list[datetime] = []
    at = start
    while at <= end:
        slots.append(at)
        at += _STEP[bucket]
    index = {s: i for i, s in enumerate(slots)}
    series: list[dict[str, Any]] = [
        {"start": s.isoformat().replace("+00:00", "Z"), "ok": 0, "refused": 0, "failed": 0} for s in slots
    ]
    users: dict[str, list[int]] = {}
    for when, rec in timed:
        i = index[_floor(when, bucket)]
        outcome = rec.get("outcome")
        series[i]["ok" if outcome == "ok" else "refused" if outcome == "denied" else "failed"] += 1
        users.setdefault(str(rec.get("user")), [0] * len(slots))[i] += 1
    return {"bucket": bucket, "series": series, "by_user": users}


def _brief(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The clear fields of a record a table shows."""
    out = {k: rec.get(k) for k in ("seq", "time", "action", "outcome", "error", "user", "uid", "host", "program")}
    out["verified"] = bool(rec.get("verified"))
    if rec.get("problem"):
        out["problem"] = rec["problem"]
    return out


def _select(
    records: Sequence[Mapping[str, Any]], since: datetime | None, until: datetime | None, user: str | None
) -> tuple[list[Mapping[str, Any]], list[tuple[datetime, Mapping[str, Any]]]]:
    """The records within the filters, and those of them with a time, in time order."""
    chosen: list[Mapping[str, Any]] = []
    timed: list[tuple[datetime, Mapping[str, Any]]] = []
    for rec in records:
        if user and user not in (rec.get("user"), str(rec.get("uid"))):
            continue
        when = parse_time(rec.get("time"))
        if (since or until) and (when is None or (since and when < since) or (until and when >= until)):
            continue
        chosen.append(rec)
        if when is not None:
            timed.append((when, rec))
    timed.sort(key=lambda p: p[0])
    return chosen, timed


def _verification_of(records: Sequence[Mapping[str, Any]], report: VerifyReport) -> dict[str, Any]:
    """``audit verify --json``'s report, with the first bad problem and that record's clear fields."""
    problems = [p for p in report.problems if p.severity == "error"]
    first_bad = problems[0] if problems else None
    bad_record = None
    if first_bad is not None and first_bad.seq is not None:
        bad_record = next((_brief(r) for r in records if r.get("seq") == first_bad.seq), None)
    return {
        **report.as_dict(),
        "first_bad": None if first_bad is None else {**vars(first_bad), "message": first_bad.describe()},
        "first_bad_record": bad_record,
    }


class _Sections:
    """The report's sections, filled one record at a time, oldest first."""

    def __init__(self, owner_uid: int) -> None:
        self.owner_uid = owner_uid
        self.users: dict[tuple[str, Any], dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refusals: list[dict[str, Any]] = []
        self.egress: list[dict[str, Any]] = []
        self.deletions: list[dict[str, Any]] = []

    def add(self, rec: Mapping[str, Any]) -> None:
        subjects = subjects_of(rec)
        self._user(rec)
        for s in subjects:
            self._session(rec, s)
        names = [session_name(s) for s in subjects]
        detail = rec.get("detail") if isinstance(rec.get("detail"), dict) else {}
        assert isinstance(detail, dict)
        action, outcome = str(rec.get("action")), rec.get("outcome")
        if outcome != "ok" or not rec.get("verified", True):
            kind = kind_of(rec) if outcome != "ok" else f"unverified ({rec.get('problem')})"
            self.refusals.append(
                {**_brief(rec), "kind": kind, "other_user": rec.get("uid") != self.owner_uid, "sessions": names}
            )
        if outcome == "ok" and (action in _EGRESS or action.startswith("mcp.")):
            self._egress(rec, action, detail, subjects, names)
        if action in _DELETIONS:
            by_cleanup = bool(detail.get("cleanup")) or action.startswith("cleanup")
            self.deletions.append(
                {
                    **_brief(rec),
                    "rule": detail.get("rule"),
                    "by_cleanup": by_cleanup,
                    "detail": detail,
                    "sessions": names,
                }
            )

    def _user(self, rec: Mapping[str, Any]) -> None:
        key = (str(rec.get("user")), rec.get("uid"))
        when = rec.get("time")
        u = self.users.get(key)
        if u is None:
            u = self.users[key] = {
                "user": key[0],
                "uid": key[1],
                "owner": key[1] == self.owner_uid,
                "records": 0,
                "first": when,
                "last": when,
                "refused": 0,
                "failed": 0,
                "actions": Counter(),
                "hosts": set(),
                "programs": set(),
            }
        u["records"] += 1
        u["last"] = when
        u["actions"][str(rec.get("action"))] += 1
        u["hosts"].add(str(rec.get("host")))
        u["programs"].add(str(rec.get("program")))
        outcome = rec.get("outcome")
        if outcome != "ok":
            u["refused" if outcome == "denied" else "failed"] += 1

    def _session(self, rec: Mapping[str, Any], s: Mapping[str, Any]) -> None:
        when, action, role = rec.get("time"), str(rec.get("action")), s.get("role")
        entry = self.sessions.setdefault(
            session_name(s),
            {
                "session": s.get("id"),
                "tag": s.get("tag"),
                "erased": bool(s.get("erased")),
                "records": 0,
                "first": when,
                "last": when,
                "actions": Counter(),
                "users": set(),
            },
        )
        entry["records"] += 1
        entry["last"] = when
        entry["actions"][f"{action} ({role})" if role not in (None, "session") else action] += 1
        entry["users"].add(str(rec.get("user")))

    def _egress(
        self,
        rec: Mapping[str, Any],
        action: str,
        detail: Mapping[str, Any],
        subjects: Sequence[Mapping[str, Any]],
        names: list[str],
    ) -> None:
        if action == "export":
            what = "plaintext export" if detail.get("plaintext") else "encrypted export (bundle)"
        elif action == "resume":
            what = f"resume into {detail.get('into', 'an agent')}"
        else:
            what = f"MCP read by {detail.get('client') or 'a client'}"
        box = next((s for s in subjects if s.get("format") or s.get("file")), {})
        self.egress.append(
            {
                **_brief(rec),
                "kind": what,
                "format": detail.get("format"),
                "plaintext": bool(detail.get("plaintext")),
                "file": box.get("file"),
                "bytes": box.get("bytes", detail.get("bytes")),
                "sessions": names,
            }
        )

    def users_out(self) -> list[dict[str, Any]]:
        out = sorted(self.users.values(), key=lambda u: (-u["records"], u["user"]))
        for u in out:
            u["actions"] = dict(u["actions"].most_common())
            u["hosts"], u["programs"] = sorted(u["hosts"]), sorted(u["programs"])
        return out

    def sessions_out(self) -> list[dict[str, Any]]:
        out = sorted(self.sessions.values(), key=lambda s: (str(s["last"]), str(s["session"])), reverse=True)
        for s in out:
            s["actions"] = dict(s["actions"].most_common())
            s["users"] = sorted(s["users"])
        return out


def build(
    records: Sequence[Mapping[str, Any]],
    report: VerifyReport,
    *,
    vault_id: str,
    owner_uid: int,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str | None = None,
    session: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report of *records* (``Vault.audit_entries``'s, oldest first) within the filters."""
    now = now or datetime.now(UTC)
    chosen, timed = _select(records, since, until, user)
    sections = _Sections(owner_uid)
    for rec in chosen:
        sections.add(rec)
    users, sessions = sections.users_out(), sections.sessions_out()
    return {
        "report": "sessionseal audit report",
        "version": REPORT_VERSION,
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        "vault_id": vault_id,
        "filters": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "user": user,
            "session": session,
        },
        "verification": _verification_of(records, report),
        "summary": {
            "records": len(chosen),
            "first": timed[0][1].get("time") if timed else None,
            "last": timed[-1][1].get("time") if timed else None,
            "by_outcome": dict(Counter(str(r.get("outcome")) for r in chosen).most_common()),
            "by_action": dict(Counter(str(r.get("action")) for r in chosen).most_common()),
            "unverified": sum(1 for r in chosen if not r.get("verified", True)),
            "users": len(users),
            "sessions": len(sessions),
            "refusals": len(sections.refusals),
            "egress": len(sections.egress),
            "deletions": len(sections.deletions),
        },
        "activity": _activity(timed),
        "users": users,
        "sessions": sessions,
        "refusals": sections.refusals,
        "egress": sections.egress,
        "deletions": sections.deletions,
        "records": [dict(r) for r in chosen],
    }


def render_json(model: Mapping[str, Any]) -> bytes:
    return json.dumps(model, indent=2, ensure_ascii=False, sort_keys=False, default=str).encode() + b"\n"


_audited = audited_by(lambda auditor: auditor)


def audit_report(
    vault: Vault,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str | None = None,
    session: uuid.UUID | str | None = None,
    format: str = "json",
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> tuple[dict[str, Any], bytes | None]:
    """The report of *vault*'s audit log as a JSON-ready dict, and its bytes (``json`` or
    ``html``) unless they were written to *out* (0600, atomically; an existing file only with
    *overwrite*).  Reading the log for a report is an access: recorded as ``audit.report``.

    :raises InvalidInput: an unknown format, a session id that is not one, or *out* exists.
    """
    if format not in ("json", "html"):
        raise InvalidInput("the audit report's format is json or html")
    sid = None if session is None else parse_id(session)
    return _report(vault.parts.auditor, vault, since, until, user, sid, format, out, overwrite)


@_audited("audit.report")
def _report(  # noqa: PLR0917 - the arguments of audit_report, checked
    auditor: Auditor,
    vault: Vault,
    since: datetime | None,
    until: datetime | None,
    user: str | None,
    sid: uuid.UUID | None,
    fmt: str,
    out: str | os.PathLike[str] | None,
    overwrite: bool,
) -> tuple[dict[str, Any], bytes | None]:
    records, report = auditor.entries(sid)
    model = build(
        records,
        report,
        vault_id=str(vault.vault_id),
        owner_uid=os.stat(vault.path).st_uid,
        since=since,
        until=until,
        user=user,
        session=None if sid is None else str(sid),
    )
    data = render_html(model) if fmt == "html" else render_json(model)
    if out is not None:
        write_private_file(Path(out).absolute(), data, overwrite=overwrite)
    filters = [k for k, v in (("since", since), ("until", until), ("user", user), ("session", sid)) if v]
    detail = {"format": fmt, "records": model["summary"]["records"], "file": out is not None, "filters": filters}
    auditor.record("audit.report", detail=detail, session=sid)
    return model, None if out is not None else data
