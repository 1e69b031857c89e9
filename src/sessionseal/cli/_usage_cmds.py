"""``stats --usage``: tokens and cost by day, week, month, model, workspace or tool (docs/cli.md)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

from ._common import echo_json, private_text, private_words, text_file_option
from ._terminal import say

if TYPE_CHECKING:
    from collections.abc import Callable

    from sessionseal import UsageReport

__all__ = ["USAGE_DESTS", "USAGE_OPTIONS", "usage_command"]

#: The options of 'stats' that only --usage takes (dest names, for the "needs --usage" check).
USAGE_DESTS = ("by", "since", "until", "utc", "tags", "tags_file", "workspace", "workspace_file", "here", "model")

USAGE_OPTIONS = [
    click.option("--usage", is_flag=True, help="Tokens and cost from the stored sessions, grouped --by."),
    click.option(
        "--by",
        type=click.Choice(["day", "week", "month", "model", "workspace", "tool"]),
        help="Group usage by (default: day); weeks are ISO weeks, from Monday.",
    ),
    click.option("--since", metavar="WHEN", help="Usage at or after WHEN: a date, an RFC 3339 time, or 7d, 12h ago."),
    click.option("--until", metavar="WHEN", help="Usage before WHEN."),
    click.option("--utc", is_flag=True, help="Days, weeks, months and dates in UTC, not local time."),
    click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only sessions with this tag (repeatable: all)."),
    text_file_option("--tags-file", "more tags to match (blank- or line-separated)"),
    click.option("--workspace", metavar="DIR", help="Only sessions whose workspace is DIR or inside it."),
    text_file_option("--workspace-file", "the --workspace directory"),
    click.option("--here", is_flag=True, help="Only sessions whose workspace is the current directory or inside it."),
    click.option("--model", metavar="NAME", help="Only the messages this model answered."),
    text_file_option("--model-file", "the --model name"),
]


def _when(value: str, option: str, tz: tzinfo | None) -> datetime:
    """A date is midnight in the report's time zone; anything else is as 'list' reads it."""
    from ._audit_cmds import parse_when

    v = value.strip()
    if len(v) == 10:
        try:
            day = date.fromisoformat(v)
        except ValueError:
            pass
        else:
            midnight = datetime(day.year, day.month, day.day)  # a zone is given below
            return midnight.replace(tzinfo=tz) if tz is not None else midnight.astimezone()
    return parse_when(v, option)


def usage_command(vault: Any, as_json: bool, opts: dict[str, Any]) -> None:
    """Run ``stats --usage`` with the options of 'stats' in *opts*."""
    from sessionseal import UsageBy, UsageQuery

    tz = UTC if opts["utc"] else None
    tags = private_words(opts["tags"], opts["tags_file"], what="the tags", name="--tag", option="--tags-file")
    workspace = private_text(
        opts["workspace"], opts["workspace_file"], what="the workspace", name="--workspace", option="--workspace-file"
    )
    model = private_text(opts["model"], opts["model_file"], what="the model", name="--model", option="--model-file")
    if opts["here"] and workspace is not None:
        raise click.UsageError("give --workspace DIR or --here, not both")
    query = UsageQuery(
        by=UsageBy(opts["by"] or "day"),
        since=_when(opts["since"], "--since", tz) if opts["since"] else None,
        until=_when(opts["until"], "--until", tz) if opts["until"] else None,
        tz=tz,
        tags=tuple(tags),
        workspace=os.getcwd() if opts["here"] else workspace and os.path.abspath(workspace),
        model=model,
    )
    report = vault.usage(query)
    if as_json:
        echo_json(report_json(report))
    else:
        render_usage(report)
    for line in report.warnings:
        say(f"sessionseal: warning: {line}")


def report_json(report: UsageReport) -> dict[str, Any]:
    """``stats --usage --json``: the report as one JSON document."""
    total = report.total.as_dict()
    del total["key"]
    return {
        "by": report.by.value,
        "time_zone": report.time_zone,
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
        "rows": [r.as_dict() for r in report.rows],
        "total": total,
        "computed": report.computed,
        "unreadable": report.unreadable,
        "warnings": report.warnings,
    }


def render_usage(report: UsageReport) -> None:
    """A table of the report's rows and their total."""
    from rich.table import Table

    from ._render import stdout_console

    c, t = stdout_console()
    if not report.rows:
        c.print("No usage recorded" + (" in that time" if report.since or report.until else "") + ".")
        return
    table = Table(show_edge=False, pad_edge=False, show_footer=True)
    cols: list[tuple[str, Callable[[Any], str]]] = [
        ("sessions", str),
        ("msgs", str),
        ("input", _n),
        ("output", _n),
        ("cache read", _n),
        ("cache write", _n),
        ("reasoning", _n),
        ("cost", lambda v: f"${v:,.2f}"),
    ]
    fields = ["sessions", "messages", *(f"{k}_tokens" for k in ("input", "output", "cache_read", "cache_write"))]
    fields += ["reasoning_tokens", "cost_usd"]
    table.add_column(report.by.value, footer="total", no_wrap=report.by.value != "workspace")
    for (title, fmt), name in zip(cols, fields, strict=True):
        table.add_column(title, footer=fmt(getattr(report.total, name)), justify="right", no_wrap=True)
    for row in report.rows:
        table.add_row(t(row.key), *(fmt(getattr(row, name)) for (_, fmt), name in zip(cols, fields, strict=True)))
    c.print(table)
    if report.by.value in ("day", "week", "month"):
        c.print(f"times in {report.time_zone}", style="dim")


def _n(value: int) -> str:
    return f"{value:,}"
