"""Fuzzing the container and its payloads (issue 9): header, frames, session logs and tails,
checkpoints, payload decoding and zstd bombs.  The harness is in _fuzz.py."""

from __future__ import annotations

import struct
from uuid import UUID

import pytest
import zstandard
from hypothesis import strategies as st

from sessionseal import _compress, _container
from sessionseal._container import HEADER_SIZE, FrameType, Kind
from sessionseal.errors import IntegrityError
from tests.unit._fuzz import bounded_memory, documented, frame_offsets, fuzz, mutations

KEY = bytes(range(32))
VAULT = UUID("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")
SID = UUID("0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70")


def _payload(text: bytes, n: int) -> bytes:
    return _container.encode_payload(text, compress=n % 2 == 0)


def _session(tag: bytes, groups: int = 2) -> bytes:
    """A committed session log: META, BODY, then *groups* (EVENTS, META) appends."""
    frames = [
        (FrameType.META, _payload(b'{"title":"' + tag + b'","v":0}', 0)),
        (FrameType.BODY, _payload(b'{"messages":[' + b'{"role":"user","content":"hi"},' * 20 + b"{}]}", 1)),
    ]
    data = _container.seal(
        kind=Kind.SESSION, vault_id=VAULT, object_id=SID, generation=3, kek=KEY, kek_epoch=0, frames=frames
    )
    header = _container.parse_unverified_header(data)
    dek = _crypto_dek(data)
    for g in range(groups):
        events = _payload(b'{"ops":[{"op":"message","value":{"n":' + str(g).encode() + b"}}]}", g)
        meta = _payload(b'{"title":"' + tag + b'","v":' + str(g + 1).encode() + b"}", g + 1)
        data += _container.session_group(dek, header.raw, 2 + 2 * g, events, meta)
    return data


def _crypto_dek(data: bytes) -> bytes:
    header = _container.parse_unverified_header(data)
    return _container.open_frames(data[:HEADER_SIZE], header, KEY)[0]


SESSION = _session(b"original")
OTHER = _session(b"other", groups=3)  # same ids and key, another data key: frames to splice in
ORIGINAL = _container.open_session(SESSION, VAULT, SID, lambda _s: KEY)
FRAMES = [(f.type, f.data) for f in ORIGINAL.frames]
DEK = ORIGINAL.dek
CHECKPOINT = _container.seal(
    kind=Kind.CHECKPOINT,
    vault_id=VAULT,
    object_id=SID,
    generation=7,
    kek=KEY,
    kek_epoch=0,
    frames=[(FrameType.META, _payload(b'{"name":"cp"}', 1)), (FrameType.BODY, _payload(b'{"title":"t"}', 0))],
)
HOT = [*frame_offsets(SESSION), 8, 9, 10, 12, 28, 44, 52, 56]
DONORS = [OTHER, CHECKPOINT, SESSION[HEADER_SIZE:]]


def _key_for(sid: UUID) -> bytes:
    return KEY


@fuzz("container.header", mutations(SESSION[: HEADER_SIZE + 10], hot=[0, 8, 9, 10, 12, 28, 44, 52, 56]))
def test_header(data: bytes) -> None:
    header, _ = documented(_container.parse_unverified_header, data)
    if header is not None:
        assert header.raw == data[:HEADER_SIZE] and header.kind in Kind.ALL


@fuzz("container.open_session", mutations(SESSION, hot=HOT, donors=DONORS), memory=True)
def test_open_session(data: bytes) -> None:
    log, _ = documented(_container.open_session, data, VAULT, SID, _key_for)
    if log is not None:
        # Only a torn or uncommitted tail is forgiven: what is returned is a committed prefix.
        got = [(f.type, f.data) for f in log.frames]
        assert got == FRAMES[: len(got)] and len(got) >= 2 and len(got) % 2 == 0
        assert log.dek == DEK and log.end <= len(data) and data[: log.end] == SESSION[: log.end]


@fuzz("container.open_session_tail", mutations(SESSION, hot=HOT, donors=DONORS), memory=True)
def test_open_session_tail(data: bytes) -> None:
    reads: list[int] = []

    def read_at(offset: int, n: int) -> bytes:
        reads.append(n)
        return data[offset : offset + n]

    tail, _ = documented(_container.open_session_tail, read_at, len(data), VAULT, _key_for)
    assert sum(reads) <= 2 * len(data) + HEADER_SIZE  # a length field never makes it read more than is there
    if tail is not None:
        # Skipped frames are not authenticated here (a full read does that); the META returned is.
        assert tail.meta == FRAMES[tail.frames - 1 if tail.frames > 2 else 0][1]
        assert tail.dek == DEK and tail.header.raw == SESSION[:HEADER_SIZE]
        assert tail.body_end <= tail.end <= len(data)


@fuzz(
    "container.open_checkpoint",
    mutations(CHECKPOINT, hot=[*frame_offsets(CHECKPOINT), 9, 44, 52], donors=[SESSION]),
    st.booleans(),
    memory=True,
)
def test_open_checkpoint(data: bytes, meta_only: bool) -> None:
    got, _ = documented(_container.open_checkpoint, data, VAULT, SID, 7, KEY, meta_only=meta_only)
    if got is not None:
        assert got == (_payload(b'{"name":"cp"}', 1), None if meta_only else _payload(b'{"title":"t"}', 0))


_INDEX_LIKE = _container.seal(
    kind=Kind.INDEX,
    vault_id=VAULT,
    object_id=UUID(int=0),
    generation=1,
    kek=KEY,
    kek_epoch=1,
    frames=[(FrameType.INDEX_SNAPSHOT, b"\x00snap")] + [(FrameType.INDEX_DELTA, b"\x00d%d" % i) for i in range(4)],
)


@fuzz(
    "container.open_frames",
    mutations(_INDEX_LIKE, hot=frame_offsets(_INDEX_LIKE), donors=[SESSION]),
    st.booleans(),
    memory=True,
)
def test_open_frames(data: bytes, torn_tail_ok: bool) -> None:
    header, _ = documented(_container.parse_unverified_header, data)
    if header is None:
        return
    got, _ = documented(_container.open_frames, data, header, KEY, torn_tail_ok=torn_tail_ok)
    if got is not None:
        # The number of frames is not authenticated (a reader of deltas accepts any): a file cut
        # at a frame boundary reads as its first frames, never as other ones.  (The donor is
        # sealed under the same key: its header, spliced in whole, opens its own frames.)
        original = next(c for c in (_INDEX_LIKE, SESSION) if c[:HEADER_SIZE] == header.raw)
        frames = [(f.type, f.data) for f in got[1]]
        want = [(f.type, f.data) for f in _container.open_frames(original, header, KEY)[1]]
        assert frames == want[: len(frames)]
        if not torn_tail_ok:
            assert data == original[: len(data)]


# -- payloads and zstd ----------------------------------------------------------------------

_TEXTS = [b"", b"x", b'{"a":1}' * 50, bytes(range(256)) * 8]
_PAYLOADS = [_container.encode_payload(t, compress=c) for t in _TEXTS for c in (True, False)]


def _frame_header(claim: int | None, *, single: bool, checksum: bool, window: int) -> bytes:
    """A zstd frame header (RFC 8878, 3.1.1.1) declaring *claim* bytes (None: unknown)."""
    if claim is None:
        flag, fcs = 0, b""
        single = False
    elif claim < 256 and single:
        flag, fcs = 0, bytes([claim])
    elif 256 <= claim < 65536 + 256:
        flag, fcs = 1, struct.pack("<H", claim - 256)
    elif claim < 1 << 32:
        flag, fcs = 2, struct.pack("<I", claim)
    else:
        flag, fcs = 3, struct.pack("<Q", claim)
    fhd = flag << 6 | int(single) << 5 | int(checksum) << 2
    return b"\x28\xb5\x2f\xfd" + bytes([fhd]) + (b"" if single else bytes([window])) + fcs


def _block(kind: int, size: int, last: bool, content: bytes) -> bytes:
    return struct.pack("<I", size << 3 | kind << 1 | int(last))[:3] + content


@st.composite
def _crafted_frames(draw: st.DrawFn) -> bytes:
    """zstd frames built by hand: any declared size, RLE blocks of up to 128 KiB (bombs),
    raw, compressed and reserved blocks with random content."""
    claim = draw(
        st.none()
        | st.sampled_from([0, 1, 255, 256, 1 << 20, 1 << 26, 1 << 30, (1 << 30) + 1, 2**63, 2**64 - 1])
        | st.integers(0, 2**64 - 1)
    )
    parts = [
        _frame_header(claim, single=draw(st.booleans()), checksum=draw(st.booleans()), window=draw(st.integers(0, 255)))
    ]
    blocks = draw(st.integers(0, 300))
    rle = draw(st.booleans())
    for i in range(blocks):
        last = i == blocks - 1
        if rle:
            parts.append(_block(1, draw(st.sampled_from([1, 1 << 17, (1 << 17) + 1, (1 << 21) - 1])), last, b"\0"))
        else:
            kind = draw(st.integers(0, 3))
            content = draw(st.binary(max_size=12))
            parts.append(_block(kind, draw(st.integers(0, 40)) if draw(st.booleans()) else len(content), last, content))
    return b"".join(parts)


def _check_decode(payload: bytes) -> None:
    with bounded_memory() as budget:
        out, err = documented(_container.decode_payload, payload)
        # What a frame really holds is returned (and may be joined from steps): it counts twice.
        budget["output"] = 2 * len(out or b"")
    if err is not None:
        assert isinstance(err, IntegrityError)
    else:
        assert len(out) <= _compress.MAX_PLAINTEXT


@fuzz(
    "compress.decompress",
    st.one_of(
        st.sampled_from(_PAYLOADS).flatmap(lambda p: mutations(p, hot=[0, 1, 5, 6, 7], random=200)),
        _crafted_frames().map(lambda f: b"\x01" + f),
    ),
)
def test_decode_payload(payload: bytes) -> None:
    _check_decode(payload)


@pytest.mark.parametrize("claim", [None, 0, 1 << 20, (1 << 30) + 1, 2**64 - 1])
def test_an_rle_bomb_is_refused_without_allocating(claim: int | None) -> None:
    # 8193 RLE blocks of 128 KiB: 32 KB that would expand to 1 GiB + 128 KiB.
    blocks = b"".join(_block(1, 1 << 17, i == 8192, b"\0") for i in range(8193))
    frame = _frame_header(claim, single=claim is not None, checksum=False, window=0x58) + blocks
    with bounded_memory(8 << 20):
        if claim == 0:
            # python-zstandard returns b"" for a frame declaring 0 bytes, without decoding it.
            assert _compress.decompress(b"\x01" + frame) == b""
            return
        with pytest.raises(IntegrityError):
            _compress.decompress(b"\x01" + frame)


def test_a_frame_declaring_more_than_it_can_hold_is_refused_before_allocating() -> None:
    # 23 bytes declaring 1 GiB (allowed by MAX_PLAINTEXT): it allocated 1 GiB, then failed
    # (MemoryError under a memory limit).
    frame = _frame_header(1 << 30, single=True, checksum=False, window=0) + _block(0, 10, True, b"x" * 10)
    with bounded_memory(1 << 20), pytest.raises(IntegrityError):
        _compress.decompress(b"\x01" + frame)


def test_the_largest_honest_expansion_still_decompresses() -> None:
    data = bytes(32 << 20)
    payload = _compress.compress(data)
    assert len(payload) * (1 << 15) > len(data)  # the bound is not approached by a real frame
    assert _compress.decompress(payload) == data


@fuzz(
    "compress.decompress_stream",
    st.one_of(
        st.sampled_from([zstandard.ZstdCompressor().compress(t * 20) for t in _TEXTS]).flatmap(
            lambda p: mutations(p, hot=[4, 5, 6], random=200)
        ),
        _crafted_frames(),
    ),
    st.sampled_from([0, 100, 1 << 20]),
    memory=True,
)
def test_decompress_stream_and_head(data: bytes, limit: int) -> None:
    import io

    out, _ = documented(_compress.decompress_stream, io.BytesIO(data), limit)
    if out is not None:
        assert len(out) <= limit
    head, _ = documented(_compress.decompress_head, io.BytesIO(data), 4096)
    if head is not None:
        assert len(head) <= 4096
