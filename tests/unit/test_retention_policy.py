"""The retention planner (docs/retention.md): a pure function of sessions, policy and time.

Known answers first, then the guarantees as properties: whatever the policy, a pinned,
active, paused or young session is never chosen, and count rules are honoured.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sessionseal import RetentionConfig
from sessionseal._retention import (
    Action,
    CleanupPlan,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    plan_retention,
)
from sessionseal.models import SessionStatus, SessionSummary

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def summary(
    days_ago: float,
    *,
    status: SessionStatus = SessionStatus.COMPLETED,
    pinned: bool = False,
    tags: tuple[str, ...] = (),
    size: int = 1000,
    accessed_days_ago: float | None = None,
    n: int | None = None,
) -> SessionSummary:
    t = NOW - timedelta(days=days_ago)
    return SessionSummary(
        id=uuid.UUID(int=n if n is not None else int(days_ago * 1000) + 1),
        title=f"{days_ago}d",
        status=status,
        pinned=pinned,
        tags=list(tags),
        created_at=t,
        updated_at=t,
        last_accessed_at=None if accessed_days_ago is None else NOW - timedelta(days=accessed_days_ago),
        size_stored=size,
    )


def plan(sessions: list[SessionSummary], **policy: object) -> CleanupPlan:
    return plan_retention(sessions, RetentionConfig.model_validate(policy), NOW, tz=UTC)


def removed(p: CleanupPlan) -> set[str]:
    return {d.session.title for d in p.remove}


# -- durations and sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("12h", 43200),
        ("1d", 86400),
        ("2w", 1209600),
        ("1y", 31536000),
        ("1w2d", 777600),
        (" 3D ", 259200),
        (3600, 3600),
    ],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "d", "-1d", "1.5d", "1 fortnight", "1mo", True, -5, None, "1d x"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512", 512),
        ("512B", 512),
        ("1K", 1024),
        ("1KiB", 1024),
        ("1KB", 1000),
        ("1.5GiB", 3 << 29),
        ("2G", 2 << 30),
        ("500MB", 500_000_000),
        ("1tib", 1 << 40),
        (4096, 4096),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "GiB", "-1G", "1 PB", "ten", False, -1])
def test_bad_sizes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


@given(st.integers(min_value=0, max_value=10**10))
def test_durations_and_sizes_round_trip_through_their_spelling(n: int) -> None:
    assert parse_duration(format_duration(n)) == n
    assert parse_size(format_size(n)) == n


def test_the_config_stores_durations_and_sizes_readably() -> None:
    cfg = RetentionConfig.model_validate({"max_age": 90 * 86400, "max_size": "10GiB", "min_age": "0"})
    dumped = cfg.model_dump(mode="json")
    assert (dumped["max_age"], dumped["max_size"], dumped["min_age"]) == ("90d", "10GiB", "0")
    assert RetentionConfig.model_validate(dumped) == cfg


@pytest.mark.parametrize("bad", [{"keep_last": -1}, {"max_age": "soon"}, {"bogus": 1}, {"tags": [{"protect": True}]}])
def test_invalid_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetentionConfig.model_validate(bad)


# -- known answers ------------------------------------------------------------------------


def test_no_rule_keeps_everything() -> None:
    sessions = [summary(d) for d in (2, 30, 400)]
    p = plan(sessions)
    assert not p.remove and {d.rule for d in p.keep} == {"no-rule"}


def test_max_age_removes_what_is_older() -> None:
    p = plan([summary(d) for d in (2, 10, 31, 100)], max_age="30d")
    assert removed(p) == {"31d", "100d"}
    assert all(d.rule == "max-age" for d in p.decisions)


def test_keep_last_zero_keeps_none_beyond_the_protected() -> None:
    sessions = [summary(5), summary(6, pinned=True), summary(7, status=SessionStatus.ACTIVE), summary(0.5)]
    p = plan(sessions, keep_last=0)
    assert removed(p) == {"5d"}
    assert {d.session.title: d.rule for d in p.keep} == {"6d": "pinned", "7d": "active", "0.5d": "min-age"}


def test_protected_sessions_do_not_count_towards_keep_last() -> None:
    sessions = [summary(2, pinned=True), summary(3), summary(4), summary(5)]
    p = plan(sessions, keep_last=2)
    assert removed(p) == {"5d"}


def test_keep_last_is_a_floor_under_max_age() -> None:
    # "Remove what is older than 30 days, but always keep the 3 newest."
    p = plan([summary(d) for d in (40, 50, 60, 70, 80)], max_age="30d", keep_last=3)
    assert removed(p) == {"70d", "80d"}
    assert {d.rule for d in p.keep} == {"keep-last"}


def test_keep_daily_weekly_monthly_as_restic_forget() -> None:
    # Two sessions a day for 70 days, the later one at 18:00, the earlier at 06:00.
    sessions = []
    for day in range(70):
        for hour, n in ((18, 2 * day), (6, 2 * day + 1)):
            t = datetime(2026, 11, 20, hour, tzinfo=UTC) - timedelta(days=day)
            sessions.append(
                SessionSummary(
                    id=uuid.UUID(int=n + 1),
                    title=t.strftime("%m-%d %H"),
                    created_at=t,
                    updated_at=t,
                    status=SessionStatus.COMPLETED,
                )
            )
    p = plan(sessions, keep_daily=3, keep_weekly=2, keep_monthly=3, min_age=0)
    kept = {d.session.title: d.rule for d in p.keep}
    # The newest of each of the last 3 days...
    assert {t for t, r in kept.items() if r == "keep-daily"} == {"11-20 18", "11-19 18", "11-18 18"}
    # ...of each of the last 2 ISO weeks (2026-11-16 is a Monday; the week before ends Sunday 11-15)...
    assert {t for t, r in kept.items() if r == "keep-weekly"} == {"11-15 18"}
    # ...and of each of the last 3 months (November's newest is already kept as daily).
    assert {t for t, r in kept.items() if r == "keep-monthly"} == {"10-31 18", "09-30 18"}
    assert len(p.remove) == 140 - 6


def test_max_size_removes_the_oldest_but_never_what_a_count_rule_keeps() -> None:
    sessions = [summary(d, size=100) for d in (10, 20, 30, 40, 50)]
    p = plan(sessions, max_size=250, keep_last=1, max_age="1y")
    assert removed(p) == {"50d", "40d", "30d"}
    assert {d.rule for d in p.remove} == {"max-size"}
    p = plan(sessions, max_size=50, keep_last=2, max_age="1y")
    assert removed(p) == {"50d", "40d", "30d"}
    assert p.warnings and "over max-size 50B" in p.warnings[0]


def test_tag_rules_replace_the_default_rules_and_can_protect() -> None:
    sessions = [
        summary(10, tags=("scratch",)),
        summary(3, tags=("scratch",)),
        summary(200, tags=("keep", "scratch")),
        summary(100),
        summary(20),
    ]
    p = plan(sessions, max_age="60d", tags=[{"tag": "keep", "protect": True}, {"tag": "scratch", "max_age": "7d"}])
    assert removed(p) == {"10d", "100d"}
    by_title = {d.session.title: d for d in p.decisions}
    assert by_title["200d"].rule == "protected" and by_title["200d"].group == "keep"
    assert by_title["10d"].group == "scratch" and "tag 'scratch'" in by_title["10d"].detail


def test_age_by_access() -> None:
    sessions = [summary(100, accessed_days_ago=2), summary(101)]
    assert removed(plan(sessions, max_age="30d")) == {"100d", "101d"}
    assert removed(plan(sessions, max_age="30d", age_by="accessed")) == {"101d"}


def test_min_age_is_measured_as_the_policy_measures_age() -> None:
    # Updated long ago, read this morning: young when age is by access, old when by update
    # (a search or a backup tool reading old sessions must not keep them all).
    read = [summary(100, accessed_days_ago=0.2)]
    p = plan(read, keep_last=0, age_by="accessed")
    assert not p.remove and p.keep[0].rule == "min-age"
    assert plan(read, keep_last=0).remove
    assert plan(read, keep_last=0, age_by="accessed", min_age=0).remove
    # Created this morning with an old update time (an import): young either way.
    imported = summary(100)
    imported = imported.model_copy(update={"created_at": NOW - timedelta(hours=2)})
    assert not plan([imported], keep_last=0).remove


def test_decisions_are_oldest_first_and_serializable() -> None:
    p = plan([summary(d) for d in (5, 50, 20)], max_age="10d")
    assert [d.session.title for d in p.decisions] == ["50d", "20d", "5d"]
    row = p.remove[0].as_dict()
    assert row["action"] == "remove" and row["rule"] == "max-age" and row["size_stored"] == 1000
    assert p.bytes_freed == 2000 and p.kept_by_rule() == {"max-age": 1}


# -- properties ---------------------------------------------------------------------------

_summaries = st.lists(
    st.builds(
        lambda days, status, pinned, tags, size, accessed: (days, status, pinned, tags, size, accessed),
        st.floats(min_value=0, max_value=800, allow_nan=False),
        st.sampled_from(list(SessionStatus)),
        st.booleans(),
        st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
        st.integers(min_value=0, max_value=10_000),
        st.none() | st.floats(min_value=0, max_value=800, allow_nan=False),
    ),
    max_size=40,
)
_counts = st.none() | st.integers(min_value=0, max_value=6)
_policies = st.fixed_dictionaries(
    {},
    optional={
        "max_age": st.integers(min_value=0, max_value=400 * 86400),
        "keep_last": _counts,
        "keep_daily": _counts,
        "keep_weekly": _counts,
        "keep_monthly": _counts,
        "max_size": st.none() | st.integers(min_value=0, max_value=200_000),
        "min_age": st.integers(min_value=0, max_value=30 * 86400),
        "age_by": st.sampled_from(["updated", "accessed"]),
        "tags": st.lists(
            st.fixed_dictionaries(
                {"tag": st.sampled_from(["a", "b", "c"])},
                optional={"protect": st.booleans(), "max_age": st.integers(0, 400 * 86400), "keep_last": _counts},
            ),
            max_size=3,
        ),
    },
)


#: What _summaries draws: (age in days, status, pinned, tags, size, days since last access).
_Raw = list[tuple[float, SessionStatus, bool, list[str], int, float | None]]


def _build(raw: _Raw) -> list[SessionSummary]:
    return [
        summary(days, status=status, pinned=pinned, tags=tuple(tags), size=size, accessed_days_ago=acc, n=i + 1)
        for i, (days, status, pinned, tags, size, acc) in enumerate(raw)
    ]


@settings(max_examples=300, deadline=None)
@given(_summaries, _policies)
def test_pinned_active_paused_and_young_sessions_are_never_chosen(raw: _Raw, policy: dict[str, object]) -> None:
    sessions = _build(raw)
    cfg = RetentionConfig.model_validate(policy)
    p = plan_retention(sessions, cfg, NOW, tz=UTC)
    assert sorted(d.session.id.int for d in p.decisions) == sorted(s.id.int for s in sessions)
    for d in p.remove:
        s = d.session
        assert not s.pinned
        assert s.status not in (SessionStatus.ACTIVE, SessionStatus.PAUSED)
        times = [s.created_at, s.updated_at]
        if cfg.age_by == "accessed" and s.last_accessed_at is not None:
            times.append(s.last_accessed_at)
        assert NOW - max(times) >= timedelta(seconds=cfg.min_age)
        rule = next((t for t in cfg.tags if t.tag in s.tags), None)
        assert rule is None or not rule.protect
    # The same input always gives the same plan.
    again = plan_retention(list(reversed(sessions)), cfg, NOW, tz=UTC)
    assert [(d.session.id, d.action, d.rule) for d in again.decisions] == [
        (d.session.id, d.action, d.rule) for d in p.decisions
    ]


@settings(max_examples=200, deadline=None)
@given(_summaries, st.integers(min_value=0, max_value=10), st.none() | st.integers(0, 50_000))
def test_keep_last_keeps_the_newest_removable_sessions(raw: _Raw, n: int, max_size: int | None) -> None:
    sessions = _build(raw)
    p = plan_retention(sessions, RetentionConfig(keep_last=n, max_size=max_size), NOW, tz=UTC)
    candidates = [d for d in p.decisions if d.rule not in ("pinned", "active", "paused", "min-age")]
    newest = sorted(candidates, key=lambda d: (d.session.updated_at, d.session.id.int), reverse=True)[:n]
    assert all(d.action is Action.KEEP for d in newest)
    assert len(p.remove) == len(candidates) - len(newest)
