"""docs/spec/remote-v1.md's change log, heads and content objects (``vectors/remote-v1.json``):
decoded by the spec alone (``cryptography`` and the standard library, not the package); and
the package's reader refuses a log that was cut, edited, reordered, replayed or rolled back
(docs/design.md, "Detecting a log cut, edited, reordered or rolled back")."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from sessionseal import _remotekeys as rk
from sessionseal import _remotelog as rl
from sessionseal.errors import IntegrityError, RemoteError
from tests.unit.test_remote_keys_spec import VECTORS

REMOTE = uuid.UUID(VECTORS["remote"])
EPOCH: int = VECTORS["epoch"]
KEY = bytes.fromhex(VECTORS["epoch_key"])
KEYS = {EPOCH: KEY}
DEV = {d["name"]: d for d in VECTORS["devices"]}
ALPHA, BETA = uuid.UUID(DEV["alpha"]["device"]), uuid.UUID(DEV["beta"]["device"])
LOG: list[dict[str, Any]] = VECTORS["logs"]["alpha"]
E = [bytes.fromhex(e["hex"]) for e in LOG]
M = [bytes.fromhex(e["mac"]) for e in LOG]


def _hkdf(device: uuid.UUID, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=REMOTE.bytes + device.bytes, info=info).derive(KEY)


# -- by the spec alone ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_a_log_by_the_spec_alone(name: str) -> None:
    device = uuid.UUID(DEV[name]["device"])
    log_key, mac_key = _hkdf(device, b"sessionseal remote v1 log"), _hkdf(device, b"sessionseal remote v1 log mac")
    prev = bytes(32)
    for entry in VECTORS["logs"][name]:
        data = bytes.fromhex(entry["hex"])
        magic, version, r, d, epoch, seq, got_prev, nonce = struct.unpack_from(">4sB16s16sIQ32s12s", data)
        assert (magic, version, r, d, epoch, seq, got_prev) == (
            b"SSRL",
            1,
            REMOTE.bytes,
            device.bytes,
            EPOCH,
            entry["seq"],
            prev,
        )
        plain = AESGCM(log_key).decrypt(nonce, data[93:], data[:93])
        assert plain == json.dumps(entry["entry"], sort_keys=True, separators=(",", ":")).encode()
        prev = hmac.new(mac_key, data, hashlib.sha256).digest()
        assert prev.hex() == entry["mac"]


def test_the_head_by_the_spec_alone() -> None:
    data = bytes.fromhex(VECTORS["head"]["hex"])
    body, signature = data[:-64], data[-64:]
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(DEV["alpha"]["ed25519_public"])).verify(signature, body)
    magic, version, r, d, epoch, seq, mac, hlc, n = struct.unpack_from(">4sB16s16sIQ32sQH", body)
    assert (magic, version, r, d, epoch, seq, mac, hlc, n) == (
        b"SSRH",
        1,
        REMOTE.bytes,
        ALPHA.bytes,
        EPOCH,
        3,
        M[2],
        VECTORS["head"]["hlc"],
        1,
    )
    w, wseq, wmac = struct.unpack_from(">16sQ32s", body, 91)
    assert (w, wseq, wmac.hex()) == (BETA.bytes, 1, VECTORS["logs"]["beta"][0]["mac"])
    assert len(body) == 91 + 56


def test_the_object_by_the_spec_alone() -> None:
    obj = VECTORS["object"]
    data = bytes.fromhex(obj["hex"])
    assert hashlib.sha256(data).hexdigest() == obj["name"]
    magic, version, r, d, epoch, _, nonce = struct.unpack_from(">4sB16s16sI16s12s", data)
    assert (magic, version, r, d, epoch) == (b"SSRO", 1, REMOTE.bytes, ALPHA.bytes, EPOCH)
    frame = AESGCM(_hkdf(ALPHA, b"sessionseal remote v1 object")).decrypt(nonce, data[69:], data[:69])
    assert frame.hex() == obj["frame"]


# -- the package's reader ------------------------------------------------------------------------


def _read(objects: dict[int, bytes], **kw: Any) -> rl.LogRead:
    return rl.read_log(objects, KEYS, REMOTE, ALPHA, **kw)


def test_the_whole_log_reads_and_resumes_after_what_was_applied() -> None:
    whole = _read({1: E[0], 2: E[1], 3: E[2]})
    assert [o.entry for o in whole.entries] == [e["entry"] for e in LOG]
    assert whole.end == (3, M[2]) and not whole.pending
    rest = _read({1: E[0], 2: E[1], 3: E[2]}, start=(1, M[0]), floor=(1, M[0]))
    assert [o.seq for o in rest.entries] == [2, 3]
    assert _read({1: E[0], 2: E[1], 3: E[2]}, start=(3, M[2]), floor=(3, M[2])).entries == ()


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 1
    return bytes(out)


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ({1: E[0], 3: E[2]}, "gap"),
        ({2: E[1], 3: E[2]}, "gap"),
        ({1: _flip(E[0], 200), 2: E[1], 3: E[2]}, "fails authentication"),
        ({1: E[0], 2: _flip(E[1], 25), 3: E[2]}, "fails authentication"),  # its device id
        ({1: E[1], 2: E[0], 3: E[2]}, "fails authentication"),  # reordered
        ({1: E[0], 2: E[0], 3: E[2]}, "fails authentication"),  # replayed
    ],
    ids=["gap", "first-missing", "edited", "misplaced", "reordered", "replayed"],
)
def test_a_damaged_log_is_refused(objects: dict[int, bytes], says: str) -> None:
    with pytest.raises(RemoteError, match=says):
        _read(objects)


def test_a_log_that_does_not_follow_what_was_applied_is_refused() -> None:
    with pytest.raises(RemoteError, match="does not follow"):
        _read({1: E[0], 2: E[1], 3: E[2]}, start=(1, M[1]))


def test_a_failing_last_entry_is_not_written_yet_unless_it_was_seen() -> None:
    partial = {1: E[0], 2: E[1], 3: E[2][:120]}  # a PUT cut short on a backend without atomic uploads
    got = _read(partial)
    assert got.pending and got.end == (2, M[1]) and [o.seq for o in got.entries] == [1, 2]
    with pytest.raises(RemoteError, match="cut or rolled back"):
        _read(partial, floor=(3, M[2]))


def test_a_cut_or_rolled_back_log_is_refused_against_the_floor() -> None:
    with pytest.raises(RemoteError, match="cut or rolled back"):
        _read({1: E[0], 2: E[1]}, floor=(3, M[2]))
    with pytest.raises(RemoteError, match="cut or rolled back"):
        _read({}, floor=(1, M[0]))
    # Rolled back to 2 and then written anew: another entry 3, chained and sealed as it should be.
    other, _ = rl.seal_entry(KEY, REMOTE, ALPHA, epoch=EPOCH, seq=3, prev=M[1], entry={"kind": "tombstone", "hlc": "1"})
    assert _read({1: E[0], 2: E[1], 3: other}).end[0] == 3  # alone, it is a log
    with pytest.raises(RemoteError, match="another entry 3"):
        _read({1: E[0], 2: E[1], 3: other}, floor=(3, M[2]))


def test_an_unknown_or_older_epoch_is_refused() -> None:
    with pytest.raises(RemoteError, match="epoch 3"):
        rl.read_log({1: E[0]}, {2: KEY}, REMOTE, ALPHA)
    newer, mac = rl.seal_entry(
        KEY, REMOTE, ALPHA, epoch=EPOCH + 1, seq=1, prev=rl.ZERO_MAC, entry={"kind": "epoch", "hlc": "1"}
    )
    older, _ = rl.seal_entry(KEY, REMOTE, ALPHA, epoch=EPOCH, seq=2, prev=mac, entry={"kind": "x", "hlc": "2"})
    keys = {EPOCH: KEY, EPOCH + 1: KEY}
    with pytest.raises(RemoteError, match="older epoch"):
        rl.read_log({1: newer, 2: older, 3: older}, keys, REMOTE, ALPHA)


def test_a_head_opens_only_with_its_devices_key_and_its_witness_is_a_floor() -> None:
    data = bytes.fromhex(VECTORS["head"]["hex"])
    alpha_public = bytes.fromhex(DEV["alpha"]["ed25519_public"])
    head = rl.open_head(data, alpha_public, REMOTE, ALPHA)
    assert (head.seq, head.mac, head.epoch) == (3, M[2], EPOCH)
    refused: list[tuple[bytes, bytes, uuid.UUID]] = [
        (data, bytes.fromhex(DEV["beta"]["ed25519_public"]), ALPHA),  # another device's key
        (_flip(data, 60), alpha_public, ALPHA),  # modified
        (data, alpha_public, BETA),  # put in another device's prefix
        (data[:100], alpha_public, ALPHA),  # cut
    ]
    for head_data, public, device in refused:
        with pytest.raises(RemoteError, match="not one it signed"):
            rl.open_head(head_data, public, REMOTE, device)
    # Beta's prefix rolled back to nothing: alpha's head witnessed beta's entry 1.
    with pytest.raises(RemoteError, match="cut or rolled back"):
        rl.read_log({}, KEYS, REMOTE, BETA, floor=head.witness[BETA])
    beta_one = bytes.fromhex(VECTORS["logs"]["beta"][0]["hex"])
    assert rl.read_log({1: beta_one}, KEYS, REMOTE, BETA, floor=head.witness[BETA]).end == head.witness[BETA]


def test_a_head_signed_afresh_reproduces_the_vector() -> None:
    keys = rk.DeviceKeys(bytes.fromhex(DEV["alpha"]["x25519_private"]), bytes.fromhex(DEV["alpha"]["ed25519_private"]))
    again = rl.sign_head(
        keys,
        REMOTE,
        ALPHA,
        epoch=EPOCH,
        seq=3,
        mac=M[2],
        hlc=VECTORS["head"]["hlc"],
        witness={BETA: (1, bytes.fromhex(VECTORS["logs"]["beta"][0]["mac"]))},
    )
    assert again.hex() == VECTORS["head"]["hex"]  # Ed25519 signatures are deterministic


def test_an_object_opens_only_under_its_name_device_and_remote() -> None:
    obj = VECTORS["object"]
    data = bytes.fromhex(obj["hex"])
    assert rl.open_object(obj["name"], data, KEYS, REMOTE, ALPHA).hex() == obj["frame"]
    with pytest.raises(IntegrityError):
        rl.open_object(obj["name"], _flip(data, 100), KEYS, REMOTE, ALPHA)
    with pytest.raises(IntegrityError):
        rl.open_object("00" * 32, data, KEYS, REMOTE, ALPHA)
    with pytest.raises(IntegrityError):
        rl.open_object(obj["name"], data, KEYS, REMOTE, BETA)
    with pytest.raises(RemoteError, match="epoch"):
        rl.open_object(obj["name"], data, {}, REMOTE, ALPHA)
    name, fresh = rl.seal_object(KEY, REMOTE, ALPHA, EPOCH, b"frame")
    assert name == hashlib.sha256(fresh).hexdigest() and rl.open_object(name, fresh, KEYS, REMOTE, ALPHA) == b"frame"


@given(last=st.integers(0, 2**63), seen=st.integers(0, 2**63), now=st.integers(0, 2**46))
def test_the_hybrid_clock_only_moves_forward_past_all_it_saw(last: int, seen: int, now: int) -> None:
    nxt = rl.hlc_next(last, now, seen)
    assert nxt > last and nxt > seen
    if now << 16 > max(last, seen):
        assert nxt == now << 16  # the wall clock, when it is ahead
    else:
        assert nxt == max(last, seen) + 1
