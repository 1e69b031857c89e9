"""Usage at a glance: tokens and cost by day, week, month, model, workspace or tool (issue 23;
docs/cli.md, ``stats --usage``; docs/spec/container-v1.md, "The usage rollup").

Where the figures come from: each message's ``usage`` (``input_tokens``, ``output_tokens``,
``cache_read_tokens``, ``cache_write_tokens``, and ``reasoning_tokens`` where the importer kept
it: Gemini CLI) and ``cost_usd``, as stored.  A session none of whose messages carries a figure
counts its own ``stats`` instead (input, output, cache and cost), at its ``updated_at``, with no
model.  sessionseal prices nothing: a cost is what the agent or the caller recorded.

When: a message counts at its ``timestamp``; one without counts at the session's ``updated_at``
(resolved when the report is made, so that it follows the session's last update).

So that a report needs no session decrypted, every save and append keeps a small *rollup* in
the session's summary (its META frame): the figures summed per quarter hour (UTC) and model.
Every time zone in use today is offset from UTC by a multiple of 15 minutes, so days, weeks and
months are exact in any of them; ``since``/``until`` are compared to the quarter hour.  A session
written before rollups existed has none: it is decrypted and summed when the report is made.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import msgspec

from .errors import InvalidInput

__all__ = [
    "ROLLUP_VERSION",
    "TOOLS",
    "UsageBy",
    "UsageQuery",
    "UsageReport",
    "UsageRow",
    "rollup_after",
    "rollup_of",
    "stored_rollup",
    "tool_of",
    "usage_current",
]

#: The rollup's format (``v``); a rollup of another version is ignored and recomputed.
ROLLUP_VERSION: Final = 1
#: Seconds in the rollup's time step (a quarter hour).
STEP: Final = 900
#: The agents a session's tags name (the importers' source tags); any other session is "other".
TOOLS: Final = ("claude-code", "codex", "gemini-cli")
#: The figures of a row, in their order in the rollup (after the quarter and the model).
FIGURES: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "messages",
)
_COST: Final = FIGURES.index("cost_usd")
#: The fields of a message the rollup reads (kept of the last message, for an ``extend``).
_MESSAGE_FIELDS: Final = ("timestamp", "model", "usage", "cost_usd")
_MAX_COUNT: Final = 1 << 62


class UsageBy(enum.StrEnum):
    """What a usage report groups by."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    MODEL = "model"
    WORKSPACE = "workspace"
    TOOL = "tool"


_TIME_GROUPS: Final = frozenset({UsageBy.DAY, UsageBy.WEEK, UsageBy.MONTH})


@dataclass(frozen=True)
class UsageQuery:
    """What :meth:`Vault.usage` reports.

    :param by: day, week (ISO, from Monday), month, model, workspace or tool.
    :param since: usage at or after this time; :param until: usage before it (to the quarter hour).
    :param tz: the time zone of days, weeks and months; None: the system's local time.
    :param tags: only sessions with every one of these tags; :param workspace: only sessions
        whose workspace is this directory or inside it; :param model: only this model's messages.
    :param archived: count archived sessions too (they were used all the same).
    """

    by: UsageBy | str = UsageBy.DAY  # a UsageBy once made
    since: datetime | None = None
    until: datetime | None = None
    tz: tzinfo | None = None
    tags: tuple[str, ...] = ()
    workspace: str | None = None
    model: str | None = None
    archived: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "by", UsageBy(self.by))
        except ValueError:
            raise InvalidInput(f"--by takes one of: {', '.join(UsageBy)}") from None
        for name in ("since", "until"):
            t = getattr(self, name)
            if t is not None and t.tzinfo is None:
                object.__setattr__(self, name, t.replace(tzinfo=UTC))  # naive times are UTC
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("--since must be before --until")


@dataclass(frozen=True)
class UsageRow:
    """The figures of one group (or of all: the report's ``total``, whose key is ``total``)."""

    key: str
    sessions: int = 0
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Part of ``output_tokens`` (never added to it); only where the agent recorded it.
    reasoning_tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class UsageReport:
    """What :meth:`Vault.usage` returns: one row per group (times in order, others costliest first)."""

    by: UsageBy
    time_zone: str
    since: datetime | None
    until: datetime | None
    rows: list[UsageRow]
    total: UsageRow
    #: Sessions that had no rollup (written by an older sessionseal) and were decrypted to count.
    computed: int = 0
    #: Session files that could not be read (``list`` names them).
    unreadable: int = 0
    warnings: list[str] = field(default_factory=list)


# -- the rollup (kept in a session's summary) ------------------------------------------------


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), _MAX_COUNT)


def _quarter(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return math.floor(t.timestamp() / STEP)


def _figures(m: Mapping[str, Any]) -> list[float] | None:
    """A message's figures, or None when it carries none."""
    usage, cost = m.get("usage"), _cost(m.get("cost_usd"))
    if not isinstance(usage, Mapping) and cost is None:
        return None
    u: Mapping[str, Any] = usage if isinstance(usage, Mapping) else {}
    out: list[float] = [_count(u.get(name)) for name in FIGURES[:_COST]]
    return [*out, cost or 0.0, 1]


def _cost(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _add(rows: dict[tuple[int | None, str | None], list[float]], m: Mapping[str, Any], sign: int) -> None:
    figs = _figures(m)
    if figs is None:
        return
    model = m.get("model") if isinstance(m.get("model"), str) else None
    key = (_quarter(m.get("timestamp")), model)
    row = rows.setdefault(key, [0] * len(FIGURES))
    for i, v in enumerate(figs):
        row[i] += sign * v
    row[_COST] = round(row[_COST], 9)  # an extend subtracts and adds: no float dust left behind
    if not any(row):
        del rows[key]


def _stats(stats: Any) -> list[float]:
    s: Mapping[str, Any] = stats if isinstance(stats, Mapping) else {}
    tokens: list[float] = [_count(s.get(name)) for name in FIGURES[:4]]
    return [*tokens, _cost(s.get("cost_usd")) or 0.0]


def _last(m: Any) -> dict[str, Any] | None:
    return {k: m[k] for k in _MESSAGE_FIELDS if k in m} if isinstance(m, Mapping) else None


def _pack(rows: Mapping[tuple[int | None, str | None], list[float]], last: Any, stats: list[float]) -> dict[str, Any]:
    ordered = sorted(rows.items(), key=lambda kv: (kv[0][0] is not None, kv[0][0] or 0, kv[0][1] or ""))
    packed = [[q, model, *(v if i == _COST else int(v) for i, v in enumerate(figs))] for (q, model), figs in ordered]
    return {"v": ROLLUP_VERSION, "rows": packed, "last": last, "stats": stats}


def rollup_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The rollup of a whole (sanitized) session document."""
    rows: dict[tuple[int | None, str | None], list[float]] = {}
    messages = doc.get("messages") or []
    for m in messages:
        # Most messages carry no figures (user turns, tool results): _figures would say so
        # after more look-ups (a 10 MiB session has thousands).
        if isinstance(m, Mapping) and (m.get("usage") is not None or m.get("cost_usd") is not None):
            _add(rows, m, 1)
    return _pack(rows, _last(messages[-1]) if messages else None, _stats(doc.get("stats")))


def _unpack(rollup: Mapping[str, Any]) -> dict[tuple[int | None, str | None], list[float]]:
    return {(r[0], r[1]): list(r[2:]) for r in rollup["rows"]}


def rollup_after(rollup: Any, ops: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The rollup after *ops* (stored operations, docs/spec/container-v1.md) were appended; None
    when the session had no rollup of this version (it is then computed when a report needs it)."""
    if not is_rollup(rollup):
        return None
    rows, last, stats = _unpack(rollup), rollup.get("last"), list(rollup["stats"])
    for op in ops:
        value = op["value"]
        if op["op"] == "message":
            _add(rows, value, 1)
            last = _last(value)
        elif op["op"] == "extend" and last is not None:  # no message to extend: nothing changes
            new = {**last, **{k: value[k] for k in _MESSAGE_FIELDS if k in value}}
            _add(rows, last, -1)
            _add(rows, new, 1)
            last = new
        elif op["op"] == "set" and "stats" in value:
            stats = _stats(value["stats"])
    return _pack(rows, last, stats)


def is_rollup(value: Any) -> bool:
    """Whether *value* is a rollup this build reads (its shape checked, row by row)."""
    if not isinstance(value, Mapping) or value.get("v") != ROLLUP_VERSION:
        return False
    rows, stats = value.get("rows"), value.get("stats")
    if not isinstance(rows, list) or not isinstance(stats, list) or len(stats) != 5:
        return False
    return all(
        isinstance(r, list)
        and len(r) == 2 + len(FIGURES)
        and (r[0] is None or (isinstance(r[0], int) and not isinstance(r[0], bool)))
        and (r[1] is None or isinstance(r[1], str))
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r[2:])
        for r in rows
    )


def usage_current(rollup: Any, size_original: Any) -> bool:
    """Whether *rollup* is one this build reads and describes the session as it is: its
    ``size`` is the summary's ``size_original`` (an older sessionseal's append copies the rollup
    unchanged and grows the size)."""
    return is_rollup(rollup) and rollup.get("size") == size_original


#: A rollup row: quarter, model, then :data:`FIGURES`.
Row = tuple[int | None, str | None, int, int, int, int, int, float, int]


class _Rollup(msgspec.Struct, gc=False):
    v: int
    rows: list[Row]
    stats: tuple[float, float, float, float, float]
    size: int = -1


class _Meta(msgspec.Struct, gc=False):
    size_original: int = 0
    usage: _Rollup | None = None


_META: Final = msgspec.json.Decoder(_Meta)


def stored_rollup(meta: bytes) -> tuple[list[Row], tuple[float, ...]] | None:
    """The rows and stats of the current rollup in a META document (JSON), or None when it has
    none this build can trust (see :func:`usage_current`).  Decoded and checked in one pass of
    msgspec: checking a year of rollups in Python took longer than decrypting them."""
    try:
        doc = _META.decode(meta)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # a rollup of another shape (a newer writer): computed from the body
    u = doc.usage
    if u is None or u.v != ROLLUP_VERSION or u.size != doc.size_original:
        return None
    return u.rows, u.stats


# -- the report ----------------------------------------------------------------------------------


def tool_of(tags: Iterable[str]) -> str:
    """The agent a session came from, by its source tag: claude-code, codex, gemini-cli or other."""
    tagged = set(tags)
    return next((t for t in TOOLS if t in tagged), "other")


@dataclass(frozen=True)
class Counted:
    """One session as a report counts it: its summary's fields and its rollup."""

    sid: str
    updated_at: str
    workspace: str | None
    tags: Sequence[str]
    rows: Sequence[Sequence[Any]]
    stats: Sequence[float]


class _Grouper:
    def __init__(self, q: UsageQuery) -> None:
        self.q = q
        self.labels: dict[int, str] = {}
        self.lo = None if q.since is None else math.floor(q.since.timestamp() / STEP)
        self.hi = None if q.until is None else math.floor(q.until.timestamp() / STEP)

    def in_range(self, quarter: int) -> bool:
        return (self.lo is None or quarter >= self.lo) and (self.hi is None or quarter < self.hi)

    def label(self, quarter: int) -> str:
        out = self.labels.get(quarter)
        if out is None:
            at = datetime.fromtimestamp(quarter * STEP, UTC)
            local = at.astimezone(self.q.tz) if self.q.tz is not None else at.astimezone()
            if self.q.by == UsageBy.DAY:
                out = local.strftime("%Y-%m-%d")
            elif self.q.by == UsageBy.MONTH:
                out = local.strftime("%Y-%m")
            else:
                year, week, _ = local.isocalendar()
                out = f"{year}-W{week:02d}"
            self.labels[quarter] = out
        return out


def report(sessions: Iterable[Counted], q: UsageQuery) -> tuple[list[UsageRow], UsageRow]:
    """The rows and the total of *sessions* under *q*."""
    # The loop runs once per rollup row (20,000 for a year of sessions): names looked up once,
    # the additions written out, and the total made from the groups.
    g = _Grouper(q)
    lo, hi, model, by, labels = g.lo, g.hi, q.model, UsageBy(q.by), g.labels
    timed = by in _TIME_GROUPS
    groups: dict[str, list[float]] = {}
    members: dict[str, set[str]] = {}
    counted: set[str] = set()
    for s in sessions:
        updated = _quarter(s.updated_at) or 0
        rows = s.rows
        if not rows and any(s.stats):  # no message carries figures: the session's own
            st = s.stats
            rows = [[None, None, *st[:4], 0, st[4], 0]]
        fixed = None if timed or by == UsageBy.MODEL else s.workspace or "(none)"
        if by == UsageBy.TOOL:
            fixed = tool_of(s.tags)
        for r in rows:
            quarter = updated if r[0] is None else r[0]
            if (lo is not None and quarter < lo) or (hi is not None and quarter >= hi):
                continue
            if model is not None and r[1] != model:
                continue
            key = (labels.get(quarter) or g.label(quarter)) if timed else fixed or r[1] or "(none)"
            acc = groups.get(key)
            if acc is None:
                acc = groups[key] = [0, 0, 0, 0, 0, 0.0, 0]
                members[key] = set()
            acc[0] += r[2]
            acc[1] += r[3]
            acc[2] += r[4]
            acc[3] += r[5]
            acc[4] += r[6]
            acc[5] += r[7]
            acc[6] += r[8]
            members[key].add(s.sid)
            counted.add(s.sid)
    out = [_row(k, figs, len(members[k])) for k, figs in groups.items()]
    if timed:
        out.sort(key=lambda r: r.key)
    else:
        out.sort(key=lambda r: (-r.cost_usd, -(r.input_tokens + r.output_tokens + r.cache_read_tokens), r.key))
    total = [sum(figs[i] for figs in groups.values()) for i in range(len(FIGURES))]
    return out, _row("total", total, len(counted))


def _row(key: str, figs: list[float], sessions: int) -> UsageRow:
    ints = {name: int(figs[i]) for i, name in enumerate(FIGURES) if i != _COST}
    return UsageRow(key=key, sessions=sessions, cost_usd=round(figs[_COST], 6), **ints)


def zone_name(tz: tzinfo | None) -> str:
    """The name a report gives its time zone: the zone's key, or the local zone's abbreviation."""
    if tz is None:
        return "local (" + (datetime.now().astimezone().tzname() or "?") + ")"
    return str(getattr(tz, "key", None) or tz.tzname(datetime.now(UTC)) or tz)


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports them.
for _cls in (UsageBy, UsageQuery, UsageReport, UsageRow):
    _cls.__module__ = "sessionseal"
