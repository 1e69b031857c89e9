"""Listing filters and sort orders, applied to the index's entries (docs/cli.md, ``list``).

A pure function of entries and a :class:`ListQuery`: the vault hands it what the index
(verified against the files) holds, so a filtered listing decodes nothing more than an
unfiltered one.
"""

from __future__ import annotations

import enum
import operator
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ._fields import SessionStatus
from ._index import Entry
from .errors import InvalidInput

__all__ = ["ListQuery", "SortKey", "select"]


class SortKey(enum.StrEnum):
    """Listing orders: newest, largest and costliest first; titles A to Z."""

    UPDATED = "updated"
    CREATED = "created"
    ACCESSED = "accessed"
    SIZE = "size"
    COST = "cost"
    TITLE = "title"


@dataclass(frozen=True)
class ListQuery:
    """What ``list`` keeps and in which order.  Every filter given must hold (AND).

    :param archived: ``False`` hides archived sessions, ``True`` keeps only them, ``None``
        keeps all.  Asking for the ``archived`` status shows them too.
    :param tags: the session carries every one of these tags.
    :param statuses: the session has one of these statuses.
    :param since: updated at or after this time; :param until: updated before it.
    :param workspace: the session's workspace is this directory or inside it.
    :param model: some message of the session was answered by this model.
    """

    archived: bool | None = False
    tags: tuple[str, ...] = ()
    statuses: tuple[SessionStatus, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    workspace: str | None = None
    pinned: bool | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    model: str | None = None
    sort: SortKey = SortKey.UPDATED
    limit: int | None = None

    def __post_init__(self) -> None:
        # Naive times are UTC, as everywhere in the session model.
        for name in ("since", "until"):
            t = getattr(self, name)
            if t is not None and t.tzinfo is None:
                object.__setattr__(self, name, t.replace(tzinfo=UTC))
        try:
            object.__setattr__(self, "sort", SortKey(self.sort))
        except ValueError:
            raise InvalidInput(f"sort takes one of: {', '.join(SortKey)}") from None
        try:
            object.__setattr__(self, "statuses", tuple(SessionStatus(s) for s in self.statuses))
        except ValueError:
            raise InvalidInput(f"status takes one of: {', '.join(SessionStatus)}") from None
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.limit is not None and self.limit < 0:
            raise InvalidInput("--limit takes a number of sessions, 0 or more")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until")

    def describe(self) -> dict[str, Any]:
        """The filters that are set, for the audit record (no value that could be content)."""
        return {
            name: True
            for name in ("tags", "statuses", "since", "until", "workspace", "pinned", "min_cost", "max_cost", "model")
            if getattr(self, name) not in (None, ())
        }


_ARCHIVED: Final = SessionStatus.ARCHIVED.value
_iso: Final = datetime.fromisoformat
# Times are compared as datetimes, not as strings: a time with no fraction of a second is
# written without one, so "…:05Z" would sort after "…:05.5Z" as text.
_ORDERS: Final[dict[SortKey, tuple[Callable[[Entry], Any], bool]]] = {
    SortKey.UPDATED: (lambda e: _iso(e.updated_at), True),
    SortKey.CREATED: (lambda e: _iso(e.created_at), True),
    SortKey.ACCESSED: (lambda e: _iso(e.last_accessed_at or e.updated_at), True),
    SortKey.SIZE: (lambda e: e.size_stored, True),
    SortKey.COST: (lambda e: e.cost_usd, True),
    SortKey.TITLE: (lambda e: e.title.casefold(), False),
}


_BY_ID: Final = operator.attrgetter("id")


def _under(workspace: str | None, root: str) -> bool:
    if not workspace:
        return False
    ws = os.path.normpath(workspace)
    return ws == root or ws.startswith(root.rstrip("/") + "/")


def select(entries: Iterable[Entry], q: ListQuery, *, ordered: bool = True) -> list[Entry]:
    """The entries *q* keeps, in its order, at most ``q.limit`` of them (*ordered* False: in
    no particular order, for a caller that orders them itself; then *q* must have no limit)."""
    # One pass per filter that is set, each a comprehension: listing 10,000 sessions with
    # no filter then costs one pass, not ten tests per session.
    statuses = {s.value for s in q.statuses}
    archived = None if _ARCHIVED in statuses else q.archived
    out = list(entries)
    if archived is not None:
        out = [e for e in out if (e.status == _ARCHIVED) == archived]
    if statuses:
        out = [e for e in out if e.status in statuses]
    if q.tags:
        tags = set(q.tags)
        out = [e for e in out if tags.issubset(e.tags)]
    if q.pinned is not None:
        out = [e for e in out if e.pinned == q.pinned]
    if q.min_cost is not None:
        out = [e for e in out if e.cost_usd >= q.min_cost]
    if q.max_cost is not None:
        out = [e for e in out if e.cost_usd <= q.max_cost]
    if q.model is not None:
        out = [e for e in out if q.model in e.models]
    if q.workspace:
        root = os.path.normpath(q.workspace)
        out = [e for e in out if _under(e.workspace, root)]
    if q.since is not None:
        out = [e for e in out if _iso(e.updated_at) >= q.since]
    if q.until is not None:
        out = [e for e in out if _iso(e.updated_at) < q.until]
    if not ordered and q.limit is None:
        return out
    key, newest_first = _ORDERS[q.sort]
    # Ties are broken by id.  Two stable sorts instead of one on (key, id) tuples: a third
    # of the cost of sorting 10,000 sessions was building those tuples.
    out.sort(key=_BY_ID, reverse=newest_first)
    out.sort(key=key, reverse=newest_first)
    return out if q.limit is None else out[: q.limit]


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
ListQuery.__module__ = "sessionseal"
