"""HTML pages: a session's transcript, an index of sessions (``export --format html``) and the
shared page frame of the audit report (``_audit_report.py``).

Every page is self-contained and safe to open from a hostile vault's content:

* every stored string goes through :func:`text` (HTML-escaped, quotes too, so it is safe in
  an element or an attribute; control and invisible format characters shown as visible escapes,
  as ``show`` does at a terminal: ``\\x1b``, ``\\u202e``);
* a Content-Security-Policy forbids every fetch (``default-src 'none'``), allows our inline
  style, and only the one inline script whose hash it names: even a string that escaped
  escaping could neither load anything nor run;
* no stored text is ever put in a script, a URL or a style; links between pages are built
  from session ids that are parsed as UUIDs first;
* the page reads without scripts: tool calls, results and thinking fold with ``<details>``;
  the script only adds search.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ._sanitize._engine import PLACEHOLDER
from ._textsafe import CONTROLS, FORMAT, UNSAFE, code

__all__ = ["CSP", "page", "render_index", "render_session", "session_file", "text"]

#: Any character :data:`UNSAFE` matches (a CR is a C0 control): its fast test.
_ANY_UNSAFE: Final = re.compile(f"[{CONTROLS}{FORMAT}]")
#: The same for ASCII text (C0 but newline and tab, DEL): a small class scans three times faster.
_ASCII_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f]")

#: Session pages' and the index's search: hide what does not match, open the folds that do.
#: Reads the DOM only (no stored text is ever put in a script).
_SCRIPT: Final = """
(function () {
  var box = document.getElementById("search");
  if (!box) { return; }
  box.hidden = false;
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-search]"));
  var count = document.getElementById("search-count");
  box.querySelector("input").addEventListener("input", function (ev) {
    var q = ev.target.value.toLowerCase();
    var shown = 0;
    items.forEach(function (el) {
      var hit = !q || el.textContent.toLowerCase().indexOf(q) >= 0;
      el.hidden = !hit;
      if (hit) { shown += 1; }
      if (hit && q) {
        Array.prototype.forEach.call(el.querySelectorAll("details"), function (d) {
          if (d.textContent.toLowerCase().indexOf(q) >= 0) { d.open = true; }
        });
      }
    });
    count.textContent = q ? shown + " of " + items.length + " match" : "";
  });
})();
""".strip()

_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
#: Nothing may be fetched (images, fonts, frames, connections, form posts); our inline style and
#: our one script (by hash) only.
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; img-src data:; base-uri 'none'; form-action 'none'"
)

_STYLE: Final = """
:root { color-scheme: light dark; --fg: #1b1f23; --bg: #fff; --muted: #5a6570; --line: #d8dee4;
  --user: #eef5ff; --assistant: #f6f8fa; --tool: #fbf7ee; --bad: #b42318; --badbg: #fdecea;
  --warn: #8a5a00; --warnbg: #fff4d6; --ok: #176639; --okbg: #e7f6ec; --mark: #ffe08a; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9aa7b4;
  --line: #30363d; --user: #132238; --assistant: #161b22; --tool: #221c10; --badbg: #3b1214;
  --bad: #ff8a80; --warnbg: #33270a; --warn: #f2c45a; --okbg: #0f2a1a; --ok: #6fd69a; --mark: #6b5200; } }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto;
  max-width: 72rem; padding: 1rem 1.5rem 4rem; overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin: .5rem 0; } h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; }
pre { white-space: pre-wrap; margin: .25rem 0; padding: .5rem; background: var(--assistant);
  border: 1px solid var(--line); border-radius: 4px; max-height: 40rem; overflow: auto; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; } table.figures { width: auto; min-width: 20rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; white-space: nowrap; } td.num { white-space: nowrap; } .nowrap { white-space: nowrap; }
body.wide { max-width: 110rem; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.muted { color: var(--muted); }
.tag { display: inline-block; padding: 0 .4rem; margin: 0 .2rem .1rem 0; border: 1px solid var(--line);
  border-radius: 1rem; font-size: .85em; }
.msg { border: 1px solid var(--line); border-radius: 6px; margin: .75rem 0; padding: .5rem .75rem; }
.msg.role-user { background: var(--user); } .msg.role-assistant { background: var(--assistant); }
.msg.role-tool, .msg.role-system { background: var(--tool); }
.msg header { display: flex; flex-wrap: wrap; gap: .75rem; font-size: .85em; color: var(--muted); }
.msg header .role { font-weight: 700; color: var(--fg); text-transform: capitalize; }
.text { white-space: pre-wrap; margin: .35rem 0; }
details { margin: .35rem 0; border-left: 3px solid var(--line); padding-left: .5rem; }
details > summary { cursor: pointer; color: var(--muted); }
details.tool-error { border-left-color: var(--bad); }
mark.redacted { background: var(--mark); color: inherit; border-radius: 3px; padding: 0 .15rem; }
.esc { font-family: ui-monospace, monospace; background: var(--badbg); color: var(--bad);
  border: 1px dotted var(--bad); border-radius: 2px; padding: 0 .1rem; }
.banner { padding: .6rem .9rem; border-radius: 6px; margin: .75rem 0; font-weight: 600; }
.banner.ok { background: var(--okbg); color: var(--ok); } .banner.bad { background: var(--badbg); color: var(--bad); }
.banner.warn { background: var(--warnbg); color: var(--warn); }
tr.bad td { background: var(--badbg); } tr.warn td { background: var(--warnbg); }
.outcome-denied, .outcome-error { color: var(--bad); font-weight: 600; }
#search { margin: .75rem 0; } #search input { font: inherit; padding: .3rem .5rem; width: min(30rem, 100%); }
svg text { fill: var(--muted); font: 11px system-ui, sans-serif; }
footer { margin-top: 2rem; font-size: .85em; color: var(--muted); }
""".strip()


def text(value: Any) -> str:
    """*value* as HTML text, safe in an element or a quoted attribute: escaped (``&<>"'``),
    and every control or invisible format character shown as a visible escape."""
    s = value if isinstance(value, str) else str(value)
    if (_ASCII_UNSAFE if s.isascii() else _ANY_UNSAFE).search(s) is None:  # the common case: one scan
        return html.escape(s, quote=True)
    out: list[str] = []
    pos = 0
    for m in UNSAFE.finditer(s):
        out.append(html.escape(s[pos : m.start()], quote=True))
        ch = m.group()
        out.append("\n" if ch == "\r\n" else f'<span class="esc" title="hidden character">{code(ch)}</span>')
        pos = m.end()
    out.append(html.escape(s[pos:], quote=True))
    # A lone surrogate was made visible above; nothing left can fail to encode.
    return "".join(out)


def rich_text(value: Any) -> str:
    """Stored text with redaction placeholders highlighted (they are ASCII: escaping keeps them)."""
    s = value if isinstance(value, str) else str(value)
    out: list[str] = []
    pos = 0
    for m in PLACEHOLDER.finditer(s):
        out.append(text(s[pos : m.start()]))
        out.append(f'<mark class="redacted" title="redacted by the sanitizer">{text(m.group())}</mark>')
        pos = m.end()
    out.append(text(s[pos:]))
    return "".join(out)


def page(title: str, body: str, *, search: bool = False, wide: bool = False, generator: str = "sessionseal") -> bytes:
    """A whole page: the CSP, our style, *body* (already HTML), and the search script if asked."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{text(generator)}">',
        f"<title>{text(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        '<body class="wide">' if wide else "<body>",
        body,
    ]
    if search:
        parts.append(f"<script>{_SCRIPT}</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts).encode("utf-8")


def search_box(what: str) -> str:
    # Hidden until the script shows it: without scripts it could do nothing.
    return (
        f'<div id="search" hidden><input type="search" placeholder="Search {text(what)}" '
        f'aria-label="Search {text(what)}"> <span id="search-count" class="muted"></span></div>'
    )


def short_time(value: Any) -> str:
    """A stored time to the second, the whole of it on hover (escaped either way)."""
    if not isinstance(value, str) or not value:
        return ""
    return f'<span class="nowrap" title="{text(value)}">{text(value[:19].replace("T", " "))}</span>'


def session_file(sid: Any) -> str | None:
    """The file name of a session's page in an export directory, or None when *sid* is not a
    session id (only ids parsed as UUIDs ever reach a URL)."""
    try:
        return f"{uuid.UUID(str(sid))}.html"
    except ValueError:
        return None


def _num(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _cost(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def figures(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Token and cost figures of a session: summed over its messages' usage, or its stats."""
    keys = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    total = dict.fromkeys(keys, 0)
    cost = 0.0
    priced = False
    for msg in doc.get("messages") or []:
        if not isinstance(msg, Mapping):
            continue
        usage = msg.get("usage")
        if isinstance(usage, Mapping):
            for k in keys:
                total[k] += _num(usage.get(k))
        if msg.get("cost_usd") is not None:
            priced = True
            cost += _cost(msg.get("cost_usd"))
    stats = doc.get("stats") if isinstance(doc.get("stats"), Mapping) else {}
    assert isinstance(stats, Mapping)
    if not any(total.values()):
        total["input_tokens"] = _num(stats.get("input_tokens"))
        total["output_tokens"] = _num(stats.get("output_tokens"))
    if not priced:
        cost = _cost(stats.get("cost_usd"))
    messages = doc.get("messages") or []
    return {**total, "cost_usd": round(cost, 6), "messages": len(messages) if isinstance(messages, list) else 0}


def _link(sid: Any, pages: Mapping[str, str] | None) -> str:
    """A session id as a link to its page when the export holds it, else as text."""
    name = session_file(sid)
    label = f"<code>{text(sid)}</code>"
    if name is None or pages is None or str(uuid.UUID(str(sid))) not in pages:
        return label + ("" if pages is None else ' <span class="muted">(not in this export)</span>')
    title = pages[str(uuid.UUID(str(sid)))]
    return f'<a href="{name}">{label}</a> {text(title) if title else ""}'


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _block(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return f'<div class="text">{rich_text(block.get("text", ""))}</div>'
    if kind == "thinking":
        body = rich_text(block.get("text", ""))
        return f'<details class="thinking"><summary>thinking</summary><div class="text">{body}</div></details>'
    if kind == "tool_call":
        args = block.get("arguments")
        shown = args if isinstance(args, str) else _json(args)
        ident = f' <span class="muted">{text(block.get("id"))}</span>' if block.get("id") else ""
        return (
            f'<details class="tool-call"><summary>tool call <code>{text(block.get("name", ""))}</code>{ident}'
            f"</summary><pre>{rich_text(shown)}</pre></details>"
        )
    if kind == "tool_result":
        content = block.get("content")
        shown = content if isinstance(content, str) else _json(content)
        error = bool(block.get("is_error"))
        label = "tool error" if error else "tool result"
        ident = f' <span class="muted">{text(block.get("tool_call_id"))}</span>' if block.get("tool_call_id") else ""
        cls = "tool-result tool-error" if error else "tool-result"
        return (
            f'<details class="{cls}"><summary>{label}{ident} <span class="muted">({len(shown)} characters)</span>'
            f"</summary><pre>{rich_text(shown)}</pre></details>"
        )
    return (
        f'<details class="other"><summary>{text(kind if isinstance(kind, str) else "?")} block</summary>'
        f"<pre>{rich_text(_json(dict(block)))}</pre></details>"
    )


def _message(n: int, msg: Mapping[str, Any]) -> str:
    role = str(msg.get("role") or "?")
    cls = role if role in ("user", "assistant", "tool", "system") else "other"
    head = [f'<span class="role">{text(role)}</span>', f'<span class="muted">#{n}</span>']
    for key in ("model", "timestamp"):
        if msg.get(key):
            head.append(f"<span>{text(msg[key])}</span>")
    usage = msg.get("usage")
    if isinstance(usage, Mapping):
        parts = [
            f"{_num(usage.get(k))} {k.removesuffix('_tokens').replace('_', ' ')}" for k in usage if _num(usage.get(k))
        ]
        if parts:
            head.append(f"<span>{text(', '.join(parts))} tokens</span>")
    if msg.get("cost_usd") is not None:
        head.append(f"<span>${_cost(msg.get('cost_usd')):.4f}</span>")
    blocks = msg.get("content") or []
    body = "".join(_block(b) for b in blocks if isinstance(b, Mapping)) if isinstance(blocks, list) else ""
    return f'<section class="msg role-{cls}" id="m{n}" data-search><header>{"".join(head)}</header>{body}</section>'


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows if v) + "</dl>"


def _facts_of(doc: Mapping[str, Any]) -> str:
    """What the session is: id, status, times, workspace, models, tags, outcome."""
    tags = "".join(f'<span class="tag">{text(t)}</span>' for t in doc.get("tags") or [])
    models = list(
        dict.fromkeys(str(m["model"]) for m in doc.get("messages") or [] if isinstance(m, Mapping) and m.get("model"))
    )
    return _facts(
        [
            ("id", f"<code>{text(doc.get('id', ''))}</code>"),
            ("status", text(doc.get("status", "")) + (" · pinned" if doc.get("pinned") else "")),
            ("created", text(doc.get("created_at") or "")),
            ("updated", text(doc.get("updated_at") or "")),
            ("workspace", f"<code>{text(doc['workspace'])}</code>" if doc.get("workspace") else ""),
            ("directory", f"<code>{text(doc['working_directory'])}</code>" if doc.get("working_directory") else ""),
            ("models", text(", ".join(models))),
            ("tags", tags),
            ("outcome", text(doc.get("outcome") or "")),
        ]
    )


def _figures_of(doc: Mapping[str, Any]) -> str:
    """Its tokens and cost, as a table."""
    fig = figures(doc)
    stats = doc.get("stats") if isinstance(doc.get("stats"), Mapping) else {}
    assert isinstance(stats, Mapping)
    figure_rows = [
        ("messages", str(fig["messages"])),
        ("input tokens", str(fig["input_tokens"])),
        ("output tokens", str(fig["output_tokens"])),
        ("cache read tokens", str(fig["cache_read_tokens"])),
        ("cache write tokens", str(fig["cache_write_tokens"])),
        ("cost", f"${fig['cost_usd']:.4f}"),
    ]
    if _cost(stats.get("duration_seconds")):
        figure_rows.append(("duration", f"{_cost(stats.get('duration_seconds')):.0f} s"))
    return (
        '<table class="figures"><tbody>'
        + "".join(f'<tr><th>{k}</th><td class="num">{v}</td></tr>' for k, v in figure_rows)
        + "</tbody></table>"
    )


def render_session(
    doc: Mapping[str, Any],
    *,
    pages: Mapping[str, str] | None = None,
    children: Sequence[tuple[str, str]] = (),
    index: bool = False,
) -> bytes:
    """One session's page.

    :param pages: the sessions of the export (id -> title): links go to their pages; None for a
        page of its own (the links are ids).
    :param children: sessions of the export that were forked or continued from this one
        (id, link kind).
    :param index: link back to ``index.html``.
    """
    title = str(doc.get("title") or "(untitled)")
    facts, figures_html = _facts_of(doc), _figures_of(doc)
    links = doc.get("links") if isinstance(doc.get("links"), Mapping) else {}
    assert isinstance(links, Mapping)
    link_rows = [
        (label, _link(links[key], pages))
        for key, label in (("parent", "parent"), ("forked_from", "forked from"), ("continued_from", "continued from"))
        if links.get(key)
    ]
    link_rows += [("related", _link(r, pages)) for r in links.get("related") or []]
    link_rows += [(kind, _link(child, pages)) for child, kind in children]
    redactions = doc.get("redactions") if isinstance(doc.get("redactions"), Mapping) else {}
    assert isinstance(redactions, Mapping)
    red = ", ".join(f"{k}: {_num(v)}" for k, v in sorted(redactions.items()))
    messages = doc.get("messages") or []
    body = [
        '<nav><a href="index.html">← all sessions</a></nav>' if index else "",
        f"<h1>{rich_text(title)}</h1>",
        f'<p class="text">{rich_text(doc["description"])}</p>' if doc.get("description") else "",
        facts,
        "<h2>Tokens and cost</h2>",
        figures_html,
    ]
    if link_rows:
        body += ["<h2>Linked sessions</h2>", _facts(link_rows)]
    if red:
        body += [
            "<h2>Redactions</h2>",
            f'<p>The sanitizer replaced secrets with placeholders such as <mark class="redacted">'
            f"[REDACTED:rule]</mark>: {text(red)}.</p>",
        ]
    body += [
        f"<h2>Transcript <span class='muted'>({len(messages)} messages)</span></h2>",
        search_box("the transcript"),
        "".join(_message(n, m) for n, m in enumerate(messages, 1) if isinstance(m, Mapping)),
        "<footer>Exported by sessionseal: plaintext of the sanitized session. Keep it private.</footer>",
    ]
    return page(title, "\n".join(b for b in body if b), search=True)


def render_index(docs: Sequence[Mapping[str, Any]]) -> bytes:
    """The index page of an export directory: one row per session, with its figures."""
    rows = []
    totals = {"messages": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    for doc in docs:
        fig = figures(doc)
        for k in totals:
            totals[k] += fig[k]
        name = session_file(doc.get("id")) or "#"
        tags = "".join(f'<span class="tag">{text(t)}</span>' for t in doc.get("tags") or [])
        links = doc.get("links") if isinstance(doc.get("links"), Mapping) else {}
        assert isinstance(links, Mapping)
        origin = next(
            (lbl for k, lbl in (("forked_from", "fork"), ("continued_from", "continuation")) if links.get(k)), ""
        )
        rows.append(
            "<tr data-search>"
            f'<td><a href="{name}">{rich_text(doc.get("title") or "(untitled)")}</a>'
            f"{f' <span class=muted>({origin})</span>' if origin else ''}"
            f'<br><code class="muted">{text(doc.get("id", ""))}</code></td>'
            f"<td>{text(doc.get('status', ''))}</td><td>{short_time(doc.get('updated_at'))}</td>"
            f'<td class="num">{fig["messages"]}</td><td class="num">{fig["input_tokens"]}</td>'
            f'<td class="num">{fig["output_tokens"]}</td><td class="num">${fig["cost_usd"]:.4f}</td>'
            f"<td>{tags}</td><td><code>{text(doc.get('workspace') or '')}</code></td></tr>"
        )
    head = (
        "<thead><tr><th>session</th><th>status</th><th>updated</th><th class=num>messages</th>"
        "<th class=num>input</th><th class=num>output</th><th class=num>cost</th><th>tags</th>"
        "<th>workspace</th></tr></thead>"
    )
    body = [
        f"<h1>{len(docs)} sessions</h1>",
        f"<p>{totals['messages']} messages, {totals['input_tokens']} input and {totals['output_tokens']} output "
        f"tokens, ${totals['cost_usd']:.4f} recorded cost.</p>",
        search_box("sessions"),
        f'<table class="sessions">{head}<tbody>{"".join(rows)}</tbody></table>',
        "<footer>Exported by sessionseal: plaintext of the sanitized sessions. Keep it private.</footer>",
    ]
    return page("sessionseal export", "\n".join(body), search=True)


def render_site(docs: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """An export directory: ``index.html`` and one ``<id>.html`` per session, linked both ways
    (parents to children among the exported sessions)."""
    pages = {str(uuid.UUID(str(d.get("id")))): str(d.get("title") or "") for d in docs}
    children: dict[str, list[tuple[str, str]]] = {}
    for d in docs:
        links = d.get("links") if isinstance(d.get("links"), Mapping) else {}
        assert isinstance(links, Mapping)
        for key, kind in (("parent", "child"), ("forked_from", "fork"), ("continued_from", "continuation")):
            target = links.get(key)
            name = session_file(target) if target else None
            if name is not None and str(uuid.UUID(str(target))) in pages:
                children.setdefault(str(uuid.UUID(str(target))), []).append((str(d.get("id")), kind))
    out = {"index.html": render_index(docs)}
    for d in docs:
        sid = str(uuid.UUID(str(d.get("id"))))
        out[f"{sid}.html"] = render_session(d, pages=pages, children=children.get(sid, ()), index=True)
    return out
