"""The options that filter sessions ('list', 'search', 'export') and the query they make.

Here and not in the package's __init__ so that the command modules import them downwards.
"""

from __future__ import annotations

from typing import Any

import click

from ._common import private_text, private_words, text_file_option


def list_filters(fn: Any) -> Any:
    """The filter options that 'list' and 'search' share."""
    for option in reversed(_FILTER_OPTIONS):
        fn = option(fn)
    return fn


_FILTER_OPTIONS = [
    click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only sessions with this tag (repeatable: all)."),
    text_file_option("--tags-file", "more tags to match (blank- or line-separated)"),
    click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(["active", "paused", "completed", "failed", "archived"]),
        help="Only sessions with this status (repeatable: any of them).",
    ),
    click.option("--since", metavar="WHEN", help="Updated at or after WHEN: a date, an RFC 3339 time, or 7d, 12h ago."),
    click.option("--until", metavar="WHEN", help="Updated before WHEN."),
    click.option("--workspace", metavar="DIR", help="Only sessions whose workspace is DIR or inside it."),
    text_file_option("--workspace-file", "the --workspace directory"),
    click.option("--here", is_flag=True, help="Only sessions whose workspace is the current directory or inside it."),
    click.option("--pinned", is_flag=True, help="Only pinned sessions."),
    click.option("--min-cost", type=float, metavar="USD", help="Only sessions that cost at least this."),
    click.option("--max-cost", type=float, metavar="USD", help="Only sessions that cost at most this."),
    click.option("--model", metavar="NAME", help="Only sessions a model of this name answered in."),
    text_file_option("--model-file", "the --model name"),
    click.option(
        "--sort",
        type=click.Choice(["updated", "created", "accessed", "size", "cost", "title"]),
        default="updated",
        show_default=True,
        help="Order: newest, largest or costliest first; titles A to Z.",
    ),
    click.option("--limit", type=click.IntRange(min=0), metavar="N", help="At most N sessions."),
]
#: The filters that select sessions ('export' has them too); 'list' and 'search' add which.
SELECT_OPTIONS = list(_FILTER_OPTIONS)
_FILTER_OPTIONS += [
    click.option("--archived", "which", flag_value="archived", help="Only archived sessions."),
    click.option("--all", "which", flag_value="all", help="Archived sessions too."),
]


def query_of(here: bool, which: str | None, filters: dict[str, Any]) -> Any:
    """A ListQuery from the filter options."""
    import os

    from sessionseal import ListQuery

    from ._audit_cmds import parse_when

    tags = private_words(filters["tags"], filters["tags_file"], what="the tags", name="--tag", option="--tags-file")
    workspace = private_text(
        filters["workspace"],
        filters["workspace_file"],
        what="the workspace",
        name="--workspace",
        option="--workspace-file",
    )
    model = private_text(
        filters["model"], filters["model_file"], what="the model", name="--model", option="--model-file"
    )
    if here and workspace is not None:
        raise click.UsageError("give --workspace DIR or --here, not both")
    return ListQuery(
        archived={"archived": True, "all": None}.get(which or "", False),
        tags=tags,
        statuses=filters["statuses"],
        since=parse_when(filters["since"], "--since") if filters["since"] else None,
        until=parse_when(filters["until"], "--until") if filters["until"] else None,
        workspace=os.getcwd() if here else workspace and os.path.abspath(workspace),
        pinned=True if filters["pinned"] else None,
        min_cost=filters["min_cost"],
        max_cost=filters["max_cost"],
        model=model,
        sort=filters.get("sort", "updated"),
        limit=filters["limit"],
    )


def select_filters(fn: Any) -> Any:
    """The filter options that select sessions, without which ('export')."""
    for option in reversed(SELECT_OPTIONS):
        fn = option(fn)
    return fn
