"""Retention policies and the planner that applies them (docs/retention.md).

This module decides; it never touches a file.  :meth:`Vault.cleanup` carries a plan out.
Keeping the decision a pure function of (summaries, policy, now) is what lets the tests
state its guarantees as properties: a pinned, active, paused or young session is never
chosen, whatever the policy.

The rules, per group of sessions (a group is the sessions under one tag rule, or the rest):

* **Protected** sessions are kept and never counted: pinned, ``active`` or ``paused``,
  under a tag rule with ``protect``, or created or updated (or, with ``age_by: accessed``,
  read) less than ``min_age`` ago.
* **Keep rules** select sessions to keep, in the manner of restic's ``forget``:
  ``max_age`` keeps what is younger than it; ``keep_last N`` the N newest;
  ``keep_daily/weekly/monthly N`` the newest session of each of the N most recent days,
  weeks or months that have one.  A group with any keep rule removes every session that no
  keep rule selects; a group with none keeps everything.
* **max_size** (vault-wide) then removes the oldest remaining sessions until the vault's
  stored size is at most the limit.  Sessions kept by a count rule (keep-last, -daily,
  -weekly, -monthly) and protected ones are never taken for size: counts are guarantees,
  age and size are limits.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from .models import SessionStatus, SessionSummary

__all__ = [
    "Action",
    "AgeBasis",
    "CleanupPlan",
    "Decision",
    "Duration",
    "RetentionConfig",
    "RetentionPolicy",
    "Size",
    "TagRule",
    "format_duration",
    "format_size",
    "human_size",
    "parse_duration",
    "parse_size",
    "plan_retention",
]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION_PART: Final = re.compile(r"(\d+)\s*([smhdwy])")
_SIZE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS: Final = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
#: Kept sessions that max-size may still take: kept only by age, or by no rule.  Counts
#: (keep-last/daily/weekly/monthly) are guarantees; protections are absolute.
_SIZE_ELIGIBLE: Final = frozenset({"max-age", "no-rule"})
_PERIOD_NAMES: Final = {"daily": "day", "weekly": "week", "monthly": "month"}


def parse_duration(value: Any) -> int:
    """Seconds from ``"90d"``, ``"12h"``, ``"1w2d"``, ``"0"`` or an int of seconds.

    Units: s, m (minutes), h, d, w, y (365 days).  A bare number is seconds.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit, such as 90d, 12h or 2w")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        parts = _DURATION_PART.findall(text)
        if parts and _DURATION_PART.sub("", text).strip() == "":
            return sum(int(n) * _UNITS[u] for n, u in parts)
    raise ValueError("a duration is a number with a unit (s, m, h, d, w, y), such as 90d, 12h or 1w2d")


def format_duration(seconds: int) -> str:
    """The shortest exact spelling: 86400 -> ``"1d"``, 90 -> ``"90s"``, 0 -> ``"0"``."""
    if seconds == 0:
        return "0"
    for unit in ("y", "w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_size(value: Any) -> int:
    """Bytes from ``"10GiB"``, ``"500MB"``, ``"2G"`` or an int of bytes.

    ``KB``/``MB``/``GB``/``TB`` are powers of 1000; ``KiB``/``MiB``/... and the bare
    letters ``K``/``M``/``G``/``T`` (as ``du`` and ``ls -h`` print them) are powers of 1024.
    """
    if isinstance(value, bool):
        raise ValueError("a size is a number with a unit, such as 500MB or 10GiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        number, prefix, binary, b = m.groups()
        base = 1000 if (prefix and b and not binary) else 1024
        size = float(number) * base ** _POWERS[prefix.lower()]
        if math.isinf(size):  # 400 digits read as a float
            raise ValueError("a size is too large; give at most a few TiB, such as 10GiB")
        return int(size)
    raise ValueError("a size is a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), such as 10GiB")


def format_size(n: int) -> str:
    """An exact spelling in the largest binary unit that divides *n* (``"10GiB"``, ``"1500B"``)."""
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if n and n % (1024**power) == 0:
            return f"{n // 1024**power}{unit}"
    return f"{n}B"


#: Seconds; written as ``"90d"`` in the config, read from that or from an int.
Duration = Annotated[int, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
#: Bytes; written as ``"10GiB"`` in the config, read from that or from an int.
Size = Annotated[int, BeforeValidator(parse_size), PlainSerializer(format_size, return_type=str)]


class AgeBasis(enum.StrEnum):
    """Which time a session's age is measured from."""

    UPDATED = "updated"
    ACCESSED = "accessed"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class RetentionPolicy(_Strict):
    """The keep rules of one group of sessions.  No rule set: the group is kept whole."""

    max_age: Duration | None = Field(default=None, description="keep what is younger than this (e.g. 90d)")
    keep_last: int | None = Field(default=None, ge=0, description="keep the N newest")
    keep_daily: int | None = Field(default=None, ge=0, description="keep the newest of each of the last N days")
    keep_weekly: int | None = Field(default=None, ge=0, description="... of each of the last N ISO weeks")
    keep_monthly: int | None = Field(default=None, ge=0, description="... of each of the last N months")

    def has_keep_rules(self) -> bool:
        """Whether any keep rule is set (then sessions no rule keeps are removed)."""
        return any(v is not None for v in (self.max_age, *self._counts()))

    def _counts(self) -> tuple[int | None, ...]:
        return (self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly)

    def describe(self) -> str:
        """``"max-age 90d, keep-last 10"``, or ``"no rule"``."""
        parts = [f"max-age {format_duration(self.max_age)}"] if self.max_age is not None else []
        names = ("keep-last", "keep-daily", "keep-weekly", "keep-monthly")
        parts += [f"{name} {n}" for name, n in zip(names, self._counts(), strict=True) if n is not None]
        return ", ".join(parts) or "no rule"


class TagRule(RetentionPolicy):
    """Rules for the sessions carrying *tag*: they replace the default rules for those sessions.

    A session matching several tag rules follows the first one listed.
    """

    tag: str = Field(min_length=1, max_length=64)
    protect: bool = Field(default=False, description="never remove these sessions by policy")


class RetentionConfig(RetentionPolicy):
    """A vault's retention: default keep rules, vault-wide limits, tag rules, automation."""

    age_by: AgeBasis = Field(default=AgeBasis.UPDATED, description="measure age from the last update or access")
    min_age: Duration = Field(default=86400, description="never remove by policy what was touched more recently")
    max_size: Size | None = Field(default=None, description="remove the oldest sessions above this stored size")
    tags: list[TagRule] = Field(default_factory=list)
    auto_interval: Duration | None = Field(
        default=None, description="run cleanup when the vault is opened, at most once per this interval"
    )
    warn_size: Size | None = Field(default=None, description="'stats' warns when the vault is larger")

    def has_rules(self) -> bool:
        """Whether this policy can remove anything at all."""
        return self.has_keep_rules() or self.max_size is not None or any(t.has_keep_rules() for t in self.tags)


class Action(enum.StrEnum):
    """What the plan does with a session."""

    KEEP = "keep"
    REMOVE = "remove"


@dataclass(frozen=True)
class Decision:
    """One session's fate and the rule that decided it.

    ``rule`` is a stable code for scripts (``pinned``, ``active``, ``paused``, ``protected``,
    ``min-age``, ``max-age``, ``keep-last``, ``keep-daily``, ``keep-weekly``,
    ``keep-monthly``, ``no-rule``, ``max-size``); ``detail`` is a sentence for people.
    """

    session: SessionSummary
    action: Action
    rule: str
    detail: str
    group: str | None = None  # the tag rule that governed the session, if any

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready row (the title is sanitized text, as in 'list')."""
        s = self.session
        return {
            "id": str(s.id),
            "title": s.title,
            "status": s.status.value,
            "pinned": s.pinned,
            "tags": s.tags,
            "updated_at": s.updated_at.isoformat(),
            "size_stored": s.size_stored,
            "action": self.action.value,
            "rule": self.rule,
            "detail": self.detail,
            "tag_rule": self.group,
        }


@dataclass
class CleanupPlan:
    """What a policy keeps and removes, computed at one instant (``now``)."""

    now: datetime
    policy: RetentionConfig
    decisions: list[Decision]
    total_bytes: int
    orphans: int = 0  # container files an erasure left to overwrite (a killed delete's leftovers)
    keyless: int = 0  # other container files without a key: reported ('missing-key'), never removed
    warnings: list[str] = field(default_factory=list)

    @property
    def remove(self) -> list[Decision]:
        """The sessions the plan removes, oldest first."""
        return [d for d in self.decisions if d.action is Action.REMOVE]

    @property
    def keep(self) -> list[Decision]:
        """The sessions the plan keeps."""
        return [d for d in self.decisions if d.action is Action.KEEP]

    @property
    def bytes_freed(self) -> int:
        """Stored bytes of the sessions removed."""
        return sum(d.session.size_stored for d in self.remove)

    def kept_by_rule(self) -> dict[str, int]:
        """How many sessions each rule keeps (for the summary line)."""
        out: dict[str, int] = {}
        for d in self.keep:
            out[d.rule] = out.get(d.rule, 0) + 1
        return dict(sorted(out.items()))


def _age_time(s: SessionSummary, basis: AgeBasis) -> datetime:
    if basis is AgeBasis.ACCESSED and s.last_accessed_at is not None:
        return max(s.last_accessed_at, s.updated_at)
    return s.updated_at


def _touched(s: SessionSummary, basis: AgeBasis) -> datetime:
    # Young by the policy's own measure: created or updated lately, or read lately when the
    # policy measures age by access.  (With age by update, reading an old session, which any
    # search or backup tool may do, does not keep it.)
    return max(s.created_at, _age_time(s, basis))


def _protection(
    s: SessionSummary, rule: TagRule | None, now: datetime, min_age: int, basis: AgeBasis
) -> tuple[str, str] | None:
    if s.pinned:
        return "pinned", "pinned"
    if s.status is SessionStatus.ACTIVE:
        return "active", "active sessions are never removed by policy"
    if s.status is SessionStatus.PAUSED:
        return "paused", "paused sessions are never removed by policy"
    if rule is not None and rule.protect:
        return "protected", f"tag {rule.tag!r} is protected"
    if now - _touched(s, basis) < timedelta(seconds=min_age):
        return "min-age", f"younger than the min-age of {format_duration(min_age)}"
    return None


def _bucket(t: datetime, period: str, tz: tzinfo | None) -> tuple[int, ...]:
    local = t.astimezone(tz)
    if period == "daily":
        return (local.year, local.month, local.day)
    if period == "weekly":
        iso = local.isocalendar()
        return (iso.year, iso.week)
    return (local.year, local.month)


def _keep_set(
    members: Sequence[SessionSummary], policy: RetentionPolicy, basis: AgeBasis, now: datetime, tz: tzinfo | None
) -> dict[uuid.UUID, tuple[str, str]]:
    """Which members the keep rules select, with the first rule that selected each.

    *members* are newest first.  Count rules are applied before max-age so that the reason
    shown for a session kept by both is the guarantee (the count), which max-size honours.
    """
    kept: dict[uuid.UUID, tuple[str, str]] = {}
    if policy.keep_last:
        for s in members[: policy.keep_last]:
            kept.setdefault(s.id, ("keep-last", f"among the {policy.keep_last} newest"))
    for period, n in (("daily", policy.keep_daily), ("weekly", policy.keep_weekly), ("monthly", policy.keep_monthly)):
        if not n:
            continue
        last: tuple[int, ...] | None = None
        left = n
        for s in members:
            b = _bucket(_age_time(s, basis), period, tz)
            if b != last:
                last = b
                kept.setdefault(s.id, (f"keep-{period}", f"newest of its {_PERIOD_NAMES[period]}"))
                left -= 1
                if left == 0:
                    break
    if policy.max_age is not None:
        limit = timedelta(seconds=policy.max_age)
        for s in members:
            if now - _age_time(s, basis) <= limit:
                kept.setdefault(s.id, ("max-age", f"younger than {format_duration(policy.max_age)}"))
    return kept


def plan_retention(
    summaries: Iterable[SessionSummary],
    policy: RetentionConfig,
    now: datetime,
    *,
    tz: tzinfo | None = None,
) -> CleanupPlan:
    """Decide every session's fate under *policy* at *now*.

    :param tz: the time zone whose calendar days, weeks and months keep-daily/weekly/monthly
        count (default: the machine's local zone, as restic does).
    """
    sessions = sorted(summaries, key=lambda s: (_age_time(s, policy.age_by), s.id.int), reverse=True)
    decisions: dict[uuid.UUID, Decision] = {}
    groups: dict[int, list[SessionSummary]] = {}  # index into policy.tags, -1 for the default rules
    for s in sessions:
        idx = next((i for i, t in enumerate(policy.tags) if t.tag in s.tags), -1)
        rule = policy.tags[idx] if idx >= 0 else None
        tag = rule.tag if rule is not None else None
        protected = _protection(s, rule, now, policy.min_age, policy.age_by)
        if protected is not None:
            decisions[s.id] = Decision(s, Action.KEEP, *protected, group=tag)
        else:
            groups.setdefault(idx, []).append(s)

    for idx, members in groups.items():
        rules: RetentionPolicy = policy.tags[idx] if idx >= 0 else policy
        tag = policy.tags[idx].tag if idx >= 0 else None
        if not rules.has_keep_rules():
            for s in members:
                decisions[s.id] = Decision(s, Action.KEEP, "no-rule", "no keep rule applies", group=tag)
            continue
        kept = _keep_set(members, rules, policy.age_by, now, tz)
        why_not = f"not kept by {rules.describe()}" + (f" (tag {tag!r})" if tag else "")
        for s in members:
            if s.id in kept:
                decisions[s.id] = Decision(s, Action.KEEP, *kept[s.id], group=tag)
            else:
                rule_code = "max-age" if rules.max_age is not None else _first_count_rule(rules)
                decisions[s.id] = Decision(s, Action.REMOVE, rule_code, why_not, group=tag)

    total = sum(s.size_stored for s in sessions)
    warnings = _apply_max_size(sessions, decisions, total, policy.max_size) if policy.max_size is not None else []
    ordered = [decisions[s.id] for s in reversed(sessions)]  # oldest first
    return CleanupPlan(now=now, policy=policy, decisions=ordered, total_bytes=total, warnings=warnings)


def _apply_max_size(
    sessions: Sequence[SessionSummary], decisions: dict[uuid.UUID, Decision], total: int, max_size: int
) -> list[str]:
    """Take the oldest sessions no guarantee holds until the vault fits in *max_size*."""
    size = total - sum(d.session.size_stored for d in decisions.values() if d.action is Action.REMOVE)
    if size <= max_size:
        return []
    limit = format_size(max_size)
    for s in reversed(sessions):  # oldest first
        if size <= max_size:
            break
        d = decisions[s.id]
        if d.action is Action.KEEP and d.rule in _SIZE_ELIGIBLE:
            decisions[s.id] = Decision(s, Action.REMOVE, "max-size", f"oldest while over {limit}", d.group)
            size -= s.size_stored
    if size <= max_size:
        return []
    return [
        f"the vault stays at {human_size(size)}, over max-size {limit}: the rest is pinned, active, paused, "
        "young or kept by a count rule"
    ]


def _first_count_rule(rules: RetentionPolicy) -> str:
    names = ("keep-last", "keep-daily", "keep-weekly", "keep-monthly")
    return next(name for name, n in zip(names, rules._counts(), strict=True) if n is not None)


def human_size(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``: for people, not for config files (see :func:`format_size`)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
for _cls in (CleanupPlan, Decision, RetentionConfig):
    _cls.__module__ = "sessionseal"
