"""Usage at a glance (issue 23): ``Vault.usage`` and ``stats --usage``.

Vectors of sessions across days, models and tools; week and month boundaries in UTC and in
other zones (a half-hour one too); the filters; the JSON shape; a vault of old sessions without
rollups; and properties: the rollup an append keeps is the one a save would compute, and the
rows of any grouping add up to the total.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import UsageBy, UsageQuery, Vault, _events, find_transcripts
from sessionseal._usage import STEP, Counted, report, rollup_after, rollup_of, stored_rollup, tool_of, usage_current
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput
from tests.memkeyring import MemoryKeyring
from tests.unit.test_fixtures import FIXTURES
from tests.unit.test_fixtures import _copy as copy_fixture


def reply(at: str | None, model: str | None, inp: int, out: int, **more: Any) -> dict[str, Any]:
    usage = {"input_tokens": inp, "output_tokens": out}
    usage.update({k: v for k, v in more.items() if k.endswith("_tokens")})
    m: dict[str, Any] = {"role": "assistant", "content": "ok", "model": model, "usage": usage}
    if at is not None:
        m["timestamp"] = at
    if "cost" in more:
        m["cost_usd"] = more["cost"]
    return m


def counted_of(sid: str, updated_at: str, workspace: str | None, tags: list[str], doc: dict[str, Any]) -> Counted:
    """A session as a report counts it, its rollup from its messages."""
    rollup = rollup_of(doc)
    return Counted(sid, updated_at, workspace, tags, rollup["rows"], rollup["stats"])


def user(at: str) -> dict[str, Any]:
    return {"role": "user", "content": "please", "timestamp": at}


#: Three sessions of three agents: one spans midnight (UTC) and a month end, one a week end.
SESSIONS = [
    {
        "title": "claude across midnight",
        "tags": ["claude-code", "work"],
        "workspace": "/home/dev/alpha",
        "messages": [
            user("2026-11-30T23:40:00Z"),
            reply("2026-11-30T23:50:00Z", "claude-a", 100, 10, cache_read_tokens=1000, cost=0.5),
            reply("2026-12-01T00:10:00Z", "claude-a", 200, 20, cache_write_tokens=300, cost=0.25),
        ],
    },
    {
        "title": "codex over a week end",
        "tags": ["codex"],
        "workspace": "/home/dev/beta",
        "messages": [
            reply("2026-11-22T23:30:00Z", "gpt-x", 1, 2, cache_read_tokens=3),  # a Sunday (ISO week 47)
            reply("2026-11-23T00:30:00Z", "gpt-x", 4, 5),  # Monday: week 48
        ],
    },
    {
        "title": "gemini in one quarter hour",
        "tags": ["gemini-cli", "work"],
        "workspace": "/home/dev/alpha/sub",
        "messages": [reply("2026-11-30T18:20:00Z", "gem-1", 7, 8, reasoning_tokens=3, cost=0.125)],
    },
]


@pytest.fixture
def filled(vault: Vault) -> Vault:
    for s in SESSIONS:
        vault.save(s)
    vault.save({"title": "no figures", "tags": ["other-tool"], "messages": [user("2026-11-30T10:00:00Z")]})
    return vault


def keyed(rows: list[Any], *fields: str) -> dict[str, tuple[Any, ...]]:
    return {r.key: tuple(getattr(r, f) for f in fields) for r in rows}


# -- vectors -------------------------------------------------------------------------------


def test_days_in_utc_split_a_session_at_midnight_by_its_messages(filled: Vault) -> None:
    r = filled.usage(UsageQuery(by="day", tz=UTC))
    assert keyed(r.rows, "input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "sessions") == {
        "2026-11-22": (1, 2, 3, 0.0, 1),
        "2026-11-23": (4, 5, 0, 0.0, 1),
        "2026-11-30": (107, 18, 1000, 0.625, 2),
        "2026-12-01": (200, 20, 0, 0.25, 1),
    }
    assert [row.key for row in r.rows] == sorted(row.key for row in r.rows)
    t = r.total
    assert (t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens) == (312, 45, 1003, 300)
    assert (t.reasoning_tokens, t.cost_usd, t.messages, t.sessions) == (3, 0.875, 5, 3)
    assert r.computed == 0 and r.unreadable == 0 and r.time_zone == "UTC"


def test_weeks_are_iso_weeks_from_monday_and_months_calendar_months(filled: Vault) -> None:
    weeks = filled.usage(UsageQuery(by="week", tz=UTC))
    # Sunday Nov 22 ends week 47; week 49 runs from Monday Nov 30 over the month's end.
    assert keyed(weeks.rows, "input_tokens") == {"2026-W47": (1,), "2026-W48": (4,), "2026-W49": (307,)}
    months = filled.usage(UsageQuery(by="month", tz=UTC))
    assert keyed(months.rows, "input_tokens") == {"2026-11": (112,), "2026-12": (200,)}


def test_days_follow_the_time_zone_a_half_hour_one_too() -> None:
    # 2026-11-30T23:50Z is 18:50 in New York and 05:20 on Dec 1 in Kolkata (UTC+5:30);
    # 2026-11-30T18:20Z is 23:50 on Nov 30 in Kolkata, a quarter hour that stays on its day.
    docs: list[dict[str, Any]] = [{**s, "updated_at": "2026-12-02T00:00:00Z"} for s in SESSIONS]
    counted = [counted_of(str(i), d["updated_at"], d["workspace"], d["tags"], d) for i, d in enumerate(docs)]
    ny, _ = report(counted, UsageQuery(by="day", tz=ZoneInfo("America/New_York")))
    assert keyed(ny, "input_tokens") == {"2026-11-22": (5,), "2026-11-30": (307,)}
    kolkata, _ = report(counted, UsageQuery(by="day", tz=ZoneInfo("Asia/Kolkata")))
    assert keyed(kolkata, "input_tokens") == {"2026-11-23": (5,), "2026-11-30": (7,), "2026-12-01": (300,)}
    months, _ = report(counted, UsageQuery(by="month", tz=ZoneInfo("America/New_York")))
    assert keyed(months, "input_tokens") == {"2026-11": (312,)}


def test_models_workspaces_and_tools(filled: Vault) -> None:
    models = filled.usage(UsageQuery(by="model"))
    assert [r.key for r in models.rows] == ["claude-a", "gem-1", "gpt-x"]  # costliest first
    assert keyed(models.rows, "input_tokens", "messages") == {
        "claude-a": (300, 2),
        "gem-1": (7, 1),
        "gpt-x": (5, 2),
    }
    spaces = filled.usage(UsageQuery(by="workspace"))
    assert keyed(spaces.rows, "input_tokens") == {
        "/home/dev/alpha": (300,),
        "/home/dev/alpha/sub": (7,),
        "/home/dev/beta": (5,),
    }
    tools = filled.usage(UsageQuery(by="tool"))
    assert keyed(tools.rows, "input_tokens", "sessions") == {
        "claude-code": (300, 1),
        "gemini-cli": (7, 1),
        "codex": (5, 1),
    }
    assert tool_of(["x", "codex"]) == "codex" and tool_of(["x"]) == "other"


def test_filters_tag_workspace_model_and_time(filled: Vault) -> None:
    assert filled.usage(UsageQuery(tags=("work",), tz=UTC)).total.input_tokens == 307
    assert filled.usage(UsageQuery(workspace="/home/dev/alpha")).total.input_tokens == 307
    only = filled.usage(UsageQuery(by="model", model="gpt-x"))
    assert [r.key for r in only.rows] == ["gpt-x"] and only.total.input_tokens == 5
    # since/until select usage by when it happened, not sessions by their update.
    dec = filled.usage(UsageQuery(since=datetime(2026, 12, 1, tzinfo=UTC), tz=UTC))
    assert keyed(dec.rows, "input_tokens") == {"2026-12-01": (200,)}
    nov = filled.usage(UsageQuery(until=datetime(2026, 12, 1, tzinfo=UTC), tz=UTC))
    assert nov.total.input_tokens == 112
    window = filled.usage(
        UsageQuery(since=datetime(2026, 11, 23, tzinfo=UTC), until=datetime(2026, 11, 30, 23, tzinfo=UTC))
    )
    assert window.total.input_tokens == 4 + 7
    with pytest.raises(InvalidInput):
        UsageQuery(since=datetime(2026, 12, 1, tzinfo=UTC), until=datetime(2026, 11, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput):
        UsageQuery(by="year")


def test_archived_sessions_count_and_erased_ones_do_not(filled: Vault) -> None:
    gem = next(s.id for s in filled.list() if s.title.startswith("gemini"))
    filled.archive(gem)
    assert filled.usage(UsageQuery(by="tool")).total.input_tokens == 312
    assert filled.usage(UsageQuery(by="tool", archived=False)).total.input_tokens == 305
    filled.delete(gem)
    assert filled.usage().total.input_tokens == 305


def test_a_message_without_a_time_counts_at_the_sessions_last_update(vault: Vault) -> None:
    doc = {"title": "t", "updated_at": "2026-11-10T12:00:00Z", "messages": [reply(None, "m", 5, 1)]}
    sid = vault.save(doc, touch=False)
    r = vault.usage(UsageQuery(tz=UTC))
    assert keyed(r.rows, "input_tokens") == {"2026-11-10": (5,)}
    vault.append(sid, [{"role": "assistant", "content": "more", "model": "m", "usage": {"input_tokens": 2}}])
    today = vault.load(sid).updated_at.astimezone(UTC).strftime("%Y-%m-%d")
    assert today != "2026-11-10"
    # The untimed messages follow the session's update, all of them.
    assert keyed(vault.usage(UsageQuery(tz=UTC)).rows, "input_tokens") == {today: (7,)}


def test_a_session_without_figures_per_message_counts_its_own_stats(vault: Vault) -> None:
    stats = {"input_tokens": 40, "output_tokens": 4, "cost_usd": 1.5, "cache_read_tokens": 9}
    doc = {
        "title": "t",
        "updated_at": "2026-11-10T12:00:00Z",
        "stats": stats,
        "messages": [user("2026-11-01T00:00:00Z")],
    }
    vault.save(doc, touch=False)
    r = vault.usage(UsageQuery(by="model", tz=UTC))
    assert keyed(r.rows, "input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "messages") == {
        "(none)": (40, 4, 9, 1.5, 0)
    }
    assert keyed(vault.usage(UsageQuery(tz=UTC)).rows, "input_tokens") == {"2026-11-10": (40,)}


def test_an_extend_replaces_the_last_messages_figures(vault: Vault) -> None:
    # A Codex reply whose token count came after the import: the append sets it (issue 22).
    sid = vault.save({"title": "t", "messages": [reply("2026-11-10T12:00:00Z", "gpt-x", 10, 1)]})
    name = vault.parts.keys.file_name(sid)
    ops = [{"op": "extend", "value": {"content": [], "usage": {"input_tokens": 30, "output_tokens": 3}}}]
    with vault.parts.ctx.session_lock(name, sid):
        vault.parts.store.append_locked(name, sid, ops, counts={}, touch=False)
    r = vault.usage(UsageQuery(tz=UTC))
    assert (r.total.input_tokens, r.total.output_tokens, r.total.messages, r.computed) == (30, 3, 1, 0)


def test_the_report_is_audited_by_counts_never_figures(filled: Vault) -> None:
    filled.usage(UsageQuery(by="week", tags=("work",)))
    rec = [r for r in filled.audit_entries()[0] if r.get("action") == "stats"][-1]
    assert rec["detail"] == {"sessions": 2, "usage": "week", "computed": 0, "filters": ["tags"]}


# -- old sessions ------------------------------------------------------------------------


def test_a_vault_of_old_sessions_without_rollups_is_counted_from_the_bodies(tmp_path: Path) -> None:
    fixture = FIXTURES / "vault-v1"
    expected = json.loads((fixture / "expected.json").read_text())
    path = copy_fixture(fixture, tmp_path)
    with Vault.open(path, passphrase=expected["passphrase"], auto_cleanup=False) as v:
        r = v.usage(UsageQuery(by="model"))
        # Two sessions of 0.1.0 each with a reply of model-a that cost 0.25 (no token counts).
        assert r.computed == 3
        assert keyed(r.rows, "cost_usd", "messages", "sessions") == {"model-a": (0.5, 2, 2)}


def test_an_older_builds_append_leaves_a_stale_rollup_that_is_not_trusted() -> None:
    doc = {"messages": [reply("2026-11-10T12:00:00Z", "m", 5, 1)], "stats": {}}
    meta = _events.summary_of(doc, 100)
    assert usage_current(meta["usage"], meta["size_original"])
    # What 0.1.0's append did: the summary copied, its size grown, the rollup left as it was.
    old = {**meta, "size_original": 150}
    assert not usage_current(old["usage"], old["size_original"])
    after = _events.summary_after(old, [{"op": "message", "value": reply(None, "m", 1, 1)}], 10)
    assert "usage" not in after  # left out: computed from the body until the next save


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_cli_json_shape_and_table(run: Callable[..., Result]) -> None:
    assert run("init").exit_code == 0
    for s in SESSIONS:
        assert run("save", "-", input=json.dumps(s)).exit_code == 0
    r = run("stats", "--usage", "--by", "month", "--utc", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    figures = {
        "sessions",
        "messages",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
    }
    assert set(doc) == {"by", "time_zone", "since", "until", "rows", "total", "computed", "unreadable", "warnings"}
    assert doc["by"] == "month" and doc["time_zone"] == "UTC" and doc["since"] is None
    assert [set(row) for row in doc["rows"]] == [figures | {"key"}] * 2
    assert set(doc["total"]) == figures and doc["total"]["input_tokens"] == 312
    # A date is midnight in the report's zone.
    dec = json.loads(run("stats", "--usage", "--utc", "--since", "2026-12-01", "--json").output)
    assert dec["since"] == "2026-12-01T00:00:00+00:00" and [r["key"] for r in dec["rows"]] == ["2026-12-01"]
    table = run("stats", "--usage", "--by", "tool", "--tag", "work").output
    assert "claude-code" in table and "gemini-cli" in table and "codex" not in table and "total" in table


def test_cli_usage_options_need_usage_and_bad_values_are_one_line(run: Callable[..., Result]) -> None:
    run("init")
    r = run("stats", "--by", "day")
    assert r.exit_code == 2 and "--by goes with --usage" in r.output
    r = run("stats", "--usage", "--since", "yesterday-ish")
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
    assert "No usage recorded" in run("stats", "--usage").output
    assert json.loads(run("stats", "--json").output)["sessions"] == 0  # plain stats unchanged


# -- properties ----------------------------------------------------------------------------

_START = datetime(2026, 10, 20, tzinfo=UTC)
_times = st.one_of(st.none(), st.integers(0, 60 * 24 * 70).map(lambda m: (_START + timedelta(minutes=m)).isoformat()))
_usage = st.fixed_dictionaries(
    {"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**5)},
    optional={"cache_read_tokens": st.integers(0, 10**6), "reasoning_tokens": st.integers(0, 100)},
)
_messages = st.fixed_dictionaries(
    {"role": st.just("assistant")},
    optional={
        "timestamp": _times,
        "model": st.sampled_from(["a", "b", "c"]),
        "usage": _usage,
        "cost_usd": st.sampled_from([0, 0.5, 0.25, 1.0, 0.125]),
    },
)
_ops = st.one_of(
    _messages.map(lambda m: {"op": "message", "value": m}),
    st.fixed_dictionaries(
        {"content": st.just([])}, optional={"usage": _usage, "model": st.sampled_from(["a", "d"]), "timestamp": _times}
    ).map(lambda v: {"op": "extend", "value": v}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.lists(_messages, max_size=8), groups=st.lists(st.lists(_ops, max_size=4), max_size=4))
def test_appends_keep_the_rollup_a_save_computes(start: list[dict[str, Any]], groups: list[list[Any]]) -> None:
    doc: dict[str, Any] = {"messages": [dict(m) for m in start], "stats": {}}
    rollup: Any = rollup_of(doc)
    for ops in groups:
        rollup = rollup_after(rollup, ops)
        _events.apply(doc, json.loads(json.dumps(ops)))
    full = rollup_of(doc)
    assert rollup["last"] == full["last"]
    # Costs here are binary fractions: sums are exact in any order.
    assert rollup["rows"] == full["rows"]


@settings(max_examples=100, deadline=None)
@given(
    sessions=st.lists(
        st.tuples(st.lists(_messages, max_size=6), st.sampled_from([["codex"], ["claude-code", "x"], []]), _times),
        max_size=6,
    ),
    zone=st.sampled_from([UTC, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/St_Johns"), ZoneInfo("Europe/Paris")]),
)
def test_the_rows_of_any_grouping_add_up_to_the_total(sessions: list[Any], zone: Any) -> None:
    counted = [
        counted_of(str(i), at or "2026-11-01T00:00:00+00:00", f"/w{i % 2}", tags, {"messages": ms})
        for i, (ms, tags, at) in enumerate(sessions)
    ]
    totals = set()
    for by in UsageBy:
        rows, total = report(counted, UsageQuery(by=by, tz=zone))
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "messages"):
            assert sum(getattr(r, name) for r in rows) == getattr(total, name)
        assert sum(r.cost_usd for r in rows) == pytest.approx(total.cost_usd)
        assert all(r.sessions <= total.sessions for r in rows)
        totals.add((total.input_tokens, total.messages, total.sessions))
    assert len(totals) == 1  # every grouping counts the same


def test_a_quarter_hour_never_straddles_a_local_day_in_any_zone_in_use() -> None:
    # Why a rollup to the quarter hour gives exact days in every zone: all offsets in use are
    # multiples of 15 minutes (Asia/Kathmandu is +5:45, Australia/Eucla +8:45, St John's -3:30).
    for name in ("Asia/Kathmandu", "Australia/Eucla", "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham"):
        offset = datetime(2026, 11, 1, tzinfo=ZoneInfo(name)).utcoffset()
        assert offset is not None and offset.total_seconds() % STEP == 0, name


def test_a_rollup_of_another_shape_version_or_size_is_not_trusted() -> None:
    doc = {"messages": [reply("2026-11-10T12:00:00Z", "m", 5, 1)], "stats": {}}
    meta = _events.summary_of(doc, 100)
    good = stored_rollup(json.dumps(meta).encode())
    assert good is not None and good[0] == [(1_993_680, "m", 5, 1, 0, 0, 0, 0.0, 1)]
    bad_rows = {**meta, "usage": {**meta["usage"], "rows": [[1, "m", "5", 1, 0, 0, 0, 0.0, 1]]}}
    newer = {**meta, "usage": {**meta["usage"], "v": 2}}
    stale = {**meta, "size_original": 150}
    for m in (bad_rows, newer, stale, {**meta, "usage": "x"}, {k: v for k, v in meta.items() if k != "usage"}):
        assert stored_rollup(json.dumps(m).encode()) is None


def test_imported_transcripts_of_the_three_agents_add_up_to_their_messages(vault: Vault, tmp_path: Path) -> None:
    # Claude Code, Codex and Gemini CLI fixtures imported as a user would; the report, from
    # the rollups alone, equals the sum over every stored message.
    for name in ("claude", "codex", "gemini"):
        shutil.copytree(FIXTURES / "transcripts" / name, tmp_path / name)
    paths = find_transcripts(
        claude=tmp_path / "claude" / "projects", codex=tmp_path / "codex" / "sessions", gemini=tmp_path / "gemini"
    )
    assert {o.action for o in vault.import_transcripts(paths)} == {"new"}
    r = vault.usage(UsageQuery(by="tool"))
    assert r.computed == 0 and {row.key for row in r.rows} == {"claude-code", "codex", "gemini-cli"}
    want = dict.fromkeys(("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"), 0)
    for s in vault.list(archived=None):
        for m in vault.load(s.id).messages:
            for k in want:
                want[k] += getattr(m.usage, k, 0) or 0
    assert {k: getattr(r.total, k) for k in want} == want
    assert want["reasoning_tokens"] > 0 and want["cache_read_tokens"] > 0  # Gemini's thoughts, the caches


def test_days_are_local_by_default(filled: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        r = filled.usage(UsageQuery(by="day"))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert keyed(r.rows, "input_tokens") == {"2026-11-23": (5,), "2026-11-30": (7,), "2026-12-01": (300,)}
    assert r.time_zone == "local (IST)"
