"""The key table's anchored state (issue 20; docs/spec/container-v1.md, "Key table state"):
frames round-trip, apply in counter order only, and marks only rise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal._state import (
    NO_CONFIG,
    AuditHead,
    StateChange,
    VaultState,
    decode_frame,
    encode_change,
    encode_full,
)
from sessionseal.errors import IntegrityError

A, B = b"\x01" * 16, b"\x02" * 16


def _state() -> VaultState:
    return VaultState(
        tracked=True,
        counter=7,
        marks={A: (3, 900), B: (1, 120)},
        tombs={b"\x09" * 16},
        config=(2, "ab" * 32),
        audit=AuditHead(12, "cd" * 32),
        audit_keys={2: b"\x05" * 32},
        index=4,
        head=(6, 1_700_000_000),
    )


def test_a_full_frame_round_trips() -> None:
    back = VaultState()
    decode_frame(back, encode_full(_state()))
    assert back == _state()


def test_a_delta_applies_only_as_the_next_counter() -> None:
    state = _state()
    change = StateChange(marks={A: (4, 100)}, unmarks={B}, audit=AuditHead(13, "ef" * 32))
    decode_frame(state, encode_change(8, change))
    assert state.counter == 8 and state.marks == {A: (4, 100)} and state.audit == AuditHead(13, "ef" * 32)
    for counter in (7, 9, 3):  # replayed, skipped ahead, older: a frame out of its place
        with pytest.raises(IntegrityError):
            decode_frame(_state(), encode_change(counter, change))


def test_marks_only_rise() -> None:
    state = _state()
    state.apply(StateChange(marks={A: (3, 899), B: (2, 10)}))
    assert state.marks == {A: (3, 900), B: (2, 10)}  # a lower mark (an out-of-order commit) is ignored


def test_a_change_folds_later_changes_in() -> None:
    first = StateChange(marks={A: (1, 10)}, tombs={B})
    first.update(StateChange(marks={A: (2, 5)}, untombs={B}, unmarks={A}))
    assert first.marks == {} and first.unmarks == {A} and first.tombs == set() and first.untombs == {B}


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b'{"t":"full","counter":1}', b'{"t":"delta","counter":8,"marks":{"zz":[1,2]}}', b'{"t":"x"}'],
)
def test_a_malformed_frame_is_an_integrity_error(payload: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_frame(_state(), payload)


def test_a_new_vault_tracks_its_state_and_saves_mark_their_sessions(tmp_path: Path) -> None:
    with Vault.init(tmp_path / "v", key_provider=PassphraseProvider("pw", log2_n=14)) as v:
        sid = v.save({"title": "t", "messages": [{"role": "user", "content": "hello"}]})
        v.append(sid, [{"role": "assistant", "content": "again"}])
        state = v.parts.keys.state(fresh=True)
        size = (tmp_path / "v" / "sessions" / f"{v.parts.keys.file_name(sid)}.sst").stat().st_size
    assert state.tracked and state.config == NO_CONFIG
    assert state.marks[sid.bytes] == (1, size)


VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "keytable-state-v1.json"


def _as_vector(state: VaultState) -> dict[str, object]:
    return {**json.loads(encode_full(state)), "t": None}


def test_the_vectors_decode_to_the_states_they_give_and_re_encode_byte_for_byte() -> None:
    doc = json.loads(VECTORS.read_text())
    state = VaultState()
    for frame in doc["frames"]:
        decode_frame(state, frame["payload"].encode())
        assert _as_vector(state) == frame["state_after"], frame["name"]
    full = doc["frames"][0]
    again = VaultState()
    decode_frame(again, full["payload"].encode())
    assert encode_full(again).decode() == full["payload"]  # canonical: one encoding per state


@pytest.mark.parametrize("case", json.loads(VECTORS.read_text())["refused_after_frames"], ids=lambda c: c["name"])
def test_the_vectors_refused_payloads_are_integrity_errors(case: dict[str, str]) -> None:
    state = VaultState()
    for frame in json.loads(VECTORS.read_text())["frames"]:
        decode_frame(state, frame["payload"].encode())
    with pytest.raises(IntegrityError):
        decode_frame(state, case["payload"].encode("latin-1"))
