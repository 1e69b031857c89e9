"""The container, as docs/spec/container-v1.md specifies it: vectors, tamper matrix, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _container
from sessionseal._container import FrameType, Kind
from sessionseal.errors import IntegrityError, UnsupportedVersion

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "container-v1.json"
EXPECT = {
    "integrity failure": IntegrityError,
    "integrity failure (missing body)": IntegrityError,
    "unsupported version": UnsupportedVersion,
}


def _vectors(expect_success: bool) -> list[Any]:
    doc = json.loads(VECTORS.read_text())
    return [
        pytest.param(v, id=v["name"].replace(" ", "-"))
        for v in doc["vectors"]
        if (v["expect"] == "success") == expect_success
    ]


def _open(v: dict[str, Any], data: bytes) -> tuple[_container.Header, list[_container.Frame]]:
    vault, sid, kek = UUID(v["vault_id"]), UUID(v["object_id"]), bytes.fromhex(v["kek"])
    if "checkpoint" in v:  # opened as checkpoint number v["checkpoint"] of the session
        meta, body = _container.open_checkpoint(data, vault, sid, v["checkpoint"], kek)
        assert body is not None
        header = _container.parse_unverified_header(data)
        return header, [_container.Frame(0, FrameType.META, meta), _container.Frame(1, FrameType.BODY, body)]
    log = _container.open_session(data, vault, sid, lambda _sid: kek)
    return log.header, log.frames


def _vectors_expecting(expect: str) -> list[Any]:
    doc = json.loads(VECTORS.read_text())
    return [pytest.param(v, id=v["name"].replace(" ", "-")) for v in doc["vectors"] if v["expect"] == expect]


@pytest.mark.parametrize("v", _vectors(True))
def test_success_vectors_seal_byte_exact(v: dict[str, Any]) -> None:
    sealed = _container.seal(
        kind=v["kind"],
        vault_id=UUID(v["vault_id"]),
        object_id=UUID(v["object_id"]),
        generation=v["generation"],
        kek=bytes.fromhex(v["kek"]),
        kek_epoch=v["kek_epoch"],
        frames=[(f["type"], bytes.fromhex(f["payload"])) for f in v["frames"]],
        dek=bytes.fromhex(v["dek"]),
        nonces=iter(bytes.fromhex(n) for n in v["nonces"]),
    )
    assert sealed.hex() == v["container"]


@pytest.mark.parametrize("v", _vectors(True))
def test_success_vectors_open(v: dict[str, Any]) -> None:
    header, frames = _open(v, bytes.fromhex(v["container"]))
    assert header.generation == v["generation"]
    assert [(f.type, f.data.hex()) for f in frames] == [(f["type"], f["payload"]) for f in v["frames"]]


@pytest.mark.parametrize("v", _vectors_expecting("torn append ignored"))
def test_torn_append_vectors_open_what_was_committed(v: dict[str, Any]) -> None:
    _, frames = _open(v, bytes.fromhex(v["container"]))
    assert [(f.type, f.data.hex()) for f in frames] == [(f["type"], f["payload"]) for f in v["frames"]]
    # The tail reader (listing, appending) agrees, without decrypting the body.
    data = bytes.fromhex(v["container"])
    tail = _container.open_session_tail(
        lambda o, n: data[o : o + n], len(data), UUID(v["vault_id"]), lambda _sid: bytes.fromhex(v["kek"])
    )
    assert tail.meta.hex() == v["frames"][-1]["payload"] and tail.frames == len(v["frames"])


@pytest.mark.parametrize("v", [*_vectors(False)])
def test_failure_vectors(v: dict[str, Any]) -> None:
    if v["expect"] == "torn append ignored":
        return
    with pytest.raises(EXPECT[v["expect"]]):
        _open(v, bytes.fromhex(v["container"]))


def _small_container(key: bytes, vault: UUID, sid: UUID) -> bytes:
    return _container.seal(
        kind=Kind.SESSION,
        vault_id=vault,
        object_id=sid,
        generation=1,
        kek=key,
        kek_epoch=0,
        frames=[
            (FrameType.META, _container.encode_payload(b'{"t":1}', compress=True)),
            (FrameType.BODY, _container.encode_payload(b'{"messages":["hi"]}', compress=True)),
        ],
    )


def test_every_flipped_byte_is_one_integrity_error() -> None:
    key, vault, sid = bytes(32), uuid4(), uuid4()
    good = _small_container(key, vault, sid)
    _container.open_session(good, vault, sid, lambda _s: key)
    for i in range(len(good)):
        for mask in (0x01, 0x80):
            bad = good[:i] + bytes([good[i] ^ mask]) + good[i + 1 :]
            with pytest.raises(IntegrityError):
                _container.open_session(bad, vault, sid, lambda _s: key)


def test_every_truncation_is_an_integrity_error() -> None:
    key, vault, sid = bytes(32), uuid4(), uuid4()
    good = _small_container(key, vault, sid)
    for n in range(len(good)):
        with pytest.raises(IntegrityError):
            _container.open_session(good[:n], vault, sid, lambda _s: key)


def test_container_of_another_vault_or_session_is_refused() -> None:
    key, vault, sid = bytes(32), uuid4(), uuid4()
    good = _small_container(key, vault, sid)
    with pytest.raises(IntegrityError):
        _container.open_session(good, uuid4(), sid, lambda _s: key)
    with pytest.raises(IntegrityError):
        _container.open_session(good, vault, uuid4(), lambda _s: key)


def test_every_container_has_a_fresh_data_key_and_nonces() -> None:
    key, vault, sid = bytes(32), uuid4(), uuid4()
    a, b = _small_container(key, vault, sid), _small_container(key, vault, sid)
    ha, hb = _container.parse_unverified_header(a), _container.parse_unverified_header(b)
    assert ha.wrapped_dek != hb.wrapped_dek
    assert a[_container.HEADER_SIZE :] != b[_container.HEADER_SIZE :]


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=2000), min_size=1, max_size=5),
    compress=st.booleans(),
    generation=st.integers(min_value=0, max_value=2**64 - 1),
)
def test_round_trip_any_frames(payloads: list[bytes], compress: bool, generation: int) -> None:
    key, vault, sid = bytes(range(32)), uuid4(), uuid4()
    frames = [(FrameType.EVENTS, _container.encode_payload(p, compress=compress)) for p in payloads]
    data = _container.seal(
        kind=Kind.SESSION,
        vault_id=vault,
        object_id=sid,
        generation=generation,
        kek=key,
        kek_epoch=0,
        frames=frames,
    )
    header = _container.parse_unverified_header(data)
    assert header.generation == generation
    _, opened = _container.open_frames(data, header, key)
    assert [_container.decode_payload(f.data) for f in opened] == payloads


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_raises_anything_but_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        _container.open_session(data, uuid4(), None, lambda _s: bytes(32))
