"""Human output with rich: tables for lists, a readable transcript for one session.

Everything shown here comes from sanitized, stored data.  Markup in session text is
escaped: a title cannot inject terminal styling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sessionseal.models import (
    Session,
    SessionSummary,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sessionseal import Checkpoint, Decision, SearchHit

__all__ = ["render_audit", "render_hits", "render_list", "render_plan", "render_session", "size"]

_console = Console(highlight=False, soft_wrap=False)
if not _console.is_terminal:
    # Piped or captured: rich would assume 80 columns and squeeze the table unreadably.
    _console = Console(highlight=False, soft_wrap=False, width=160)


def size(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def render_list(summaries: list[SessionSummary]) -> None:
    """A table of sessions, newest first."""
    if not summaries:
        _console.print("No sessions yet. Store one with 'sessionseal save FILE'.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("id", "title", "status", "tags", "updated", "msgs", "size"):
        table.add_column(col, no_wrap=col in ("id", "updated"), justify="right" if col in ("msgs", "size") else "left")
    for s in summaries:
        table.add_row(
            str(s.id),
            escape(s.title[:60]) or "-",
            s.status.value + (" (pinned)" if s.pinned else ""),
            escape(",".join(s.tags)),
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
            str(s.message_count),
            size(s.size_stored),
        )
    _console.print(table)
    _console.print(f"{len(summaries)} session(s)")


def render_plan(decisions: list[Decision], source: str, rules: str) -> None:
    """A cleanup plan: each session, what happens to it, and the rule that decided."""
    _console.print(f"Policy from {source}: {escape(rules)}")
    if not decisions:
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("id", "title", "status", "updated", "size", "action", "rule", "why"):
        table.add_column(col, no_wrap=col in ("id", "updated"), justify="right" if col == "size" else "left")
    for d in decisions:
        s = d.session
        table.add_row(
            str(s.id),
            escape(s.title[:40]) or "-",
            s.status.value + (" (pinned)" if s.pinned else ""),
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
            size(s.size_stored),
            "[red]remove[/red]" if d.action == "remove" else "keep",
            d.rule,
            escape(d.detail),
        )
    _console.print(table)


def render_hits(hits: list[SearchHit]) -> None:
    """Search results: the session, where the text was found, and the snippet."""
    if not hits:
        _console.print("No session matches.")
        return
    for h in hits:
        _console.print(f"[bold]{h.id}[/bold]  {escape(h.title) or '(untitled)'}  [dim]{h.updated_at[:16]}[/dim]")
        _console.print(f"  [dim]{escape(h.field)}:[/dim] {escape(h.snippet)}")
    _console.print(f"{len(hits)} session(s)")


def render_audit(records: list[dict[str, object]]) -> None:
    """A table of audit records, oldest first, each marked verified or not."""
    if not records:
        _console.print("No audit records match.")
        return
    table = Table(show_edge=False, pad_edge=False)
    cols = ("seq", "verified", "time (UTC)", "action", "outcome", "session", "user", "program", "details")
    for col in cols:
        table.add_column(
            col, no_wrap=col in ("time (UTC)", "session", "verified"), justify="right" if col == "seq" else "left"
        )
    unverified = 0
    for r in records:
        details = []
        if r.get("error"):
            details.append(str(r["error"]))
        if r.get("bytes") is not None:
            details.append(f"{r['bytes']} B")
        red = r.get("redactions")
        if isinstance(red, dict) and red:
            details.append(f"{sum(int(v) for v in red.values() if isinstance(v, int))} redacted")
        if r.get("unkeyed"):
            details.append("recorded before the key was available")
        detail = r.get("detail")
        if isinstance(detail, dict):
            details.extend(f"{k}={v}" for k, v in detail.items())
        subjects = r.get("subjects")
        if isinstance(subjects, list):
            for e in subjects:
                if isinstance(e, dict) and e.get("role") != "session":
                    details.append(_subject_text(e))
        seq = r.get("seq")
        ok = r.get("verified") is True
        unverified += not ok
        table.add_row(
            "-" if seq is None else str(seq),
            "yes" if ok else f"[bold red]NO[/] ({escape(str(r.get('problem', 'unchecked')))})",
            str(r.get("time", ""))[:19].replace("T", " "),
            escape(str(r.get("action", ""))),
            escape(str(r.get("outcome", ""))),
            escape(str(r.get("session", "") or "")),
            escape(f"{r.get('user', '')} ({r.get('uid', '')})"),
            escape(f"{r.get('program', '')} pid {r.get('pid', '')}"),
            escape(", ".join(details)),
        )
    _console.print(table)
    tail = f", {unverified} NOT verified" if unverified else ", all verified"
    _console.print(f"{len(records)} record(s){tail}")


def _subject_text(e: dict[str, object]) -> str:
    who = str(e["id"]) if e.get("id") else f"erased session {str(e.get('tag', ''))[:12]}"
    extra = [f"{k}={v}" for k, v in e.items() if k in ("file", "action", "messages")]
    return f"{e.get('role')}: {who}" + (f" ({', '.join(extra)})" if extra else "")


def render_session(session: Session, *, checkpoints: Sequence[Checkpoint] = ()) -> None:
    """Metadata, then each message with its blocks."""
    _render_header(session, checkpoints)
    c = _console
    for msg in session.messages:
        stamp = f" {msg.timestamp:%H:%M:%S}" if msg.timestamp else ""
        model = f" ({escape(msg.model)})" if msg.model else ""
        c.print(f"[bold cyan]{escape(msg.role)}[/bold cyan]{model}{stamp}")
        for block in msg.content:
            if isinstance(block, TextBlock | ThinkingBlock):
                prefix = "[dim](thinking)[/dim] " if isinstance(block, ThinkingBlock) else ""
                c.print(prefix + escape(block.text))
            elif isinstance(block, ToolCallBlock):
                c.print(f"[magenta]-> {escape(block.name)}[/magenta] {escape(str(block.arguments))}")
            elif isinstance(block, ToolResultBlock):
                text = block.content if isinstance(block.content, str) else str(block.content)
                c.print(("[red]<- error[/red] " if block.is_error else "[green]<-[/green] ") + escape(text))
            else:
                c.print(f"[dim]({escape(block.type)} block)[/dim]")
        c.print()


def _render_header(session: Session, checkpoints: Sequence[Checkpoint]) -> None:
    c = _console
    c.print(f"[bold]{escape(session.title) or '(untitled)'}[/bold]  {session.id}")
    pinned = ", pinned" if session.pinned else ""
    c.print(f"status {session.status.value}{pinned}   tags {escape(', '.join(session.tags)) or '-'}")
    c.print(f"created {session.created_at:%Y-%m-%d %H:%M:%S}Z   updated {session.updated_at:%Y-%m-%d %H:%M:%S}Z")
    if session.workspace or session.working_directory:
        c.print(f"workspace {escape(session.workspace or '-')}   cwd {escape(session.working_directory or '-')}")
    links = session.links
    shown = [("parent", links.parent), ("forked from", links.forked_from), ("continues", links.continued_from)]
    if any(v for _, v in shown) or links.related:
        parts = [f"{k} {v}" for k, v in shown if v] + [f"related {r}" for r in links.related]
        c.print("links: " + ", ".join(parts))
    if checkpoints:
        c.print("checkpoints: " + escape(", ".join(f"#{cp.number} {cp.name}" for cp in checkpoints)))
    if session.description:
        c.print(escape(session.description))
    if session.redactions:
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(session.redactions.items()))
        c.print(f"[yellow]redacted at save:[/yellow] {counts}")
    for name, value in (("environment", session.environment), ("config", session.config)):
        if value:
            c.print(f"{name}: " + escape(", ".join(f"{k}={v}" for k, v in value.items())))
    c.print()
