"""The push cursor's record (docs/spec/remote-v1.md, "The local cursor"; src/sessionseal/_vault/
_synccursor.py): what a push writes it reads back the same, the checkpoints' directory stamp
included; a cursor written before the stamp was kept reads with none; and a record out of shape
(a session's four numbers, a checkpoint's id, the stamp) is an integrity error, never a
traceback or a guess.  The file is sealed (AES-GCM), so these shapes only come from a bug or an
older writer: they are checked all the same."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from sessionseal._fs import Dir
from sessionseal._vault._synccursor import (
    PUSH_CURSOR,
    Cursor,
    Pushed,
    cursor_name,
    open_sealed,
    read_cursor,
    seal,
    write_cursor,
)
from sessionseal.errors import IntegrityError

KEY = bytes(range(32))


def _cursor() -> Cursor:
    c = Cursor(uuid.uuid4(), uuid.uuid4(), seq=7, mac=bytes(range(32)), epoch=2, hlc=99)
    c.sessions = {bytes([i]) * 16: Pushed(i, 1000 + i, i, 3 * i) for i in range(3)}
    c.ckpts = {bytes([1]) * 16: {1: (b"t" * 16, uuid.uuid4()), 2: (b"u" * 16, None)}}
    c.ckpts_dir = (123, 456, 789)
    return c


def _round_trip(tmp_dir: Dir, c: Cursor, doc: dict[str, Any] | None = None) -> Cursor | None:
    if doc is None:
        write_cursor(tmp_dir, c, 2, KEY)
    else:  # a record of the given shape, sealed as a push seals it
        name = cursor_name(c.device)
        seal(PUSH_CURSOR, tmp_dir, name, orjson.dumps(doc), remote=c.remote, device=c.device, epoch=2, epoch_key=KEY)
    return read_cursor(tmp_dir, c.remote, c.device, {2: KEY})


@pytest.fixture
def tmp_dir(tmp_path: Any) -> Any:
    d = Dir(tmp_path / "sync", create=True)
    yield d
    d.close()


def _doc(tmp_dir: Dir, c: Cursor) -> dict[str, Any]:
    """The record a push writes for *c*, as JSON."""
    write_cursor(tmp_dir, c, 2, KEY)
    plain = open_sealed(
        PUSH_CURSOR, tmp_dir, cursor_name(c.device), remote=c.remote, device=c.device, epoch_keys={2: KEY}
    )
    assert plain is not None
    return dict(orjson.loads(plain))


def test_what_a_push_writes_reads_back_the_same(tmp_dir: Dir) -> None:
    c = _cursor()
    assert _round_trip(tmp_dir, c) == c


def test_a_cursor_from_before_the_stamp_reads_with_none(tmp_dir: Dir) -> None:
    c = _cursor()
    doc = _doc(tmp_dir, c)
    del doc["ckpts_dir"]
    got = _round_trip(tmp_dir, c, doc)
    assert got is not None
    assert got.ckpts_dir is None
    assert got.sessions == c.sessions


@pytest.mark.parametrize(
    "bad",
    [
        [1, 2, 3],
        [1, 2, 3, 4, 5],
        [1, 2, -3, 4],
        [1, 2, True, 4],
        [1, 2, 3.0, 4],
        [1, "2", 3, 4],
        "1234",
        {"a": 1, "b": 2, "c": 3, "d": 4},
        None,
    ],
)
def test_a_sessions_record_out_of_shape_is_an_integrity_error(tmp_dir: Dir, bad: Any) -> None:
    c = _cursor()
    doc = _doc(tmp_dir, c)
    doc["sessions"][next(iter(doc["sessions"]))] = bad
    with pytest.raises(IntegrityError):
        _round_trip(tmp_dir, c, doc)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("ckpts", {"01" * 16: [[1, "74" * 16, "00" * 15]]}),
        ("ckpts", {"01" * 16: [[1, "74" * 16, "zz" * 16]]}),
        ("ckpts", {"01" * 16: [[1, "74" * 16, 5]]}),
        ("ckpts_dir", [1, 2]),
        ("ckpts_dir", [1, 2, -3]),
        ("ckpts_dir", "123"),
    ],
)
def test_a_checkpoint_record_out_of_shape_is_an_integrity_error(tmp_dir: Dir, field: str, bad: Any) -> None:
    c = _cursor()
    doc = _doc(tmp_dir, c)
    doc[field] = bad
    with pytest.raises(IntegrityError):
        _round_trip(tmp_dir, c, doc)
