"""List filters and orders (docs/cli.md, ``list``): every filter must hold, the order is stable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import ListQuery, SessionStatus, Vault, errors
from sessionseal._index import Entry
from sessionseal._query import select
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def entry(n: int, **kw: object) -> Entry:
    t = (NOW - timedelta(days=n)).isoformat()
    base: dict[str, object] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "title": f"s{n}",
        "created_at": t,
        "updated_at": t,
    }
    return Entry(**{**base, **kw})  # type: ignore[arg-type]


ENTRIES = [
    entry(1, tags=["a", "b"], status="completed", cost_usd=2.0, models=["m1"], workspace="/w/p1", size_stored=10),
    entry(2, tags=["a"], status="failed", pinned=True, workspace="/w/p1/sub", size_stored=30, title="Zeta"),
    entry(3, tags=["b"], status="archived", cost_usd=0.5, models=["m2", "m1"], workspace="/w/p10", size_stored=20),
    entry(4, status="active", last_accessed_at=NOW.isoformat(), title="alpha"),
]


def titles(q: ListQuery) -> list[str]:
    return [e.title for e in select(ENTRIES, q)]


def test_default_hides_archived_newest_first() -> None:
    assert titles(ListQuery()) == ["s1", "Zeta", "alpha"]
    assert titles(ListQuery(archived=True)) == ["s3"]
    assert titles(ListQuery(archived=None)) == ["s1", "Zeta", "s3", "alpha"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ListQuery(tags=("a",)), ["s1", "Zeta"]),
        (ListQuery(tags=("a", "b")), ["s1"]),
        (ListQuery(statuses=(SessionStatus.FAILED, SessionStatus.ACTIVE)), ["Zeta", "alpha"]),
        (ListQuery(statuses=(SessionStatus.ARCHIVED,)), ["s3"]),  # asking for the status shows archived ones
        (ListQuery(pinned=True), ["Zeta"]),
        (ListQuery(min_cost=1), ["s1"]),
        (ListQuery(max_cost=1, archived=None), ["Zeta", "s3", "alpha"]),
        (ListQuery(model="m1", archived=None), ["s1", "s3"]),
        (ListQuery(workspace="/w/p1", archived=None), ["s1", "Zeta"]),  # not /w/p10
        (ListQuery(workspace="/w/p1/", archived=None), ["s1", "Zeta"]),
        (ListQuery(since=NOW - timedelta(days=2, hours=1)), ["s1", "Zeta"]),
        (ListQuery(until=NOW - timedelta(days=2)), ["alpha"]),
        (ListQuery(since=(NOW - timedelta(days=3)).replace(tzinfo=None), archived=None), ["s1", "Zeta", "s3"]),
        (ListQuery(limit=1), ["s1"]),
        (ListQuery(limit=0), []),
    ],
)
def test_filters(query: ListQuery, expected: list[str]) -> None:
    assert titles(query) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("updated", ["s1", "Zeta", "s3", "alpha"]),
        ("created", ["s1", "Zeta", "s3", "alpha"]),
        ("accessed", ["alpha", "s1", "Zeta", "s3"]),
        ("size", ["Zeta", "s3", "s1", "alpha"]),
        ("cost", ["s1", "s3", "alpha", "Zeta"]),
        ("title", ["alpha", "s1", "s3", "Zeta"]),
    ],
)
def test_orders(sort: str, expected: list[str]) -> None:
    got = titles(ListQuery(archived=None, sort=sort))  # type: ignore[arg-type]
    if sort == "cost":  # alpha and Zeta both cost 0: ties are ordered by id, stably
        assert got[:2] == expected[:2] and set(got[2:]) == set(expected[2:])
    else:
        assert got == expected


def test_bad_queries() -> None:
    with pytest.raises(errors.InvalidInput):
        ListQuery(limit=-1)
    with pytest.raises(errors.InvalidInput):
        ListQuery(since=NOW, until=NOW - timedelta(days=1))
    with pytest.raises(errors.InvalidInput, match="sort takes one of: updated, created"):
        ListQuery(sort="random")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput, match="status takes one of"):
        ListQuery(statuses=("done",))  # type: ignore[arg-type]


def test_the_vault_records_models_and_filters(vault: Vault) -> None:
    a = vault.save(
        {"title": "a", "tags": ["x"], "messages": [{"role": "assistant", "content": "hi", "model": "claude"}]}
    )
    vault.save({"title": "b", "messages": [{"role": "assistant", "content": "hi", "model": "gpt"}]})
    assert [s.id for s in vault.list(ListQuery(model="claude"))] == [a]
    assert vault.list(ListQuery(tags=("x",)))[0].models == ["claude"]
    data, _ = vault.list_json(ListQuery(model="gpt"))
    assert [d["title"] for d in json.loads(data)] == ["b"]
    record = [r for r in vault.audit_records() if r["action"] == "list"][-1]
    assert record["detail"]["filters"] == ["model"]  # which filters, never their values


def test_cli_list_filters(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    here = tmp_path / "proj"
    here.mkdir()
    for title, ws, tag in (("one", str(here), "x"), ("two", "/elsewhere", "y")):
        doc = {"title": title, "workspace": ws, "tags": [tag], "messages": []}
        run("save", "-", input=json.dumps(doc))
    monkeypatch.chdir(here)
    r = run("list", "--here", "--json")
    assert [d["title"] for d in json.loads(r.output)] == ["one"]
    r = run("list", "--tag", "y", "--since", "1d", "--sort", "title", "--limit", "5", "--json")
    assert [d["title"] for d in json.loads(r.output)] == ["two"]
    r = run("list", "--workspace", str(here), "--here")
    assert r.exit_code == 2
    r = run("list", "--since", "yesterday-ish")
    assert r.exit_code == 8
    assert "one" in run("list", "--status", "active").output


def test_reads_are_recorded_in_the_index_without_rewriting_the_session(vault: Vault, vault_path: Path) -> None:
    from sessionseal import SessionStatus

    a = vault.save({"title": "a", "status": "completed", "messages": []})
    b = vault.save({"title": "b", "status": "completed", "messages": []})
    f = vault_path / "sessions" / (vault.parts.keys.file_name(a) + ".sst")
    before = f.stat().st_ino
    assert vault.list()[1].last_accessed_at is None
    vault.load(a)
    assert f.stat().st_ino == before  # the session file was not rewritten
    assert [s.id for s in vault.list(ListQuery(sort="accessed"))] == [a, b]  # type: ignore[arg-type]
    accessed = {s.id: s.last_accessed_at for s in vault.list()}
    assert accessed[a] is not None and accessed[b] is None
    # Retention counts a read as a sign of life.
    plan = vault.plan_cleanup({"keep_last": 0, "min_age": "1h"})
    assert {d.session.id for d in plan.keep} == {a, b}
    assert vault.list(ListQuery(statuses=(SessionStatus.COMPLETED,)))[0].status == "completed"


def test_latest_and_resume(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    assert run("latest").exit_code == 3
    here = tmp_path / "proj"
    here.mkdir()
    first = run("save", "-", input=json.dumps({"title": "here", "workspace": str(here), "messages": []})).output.strip()
    second = run("save", "-", input=json.dumps({"title": "there", "messages": []})).output.strip()
    assert run("latest").output.strip() == second
    monkeypatch.chdir(here)
    assert run("latest", "--here").output.strip() == first
    assert json.loads(run("latest", "--json").output)["title"] == "there"
    r = run("resume", "--latest", "--here", "--json")
    assert json.loads(r.output)["id"] == first
    assert "there" in run("resume", second).output
    assert run("resume").exit_code == 2 and run("resume", first, "--latest").exit_code == 2
    with Vault.open(tmp_path / "vault") as v:
        assert v.latest(ListQuery(tags=("none",))) is None
        assert {s.title for s in v.list() if s.last_accessed_at} == {"here", "there"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0, 3), st.sampled_from(["a", "B", "c"])),
        min_size=0,
        max_size=12,
    ),
    st.sampled_from(["updated", "created", "accessed", "size", "cost", "title"]),
)
def test_every_order_breaks_ties_by_id(rows: list[tuple[int, float, str]], sort: str) -> None:
    """The order is (key, id), newest/largest first except titles: what one sort on
    (key, id) tuples gives, whatever the implementation does to be faster."""
    entries = [
        entry(i % 3, id=f"00000000-0000-0000-0000-{i:012d}", size_stored=size, cost_usd=cost, title=title)
        for i, (size, cost, title) in enumerate(rows)
    ]
    keys: dict[str, Callable[[Entry], datetime | float | str]] = {
        "updated": lambda e: datetime.fromisoformat(e.updated_at),
        "created": lambda e: datetime.fromisoformat(e.created_at),
        "accessed": lambda e: datetime.fromisoformat(e.last_accessed_at or e.updated_at),
        "size": lambda e: e.size_stored,
        "cost": lambda e: e.cost_usd,
        "title": lambda e: e.title.casefold(),
    }
    expected = sorted(entries, key=lambda e: (keys[sort](e), e.id), reverse=sort != "title")
    assert select(entries, ListQuery(archived=None, sort=sort)) == expected  # type: ignore[arg-type]


def test_times_order_as_times_not_as_text() -> None:
    # A time without a fraction of a second is written without one: as text "…:05Z" would
    # sort after "…:05.500000Z", half a second later.
    whole = entry(1, updated_at="2026-11-21T12:00:05Z", title="whole")
    later = entry(2, updated_at="2026-11-21T12:00:05.500000Z", title="later")
    assert [e.title for e in select([whole, later], ListQuery())] == ["later", "whole"]
