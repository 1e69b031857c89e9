"""A pull's GETs (docs/sync.md, "Pull"; :mod:`sessionseal._vault._syncfetch`), against a real S3
server (``rclone serve s3`` on 127.0.0.1): what is fetched several at a time is the server's
bytes, given back in the order asked, whatever the order they arrived in; an object taken out of
the plan's order is fetched then, and those planned before it are dropped; a GET that fails is
the caller's error when it takes that object, never before; no thread outlives the prefetch."""

from __future__ import annotations

import os
import threading

import pytest

from sessionseal import _s3
from sessionseal._vault import _syncfetch
from sessionseal.errors import RemoteError
from tests._infra.s3server import S3Server, open_store
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

pytestmark = pytest.mark.s3


@pytest.fixture
def store(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> _s3.S3Store:
    return open_store(s3_server, monkeypatch, "fetch")


def _objects(store: _s3.S3Store, n: int) -> dict[str, bytes]:
    made = {f"fetch/o/{i:04d}": os.urandom(100 + 37 * i) for i in range(n)}
    for key, data in made.items():
        store.put(key, data)
    return made


def test_get_all_returns_every_object_as_stored(store: _s3.S3Store) -> None:
    made = _objects(store, 40)
    assert _syncfetch.get_all(store, list(made)) == made
    assert _syncfetch.get_all(store, []) == {}
    with pytest.raises(RemoteError):
        _syncfetch.get_all(store, [*made, "fetch/o/missing"])


def test_objects_fetched_ahead_are_given_in_the_order_asked(store: _s3.S3Store) -> None:
    made = _objects(store, _syncfetch.AHEAD * 2 + 5)
    keys = list(made)
    before = threading.active_count()
    with _syncfetch.Prefetch(store, [(k, len(made[k])) for k in keys]) as fetch:
        assert [fetch.take(k) for k in keys[:10]] == [made[k] for k in keys[:10]]
        # Out of the plan's order: an older object is fetched now; the plan goes on.
        assert fetch.take(keys[3]) == made[keys[3]]
        # Planned ones never taken (an entry found already applied) are dropped.
        assert fetch.take(keys[20]) == made[keys[20]]
        assert [fetch.take(k) for k in keys[21:]] == [made[k] for k in keys[21:]]
    assert threading.active_count() == before  # the pool is shut down with the prefetch


def test_a_failed_get_is_the_error_of_the_take_that_needs_it(store: _s3.S3Store) -> None:
    made = _objects(store, 5)
    plan = [(k, len(v)) for k, v in made.items()]
    plan.insert(2, ("fetch/o/missing", 10))
    keys = [k for k, _ in plan]
    with _syncfetch.Prefetch(store, plan) as fetch:
        assert fetch.take(keys[0]) == made[keys[0]]
        assert fetch.take(keys[1]) == made[keys[1]]
        with pytest.raises(RemoteError):
            fetch.take("fetch/o/missing")
        assert fetch.take(keys[3]) == made[keys[3]]
