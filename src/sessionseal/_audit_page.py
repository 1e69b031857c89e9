"""The page of ``sessionseal audit report`` (docs/reports.md): the report :func:`build` made, drawn
as one self-contained page (``_html.page``: inline style, inline SVG charts, no fetch).  Every
value of a record is escaped: a record is MACed, not trusted as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ._html import page, search_box, text

__all__ = ["render_html", "session_name", "subjects_of"]


def subjects_of(rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    subjects = rec.get("subjects")
    out = [s for s in subjects if isinstance(s, dict)] if isinstance(subjects, list) else []
    if not out and isinstance(rec.get("session"), str) and rec.get("v") == 1:
        out = [{"role": "session", "id": rec["session"]}]  # format 1: the id in the clear
    return out


def session_name(subject: Mapping[str, Any]) -> str:
    """A session as the report names it: its id while the vault holds its key, else its tag."""
    if subject.get("id"):
        return str(subject["id"])
    return f"erased:{subject.get('tag', '?')}"


#: The most rows the page's full timeline shows (the JSON has every record).
MAX_TIMELINE_ROWS: Final = 5000
#: The most rows of one user's or one session's fold, and the most sessions folded.
MAX_FOLD_ROWS: Final = 500
MAX_FOLDS: Final = 200


def _table(head: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], *, search: bool = False) -> str:
    """A table of already-escaped cells; each row with its class (``bad``, ``warn`` or "")."""
    attr = " data-search" if search else ""
    body = "".join(
        f'<tr class="{cls}"{attr}>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cls, cells in rows
    )
    if not body:
        return '<p class="muted">None.</p>'
    return "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr></thead><tbody>{body}</tbody></table>"


def _t(value: Any) -> str:
    return "" if value is None else text(value)


def _time(value: Any) -> str:
    """A record's time, to the second (the whole of it on hover)."""
    if not isinstance(value, str):
        return _t(value)
    return f'<span class="nowrap" title="{text(value)}">{text(value[:19].replace("T", " "))}</span>'


def _outcome(rec: Mapping[str, Any]) -> str:
    o = str(rec.get("outcome"))
    return f'<span class="outcome-{text(o)}">{text(o)}</span>' if o in ("ok", "denied", "error") else text(o)


def _names(names: Iterable[str], limit: int | None = None) -> str:
    items = list(names)
    shown = items if limit is None else items[:limit]
    more = f' <span class="muted">and {len(items) - len(shown)} more</span>' if len(shown) < len(items) else ""
    return " ".join(f"<code>{text(n)}</code>" for n in shown) + more


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{text(k)} {text(v)}" for k, v in counts.items())


_W, _H, _PAD = 900, 180, 30


def _bars(activity: Mapping[str, Any]) -> str:
    """Records per bucket as stacked bars: ok, refused, failed (inline SVG)."""
    series = activity["series"]
    if not series:
        return ""
    peak = max(s["ok"] + s["refused"] + s["failed"] for s in series) or 1
    width = (_W - _PAD) / len(series)
    parts = [
        f'<svg role="img" aria-label="records per {activity["bucket"]}" viewBox="0 0 {_W} {_H + 20}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="12">{peak}</text><text x="0" y="{_H}">0</text>',
    ]
    for i, s in enumerate(series):
        x = _PAD + i * width
        y = float(_H)
        for key, color in (("ok", "#6b8fbf"), ("refused", "#d9822b"), ("failed", "#c62828")):
            h = (_H - 10) * s[key] / peak
            if h:
                y -= h
                title = f"{s['start']}: {s[key]} {key}"
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{min(max(width - 1, 0.5), 48):.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{text(title)}</title></rect>'
                )
    parts.append(f'<text x="{_PAD}" y="{_H + 16}">{text(series[0]["start"])}</text>')
    parts.append(f'<text x="{_W}" y="{_H + 16}" text-anchor="end">{text(series[-1]["start"])}</text>')
    parts.append("</svg>")
    legend = (
        '<p class="muted"><span style="color:#6b8fbf">■</span> ok '
        '<span style="color:#d9822b">■</span> refused <span style="color:#c62828">■</span> failed '
        f"(records per {text(activity['bucket'])}, UTC)</p>"
    )
    return "".join(parts) + legend


def _heat(activity: Mapping[str, Any]) -> str:
    """Records per OS user per bucket (inline SVG): who was active when."""
    users: Mapping[str, list[int]] = activity["by_user"]
    if not users:
        return ""
    rows = sorted(users.items(), key=lambda kv: -sum(kv[1]))[:20]
    slots = len(activity["series"])
    label_w, row_h = 120, 18
    width = (_W - label_w) / max(slots, 1)
    peak = max(max(v) for _, v in rows) or 1
    parts = [
        f'<svg role="img" aria-label="records per user" viewBox="0 0 {_W} {row_h * len(rows) + 4}" width="100%" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for r, (name, counts) in enumerate(rows):
        y = r * row_h
        parts.append(f'<text x="0" y="{y + 13}">{text(name[:18])}</text>')
        for i, n in enumerate(counts):
            if n:
                opacity = 0.2 + 0.8 * n / peak
                parts.append(
                    f'<rect x="{label_w + i * width:.1f}" y="{y + 2}" width="{min(max(width - 1, 0.5), 48):.1f}" '
                    f'height="{row_h - 4}" fill="#3d7bd9" fill-opacity="{opacity:.2f}">'
                    f"<title>{text(name)}: {n}</title></rect>"
                )
    parts.append("</svg>")
    return "".join(parts)


def _verification(v: Mapping[str, Any]) -> str:
    if v["ok"]:
        span = f"records {v['first_seq']} to {v['last_seq']}" if v["records"] else "no records yet"
        banner = (
            f'<div class="banner ok" id="verification">The audit chain verifies: {v["records"]} records '
            f"({text(span)}) in {len(v['files'])} file(s), up to its anchored head.</div>"
        )
    else:
        bad = v["first_bad"] or {}
        banner = (
            f'<div class="banner bad" id="verification">The audit chain does NOT verify: '
            f"{text(bad.get('message', ''))} (code <code>{text(bad.get('code', ''))}</code>). "
            "Records from there on are not vouched for.</div>"
        )
        rec = v.get("first_bad_record")
        if rec:
            banner += "<p>First bad record: " + _counts({k: x for k, x in rec.items() if x is not None}) + "</p>"
    warnings = [p for p in v["problems"] if p.get("severity") == "warning"]
    for p in warnings:
        banner += f'<div class="banner warn">{text(p.get("message", ""))}</div>'
    return banner


def _timeline(records: Sequence[Mapping[str, Any]], *, search: bool = False) -> str:
    return _table(
        ["seq", "time", "user", "action", "outcome", "verified", "sessions", "detail"],
        (
            (
                "bad" if r.get("outcome") != "ok" or not r.get("verified", True) else "",
                [
                    _t(r.get("seq")),
                    _time(r.get("time")),
                    _t(r.get("user")),
                    _t(r.get("action")),
                    _outcome(r) + (f" <code>{text(r['error'])}</code>" if r.get("error") else ""),
                    "yes" if r.get("verified") else f"no ({text(r.get('problem', ''))})",
                    _names((session_name(x) for x in subjects_of(r)), limit=5),
                    text(json.dumps(r["detail"], sort_keys=True)) if isinstance(r.get("detail"), dict) else "",
                ],
            )
            for r in records
        ),
        search=search,
    )


def _folds(groups: Iterable[tuple[str, Sequence[Mapping[str, Any]]]]) -> str:
    """One fold per group (a user, a session) with its records, newest last."""
    out = []
    for label, records in groups:
        shown = records[-MAX_FOLD_ROWS:]
        more = f" (the last {len(shown)})" if len(shown) < len(records) else ""
        out.append(f"<details><summary>{text(label)}{more}</summary>{_timeline(shown)}</details>")
    return "".join(out) or '<p class="muted">None.</p>'


def _top(model: Mapping[str, Any]) -> list[str]:
    s = model["summary"]
    f = model["filters"]
    filters = ", ".join(f"{k} {v}" for k, v in f.items() if v) or "none"
    return [
        "<h1>Audit report</h1>",
        f'<p class="muted">Vault <code>{text(model["vault_id"])}</code>, generated {text(model["generated_at"])}; '
        f"filters: {text(filters)}. Only what the audit records hold: no session content.</p>",
        _verification(model["verification"]),
        '<dl class="facts">'
        f"<dt>records</dt><dd>{s['records']} ({text(s['first'] or '-')} to {text(s['last'] or '-')})</dd>"
        f"<dt>outcomes</dt><dd>{_counts(s['by_outcome'])}</dd>"
        f"<dt>OS users</dt><dd>{s['users']}</dd><dt>sessions named</dt><dd>{s['sessions']}</dd>"
        f"<dt>refusals and failures</dt><dd>{s['refusals']}</dd>"
        f"<dt>left the vault</dt><dd>{s['egress']}</dd><dt>deletions and cleanups</dt><dd>{s['deletions']}</dd>"
        f"<dt>unverified records</dt><dd>{s['unverified']}</dd></dl>",
        '<h2 id="activity">Activity over time</h2>',
        _bars(model["activity"]) or '<p class="muted">No records.</p>',
        "<h3>Activity per OS user</h3>",
        _heat(model["activity"]),
    ]


def _sections(model: Mapping[str, Any]) -> list[str]:
    return [
        '<h2 id="refusals">Refusals and failures</h2>',
        _table(
            ["seq", "time", "user", "action", "outcome", "what", "sessions"],
            (
                (
                    "bad",
                    [
                        _t(r["seq"]),
                        _time(r["time"]),
                        _t(r["user"]) + (' <span class="tag">other user</span>' if r["other_user"] else ""),
                        _t(r["action"]),
                        _outcome(r),
                        text(r["kind"]) + (f" <code>{text(r['error'])}</code>" if r.get("error") else ""),
                        _names(r["sessions"]),
                    ],
                )
                for r in model["refusals"]
            ),
        ),
        '<h2 id="egress">What left the vault</h2>',
        _table(
            ["seq", "time", "user", "how", "format", "file", "bytes", "sessions"],
            (
                (
                    "warn" if r["plaintext"] else "",
                    [
                        _t(r["seq"]),
                        _time(r["time"]),
                        _t(r["user"]),
                        text(r["kind"]),
                        _t(r["format"]),
                        _t(r["file"]),
                        _t(r["bytes"]),
                        _names(r["sessions"]),
                    ],
                )
                for r in model["egress"]
            ),
        ),
        '<h2 id="deletions">Deletions and cleanups</h2>',
        _table(
            ["seq", "time", "user", "action", "rule", "by cleanup", "detail", "sessions"],
            (
                (
                    "",
                    [
                        _t(r["seq"]),
                        _time(r["time"]),
                        _t(r["user"]),
                        _t(r["action"]),
                        _t(r["rule"]),
                        "yes" if r["by_cleanup"] else "",
                        _counts({k: v for k, v in r["detail"].items() if k != "rule"}),
                        _names(r["sessions"]),
                    ],
                )
                for r in model["deletions"]
            ),
        ),
    ]


def _people(model: Mapping[str, Any]) -> list[str]:
    return [
        '<h2 id="users">Per OS user</h2>',
        _table(
            ["user", "uid", "records", "first", "last", "refused", "failed", "actions", "hosts", "programs"],
            (
                (
                    "bad" if u["refused"] or u["failed"] else "" if u["owner"] else "warn",
                    [
                        _t(u["user"]) + ("" if u["owner"] else ' <span class="tag">not the owner</span>'),
                        _t(u["uid"]),
                        _t(u["records"]),
                        _time(u["first"]),
                        _time(u["last"]),
                        _t(u["refused"]),
                        _t(u["failed"]),
                        _counts(u["actions"]),
                        _names(u["hosts"]),
                        _names(u["programs"]),
                    ],
                )
                for u in model["users"]
            ),
        ),
        '<h2 id="sessions">Per session</h2>',
        '<p class="muted">By id while the vault holds the session\'s key; an erased session by its tag.</p>',
        _table(
            ["session", "records", "first", "last", "actions", "users"],
            (
                (
                    "",
                    [
                        _names([str(x["session"]) if x["session"] else f"erased {x['tag']}"]),
                        _t(x["records"]),
                        _time(x["first"]),
                        _time(x["last"]),
                        _counts(x["actions"]),
                        _names(x["users"]),
                    ],
                )
                for x in model["sessions"]
            ),
        ),
    ]


def _timelines(model: Mapping[str, Any]) -> list[str]:
    records = model["records"]
    shown = records[-MAX_TIMELINE_ROWS:]
    by_user: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
    by_session: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_user.setdefault((str(r.get("user")), r.get("uid")), []).append(r)
        for name in dict.fromkeys(session_name(x) for x in subjects_of(r)):
            by_session.setdefault(name, []).append(r)
    return [
        '<h2 id="timeline">Timeline</h2>',
        (
            f'<p class="muted">The last {len(shown)} of {len(records)} records; the JSON report has all.</p>'
            if len(shown) < len(records)
            else ""
        ),
        search_box("the timeline"),
        _timeline(shown, search=True),
        '<h2 id="user-timelines">Timeline per OS user</h2>',
        _folds(
            (
                f"{u['user']} (uid {u['uid']}): {u['records']} records, {u['refused']} refused, {u['failed']} failed",
                by_user.get((u["user"], u["uid"]), []),
            )
            for u in model["users"]
        ),
        '<h2 id="session-timelines">Timeline per session</h2>',
        _folds(
            (
                f"{x['session'] or 'erased ' + str(x['tag'])}: {x['records']} records",
                by_session.get(x["session"] or f"erased:{x['tag']}", []),
            )
            for x in model["sessions"][:MAX_FOLDS]
        ),
    ]


def render_html(model: Mapping[str, Any]) -> bytes:
    """The report as one self-contained page."""
    body = [
        *_top(model),
        *_sections(model),
        *_people(model),
        *_timelines(model),
        "<footer>Made by sessionseal audit report from the vault's audit log. It names sessions by id and "
        "users by name: keep it private.</footer>",
    ]
    return page("sessionseal audit report", "\n".join(b for b in body if b), search=True, wide=True)
