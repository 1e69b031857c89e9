"""A resumed pull's judgement of a killed one's recorded write (issue 26; docs/spec/remote-v1.md,
"The pull cursor"): the write is taken as done only when the session holds it (the appended
group's footprint; the BODY a put writes), never because its version merely moved (an
append by another process moves it too).  The cursor's ``pending`` keeps the footprint and
still reads the five-element form written before it.  With real kills:
tests/integration/test_sync_pull_resume.py."""

from __future__ import annotations

import uuid

import orjson

from sessionseal import Vault, _remotelog
from sessionseal._vault import _syncstate
from sessionseal._vault._syncresume import footprint, saved, was_written
from sessionseal.models import Session

TURN = [{"op": "message", "value": {"role": "assistant", "content": "the other device's turn"}}]
LOCAL = [{"op": "message", "value": {"role": "user", "content": "a local turn"}}]


def _sid(vault: Vault) -> uuid.UUID:
    return vault.save(Session.model_validate({"title": "t", "messages": [{"role": "user", "content": "hi"}]}))


def test_an_append_is_written_only_when_its_own_group_follows_what_the_session_held(vault: Vault) -> None:
    store, sid = vault.parts.store, _sid(vault)
    before, foot = footprint(store, sid, TURN)
    assert before is not None and foot is not None and foot[:2] == (0, 1)
    assert not was_written(store, "append", sid, before, foot)  # nothing happened yet
    store.append(sid, LOCAL, touch=True)  # another process's append, after the kill
    assert not was_written(store, "append", sid, before, foot)  # moved, but not by the pull
    # The pull's own group, then a local one after it: written.
    other = _sid(vault)
    before2, foot2 = footprint(store, other, TURN)
    store.append(other, TURN, touch=False)
    store.append(other, LOCAL, touch=True)
    assert was_written(store, "append", other, before2, foot2)


def test_a_put_is_written_when_the_generation_moved_not_when_it_grew(vault: Vault) -> None:
    store, sid = vault.parts.store, _sid(vault)
    log = store.open(sid)
    before = (log.header.generation, log.end)
    store.append(sid, LOCAL, touch=True)
    assert not was_written(store, "put", sid, before, None)
    vault.save(Session.model_validate({"id": str(sid), "messages": [{"role": "user", "content": "again"}]}))
    assert was_written(store, "put", sid, before, None)
    assert not was_written(store, "put", uuid.uuid4(), None, None)  # a session that never came


def test_a_put_is_written_only_when_the_session_holds_its_body(vault: Vault) -> None:
    store, sid = vault.parts.store, _sid(vault)
    log = store.open(sid)
    before = (log.header.generation, log.end)
    pulled = Session.model_validate({"id": str(sid), "messages": [{"role": "user", "content": "the other device's"}]})
    built = store.build(pulled, touch=False)
    foot = saved(built.body)
    assert not was_written(store, "put", sid, before, foot)  # nothing happened yet
    # Another process rewrites the session: the generation moves as the save's would.
    vault.save(Session.model_validate({"id": str(sid), "messages": [{"role": "user", "content": "a local rewrite"}]}))
    assert not was_written(store, "put", sid, before, foot)
    assert was_written(store, "put", sid, before, None)  # the older, footprint-less judgement erred here
    # The save's own BODY, then a local append after it: written.
    log = store.open(sid)
    before = (log.header.generation, log.end)
    store.write(sid, built.meta, built.body, doc=built.doc)
    store.append(sid, LOCAL, touch=True)
    assert was_written(store, "put", sid, before, foot)
    other = uuid.uuid4()  # a session the vault lacked: it must exist now, holding that BODY
    assert not was_written(store, "put", other, None, foot)


def test_the_pending_write_keeps_its_footprint_and_reads_the_older_form() -> None:
    dev, sid = uuid.uuid4(), uuid.uuid4()
    state = _syncstate.PullState(pending=(dev, 7, "append", sid, (2, 900), (3, 1, "ab" * 32)))
    assert _syncstate._decode(_syncstate._encode(state)).pending == state.pending
    older = _syncstate.PullState(pending=(dev, 7, "put", sid, None, None))
    encoded = _syncstate._encode(older)
    assert b'"pending":["' in encoded and encoded.count(b"null") >= 1
    assert _syncstate._decode(encoded).pending == older.pending


def test_the_proved_prefixes_round_trip_and_are_absent_in_an_older_cursor() -> None:
    # The pull cursor's ``proof`` (docs/spec/remote-v1.md, "The pull cursor"): what epoch
    # proofs verified of each log, kept so that a pending key object costs no second read.
    dev = uuid.uuid4()
    first = _remotelog.Opened(1, 1, bytes(32), b"\x01" * 32, {"kind": "epoch", "reason": "first"})
    state = _syncstate.PullState(proof={dev: ((9, b"\x09" * 32), (first,))})
    assert _syncstate._decode(_syncstate._encode(state)).proof == state.proof
    older = orjson.loads(_syncstate._encode(_syncstate.PullState()))
    del older["proof"]
    assert _syncstate._decode(orjson.dumps(older)).proof == {}


def test_the_cursor_s_lines_and_winners_are_rows_of_hex_sorted_and_round_trip() -> None:
    """The rows as docs/spec/remote-v1.md gives them (each UUID's hex made once a write:
    the same bytes), a UUID shared by many rows included."""
    dev, other = uuid.UUID(int=7), uuid.UUID(int=3)
    sids = [uuid.UUID(int=(5 - i) << 100) for i in range(4)]
    state = _syncstate.PullState(
        lines={(d, s): (s if d == dev else other, i) for i, s in enumerate(sids) for d in (dev, other)},
        winners={(s, f): (i << 16, dev) for i, s in enumerate(sids) for f in ("title", "tags")},
    )
    doc = orjson.loads(_syncstate._encode(state))
    assert doc["lines"] == sorted([[d.hex, s.hex, t.hex, n] for (d, s), (t, n) in state.lines.items()])
    assert doc["winners"] == sorted([[s.hex, f, h, d.hex] for (s, f), (h, d) in state.winners.items()])
    again = _syncstate._decode(_syncstate._encode(state))
    assert (again.lines, again.winners) == (state.lines, state.winners)
