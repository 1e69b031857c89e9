"""Human output with rich: tables for lists, a readable transcript for one session.

Everything shown here comes from sanitized, stored data, and is printed as rich Text, never
parsed as markup: a title such as ``[bold red]x[/]`` or ``[link=...]`` prints as it is.  At a
terminal, control and invisible format characters are shown as escapes (``_terminal``): stored
text cannot clear the screen, write the clipboard or hide a line from a reviewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sessionseal.models import (
    Session,
    SessionSummary,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

from ._terminal import at_terminal, styled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sessionseal import Checkpoint, Decision, SearchHit

__all__ = ["render_audit", "render_hits", "render_list", "render_plan", "render_session", "size", "stdout_console"]


def stdout_console() -> tuple[Console, Callable[..., Text]]:
    """A console for this command's stdout, and the function that makes stored text safe for it."""
    terminal = at_terminal()
    # Piped or captured: rich would assume 80 columns and squeeze the table unreadably.
    console = Console(
        highlight=False, soft_wrap=False, emoji=False, force_terminal=terminal, width=None if terminal else 160
    )

    def t(value: str, style: str = "") -> Text:
        return styled(value, style, terminal=terminal)

    return console, t


def _line(*parts: Text | str | tuple[str, str]) -> Text:
    """Literal strings (ours), (text, style) pairs (ours) and Text (stored text, made safe)."""
    return Text.assemble(*parts)


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
    c, t = stdout_console()
    if not summaries:
        c.print("No sessions yet. Store one with 'sessionseal save FILE'.")
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("id", "title", "status", "tags", "updated", "msgs", "size"):
        table.add_column(col, no_wrap=col in ("id", "updated"), justify="right" if col in ("msgs", "size") else "left")
    for s in summaries:
        table.add_row(
            str(s.id),
            t(s.title[:60] or "-"),
            s.status.value + (" (pinned)" if s.pinned else ""),
            t(",".join(s.tags)),
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
            str(s.message_count),
            size(s.size_stored),
        )
    c.print(table)
    c.print(f"{len(summaries)} session(s)")


def render_plan(decisions: list[Decision], source: str, rules: str) -> None:
    """A cleanup plan: each session, what happens to it, and the rule that decided."""
    c, t = stdout_console()
    c.print(_line(f"Policy from {source}: ", t(rules)))
    if not decisions:
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("id", "title", "status", "updated", "size", "action", "rule", "why"):
        table.add_column(col, no_wrap=col in ("id", "updated"), justify="right" if col == "size" else "left")
    for d in decisions:
        s = d.session
        table.add_row(
            str(s.id),
            t(s.title[:40] or "-"),
            s.status.value + (" (pinned)" if s.pinned else ""),
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
            size(s.size_stored),
            Text("remove", style="red") if d.action == "remove" else "keep",
            t(d.rule),
            t(d.detail),
        )
    c.print(table)


def render_hits(hits: list[SearchHit]) -> None:
    """Search results: the session, where the text was found, and the snippet."""
    c, t = stdout_console()
    if not hits:
        c.print("No session matches.")
        return
    for h in hits:
        c.print(_line((h.id, "bold"), "  ", t(h.title or "(untitled)"), "  ", t(h.updated_at[:16], "dim")))
        if h.field:
            c.print(_line("  ", t(h.field + ":", "dim"), " ", t(h.snippet)))
    c.print(f"{len(hits)} session(s)")


def render_audit(records: list[dict[str, object]]) -> None:
    """A table of audit records, oldest first, each marked verified or not."""
    c, t = stdout_console()
    if not records:
        c.print("No audit records match.")
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
            "yes" if ok else Text.assemble(("NO", "bold red"), " (", t(str(r.get("problem", "unchecked"))), ")"),
            t(str(r.get("time", ""))[:19].replace("T", " ")),
            t(str(r.get("action", ""))),
            t(str(r.get("outcome", ""))),
            t(str(r.get("session", "") or "")),
            t(f"{r.get('user', '')} ({r.get('uid', '')})"),
            t(f"{r.get('program', '')} pid {r.get('pid', '')}"),
            t(", ".join(details)),
        )
    c.print(table)
    tail = f", {unverified} NOT verified" if unverified else ", all verified"
    c.print(f"{len(records)} record(s){tail}")


def _subject_text(e: dict[str, object]) -> str:
    who = str(e["id"]) if e.get("id") else f"erased session {str(e.get('tag', ''))[:12]}"
    extra = [f"{k}={v}" for k, v in e.items() if k in ("file", "action", "messages")]
    return f"{e.get('role')}: {who}" + (f" ({', '.join(extra)})" if extra else "")


def render_session(session: Session, *, checkpoints: Sequence[Checkpoint] = ()) -> None:
    """Metadata, then each message with its blocks."""
    c, t = stdout_console()
    _render_header(c, t, session, checkpoints)
    for msg in session.messages:
        stamp = f" {msg.timestamp:%H:%M:%S}" if msg.timestamp else ""
        model = _line(" (", t(msg.model), ")") if msg.model else ""
        c.print(_line(t(msg.role, "bold cyan"), model, stamp))
        for block in msg.content:
            if isinstance(block, TextBlock | ThinkingBlock):
                prefix = ("(thinking) ", "dim") if isinstance(block, ThinkingBlock) else ""
                c.print(_line(prefix, t(block.text)))
            elif isinstance(block, ToolCallBlock):
                c.print(_line(t(f"-> {block.name}", "magenta"), " ", t(str(block.arguments))))
            elif isinstance(block, ToolResultBlock):
                text = block.content if isinstance(block.content, str) else str(block.content)
                mark = ("<- error", "red") if block.is_error else ("<-", "green")
                c.print(_line(mark, " ", t(text)))
            else:
                c.print(Text.assemble("(", t(block.type), " block)", style="dim"))
        c.print()


def _render_header(c: Console, t: Callable[..., Text], session: Session, checkpoints: Sequence[Checkpoint]) -> None:
    c.print(_line(t(session.title or "(untitled)", "bold"), f"  {session.id}"))
    pinned = ", pinned" if session.pinned else ""
    c.print(_line(f"status {session.status.value}{pinned}   tags ", t(", ".join(session.tags) or "-")))
    c.print(f"created {session.created_at:%Y-%m-%d %H:%M:%S}Z   updated {session.updated_at:%Y-%m-%d %H:%M:%S}Z")
    if session.workspace or session.working_directory:
        c.print(_line("workspace ", t(session.workspace or "-"), "   cwd ", t(session.working_directory or "-")))
    links = session.links
    shown = [("parent", links.parent), ("forked from", links.forked_from), ("continues", links.continued_from)]
    if any(v for _, v in shown) or links.related:
        parts = [f"{k} {v}" for k, v in shown if v] + [f"related {r}" for r in links.related]
        c.print(_line("links: ", t(", ".join(parts))))
    if checkpoints:
        c.print(_line("checkpoints: ", t(", ".join(f"#{cp.number} {cp.name}" for cp in checkpoints))))
    if session.description:
        c.print(t(session.description))
    if session.redactions:
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(session.redactions.items()))
        c.print(_line(("redacted at save:", "yellow"), " ", t(counts)))
    for name, value in (("environment", session.environment), ("config", session.config)):
        if value:
            c.print(_line(f"{name}: ", t(", ".join(f"{k}={v}" for k, v in value.items()))))
    c.print()
