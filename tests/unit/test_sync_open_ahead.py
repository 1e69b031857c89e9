"""A pull's content objects opened ahead (docs/sync.md, "Pull"; :mod:`sessionseal._vault._syncobjects`):
with a prefetch, each planned object's hash check, decryption and (small enough) decompression
run in the worker thread that fetched it.  What the applying thread then gets is what opening
the object there gives: the same payload bytes, or the same error, raised only when the entry
that names the object is applied, with the size its entry names checked first.  And the pull
cursor's encoding, whose sorts no longer compare UUIDs in Python code, is byte for byte the
reference encoding.  Against a real S3 server (``rclone serve s3`` on 127.0.0.1)."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import _compress, _remote, _remotelog, _s3
from sessionseal._vault import _syncfetch, _syncobjects, _syncstate
from sessionseal._vault._syncpull import PullCheck
from sessionseal._vault._syncstate import PullResult
from sessionseal.errors import RemoteError
from tests._infra.s3server import S3Server, open_store
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

REMOTE, DEVICE = uuid.uuid4(), uuid.uuid4()
KEY = os.urandom(32)


@pytest.fixture
def store(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> _s3.S3Store:
    return open_store(s3_server, monkeypatch, "ahead")


def _objects(store: _s3.S3Store, ring: dict[int, bytes]) -> PullObjectsPair:
    url = _remote.parse_url(f"s3://{store.bucket}/ahead")
    return PullObjectsPair(
        _syncobjects.PullObjects(store, url, ring, REMOTE, PullResult(PullCheck("r"), False)),
        _syncobjects.PullObjects(store, url, ring, REMOTE, PullResult(PullCheck("r"), False)),
    )


class PullObjectsPair:
    """The same objects read twice: *alone* (each opened where it is applied) and *ahead*."""

    def __init__(self, alone: _syncobjects.PullObjects, ahead: _syncobjects.PullObjects) -> None:
        self.alone, self.ahead = alone, ahead


def _put(store: _s3.S3Store, objects: _syncobjects.PullObjects, data: bytes, name: str) -> dict[str, Any]:
    entry = {"object": name, "size": len(data)}
    store.put(objects.key(DEVICE, entry), data)
    return entry


def _sealed(plain: bytes, epoch: int = 1) -> tuple[str, bytes]:
    return _remotelog.seal_object(KEY, REMOTE, DEVICE, epoch, _compress.compress(plain)[1:])


def _outcome(objects: _syncobjects.PullObjects, entry: dict[str, Any]) -> bytes | str:
    try:
        return objects.payload(DEVICE, entry)
    except RemoteError as exc:
        return f"RemoteError: {exc}"


def _both(pair: PullObjectsPair, entries: list[dict[str, Any]]) -> tuple[list[bytes | str], list[bytes | str]]:
    alone = [_outcome(pair.alone, e) for e in entries]
    plan = [pair.ahead.planned(DEVICE, e) for e in entries]
    with pair.ahead.prefetch(plan) as pair.ahead.fetch:
        ahead = [_outcome(pair.ahead, e) for e in entries]
    pair.ahead.fetch = None
    return alone, ahead


def test_objects_opened_ahead_give_what_opening_them_alone_gives(store: _s3.S3Store) -> None:
    pair = _objects(store, {1: KEY})
    small, edge, big = os.urandom(3000) * 3, b"e" * _syncobjects.OPEN_AHEAD, b"b" * (_syncobjects.OPEN_AHEAD + 1)
    entries = []
    for plain in (small, edge, big, b"", orjson.dumps({"id": str(uuid.uuid4())})):
        name, data = _sealed(plain)
        entries.append(_put(store, pair.alone, data, name))
    # Modified after sealing (its hash is not its name); another name than its hash; sealed
    # under an epoch this reader lacks; the size its entry names is not the object's.
    name, data = _sealed(b"tampered")
    entries.append(_put(store, pair.alone, data[:-1] + bytes([data[-1] ^ 1]), name))
    name, data = _sealed(b"misplaced")
    entries.append(_put(store, pair.alone, data, "0" * 64))
    name, data = _sealed(b"other epoch", epoch=7)
    entries.append(_put(store, pair.alone, data, name))
    name, data = _sealed(b"wrong size")
    entries.append({**_put(store, pair.alone, data, name), "size": len(data) + 1})
    entries.append({**entries[0], "size": "12"})  # a size of the wrong type
    alone, ahead = _both(pair, entries)
    assert ahead == alone
    assert alone[:5] == [small, edge, big, b"", alone[4]] and isinstance(alone[4], bytes)
    assert [a.split(":")[0] for a in alone[5:] if isinstance(a, str)] == ["RemoteError"] * 5
    assert pair.ahead.result.bytes == pair.alone.result.bytes  # counted alike, when applied


def test_an_object_that_does_not_open_is_the_error_of_its_entry_only_when_applied(store: _s3.S3Store) -> None:
    pair = _objects(store, {1: KEY})
    good = [_sealed(f"good {i}".encode()) for i in range(3)]
    bad_name, bad = _sealed(b"bad")
    entries = [_put(store, pair.ahead, d, n) for n, d in good[:1]]
    entries.append(_put(store, pair.ahead, bad[:-1] + bytes([bad[-1] ^ 1]), bad_name))
    entries += [_put(store, pair.ahead, d, n) for n, d in good[1:]]
    plan = [pair.ahead.planned(DEVICE, e) for e in entries]
    with pair.ahead.prefetch(plan) as pair.ahead.fetch:
        assert pair.ahead.payload(DEVICE, entries[0]) == b"good 0"
        with pytest.raises(RemoteError, match="does not open"):
            pair.ahead.payload(DEVICE, entries[1])
        assert [pair.ahead.payload(DEVICE, e) for e in entries[2:]] == [b"good 1", b"good 2"]


def test_a_prefetch_hands_over_what_its_worker_made_of_each_object(store: _s3.S3Store) -> None:
    made = {f"ahead/then/{i:03d}": os.urandom(50 + i) for i in range(_syncfetch.AHEAD + 7)}
    for k, v in made.items():
        store.put(k, v)
    keys = list(made)
    workers: set[int] = set()

    def then(key: str, data: bytes) -> tuple[str, int]:
        workers.add(threading.get_ident())
        if key == keys[5]:
            raise RemoteError("made in the worker")
        return key, len(data)

    with _syncfetch.Prefetch(store, [(k, len(made[k])) for k in keys], then=then) as fetch:
        assert [fetch.take(k) for k in keys[:5]] == [(k, len(made[k])) for k in keys[:5]]
        with pytest.raises(RemoteError, match="made in the worker"):
            fetch.take(keys[5])
        assert fetch.take("ahead/then/000") == made[keys[0]]  # out of the plan: its bytes, fetched now
        assert [fetch.take(k) for k in keys[6:]] == [(k, len(made[k])) for k in keys[6:]]
    assert threading.get_ident() not in workers


# -- the pull cursor's encoding ------------------------------------------------------------------


def _reference(s: _syncstate.PullState) -> bytes:
    """The encoding as it was written before (UUID keys sorted as UUIDs), for its two sorted lists."""
    doc = orjson.loads(_syncstate._encode(s))
    doc["lines"] = [[d.hex, sid.hex, t.hex, n] for (d, sid), (t, n) in sorted(s.lines.items())]
    doc["winners"] = [[sid.hex, f, h, d.hex] for (sid, f), (h, d) in sorted(s.winners.items())]
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


_uuids = st.sampled_from([uuid.UUID(int=i) for i in (0, 1, 2**64, 2**127, 2**128 - 1)]) | st.uuids()
_fields = st.sampled_from(["title", "description", "status", "pinned", "tags", "links", "archived_from", "", "é"])


@given(
    lines=st.dictionaries(st.tuples(_uuids, _uuids), st.tuples(_uuids, st.integers(0, 2**40)), max_size=30),
    winners=st.dictionaries(st.tuples(_uuids, _fields), st.tuples(st.integers(0, 2**63), _uuids), max_size=30),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_pull_cursor_encodes_byte_for_byte_as_the_reference(
    lines: dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, int]],
    winners: dict[tuple[uuid.UUID, str], tuple[int, uuid.UUID]],
) -> None:
    s = _syncstate.PullState(lines=lines, winners=winners, hlc=5)
    encoded = _syncstate._encode(s)
    assert encoded == _reference(s)
    back = _syncstate._decode(encoded)
    assert (back.lines, back.winners) == (lines, winners)
