"""The full-text manifest's bytes, format 2 (issue 23; docs/spec/fts-v1.md, "Manifest"):
fixed-width binary columns that a fresh process decodes on demand, instead of JSON that it
parsed whole (every session's id and stamp) before answering a query or appending a turn.
A format-1 (JSON) manifest still reads and is written as format 2 at the next commit; a
manifest of another format is no index (``fts-format``) until ``reindex``; a damaged payload
never reads as an empty or smaller index."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import PassphraseProvider, Vault, _container
from sessionseal._container import FrameType, Kind
from sessionseal._vault import _fulltext
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, Manifest
from sessionseal._vault._ftstable import StampTable, pack_manifest, unpack_manifest
from sessionseal.errors import IntegrityError

PASSPHRASE = "fts manifest"
ZERO = uuid.UUID(int=0)


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vault]:
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 3)  # the third record compacts: a segment
    with Vault.init(tmp_path / "v", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        yield v


def _s(word: str) -> dict[str, Any]:
    return {"title": "t", "messages": [{"role": "user", "content": word}]}


def _payload(v: Vault) -> bytes:
    """The manifest's decrypted payload (its BODY frame, decoded)."""
    raw = (v.parts.ctx.path / FTS_DIR / MANIFEST).read_bytes()
    header = _container.parse_unverified_header(raw)
    _dek, frames = _container.open_frames(raw, header, v.parts.keys.kek(header.kek_epoch))
    return _container.decode_payload(frames[0].data)


def _seal(v: Vault, payload: bytes) -> None:
    """Replace the manifest by one holding *payload*, sealed as the vault seals it."""
    path = v.parts.ctx.path / FTS_DIR / MANIFEST
    header = _container.parse_unverified_header(path.read_bytes())
    path.write_bytes(
        _container.seal(
            kind=Kind.FTS_MANIFEST,
            vault_id=v.parts.ctx.vault_id,
            object_id=ZERO,
            generation=header.generation + 1,
            kek=v.parts.keys.kek(header.kek_epoch),
            kek_epoch=header.kek_epoch,
            frames=[(FrameType.BODY, _container.encode_payload(payload, compress=True))],
        )
    )


def _format_1(man: Manifest) -> bytes:
    """The JSON of format 1, as docs/spec/fts-v1.md gave it (the writer before format 2)."""
    return orjson.dumps(
        {
            "v": 1,
            "segments": [
                {
                    "id": s.id.hex,
                    "key": s.key.hex(),
                    "sessions": [x.hex for x in s.sessions],
                    "words": s.words,
                    "size": s.size,
                }
                for s in man.segments
            ],
            "delta": {"id": man.delta_id.hex, "key": man.delta_key.hex()},
            "stamps": {sid.hex: list(v) for sid, v in man.stamps.items()},
            "retired": {n: t.hex() for n, t in man.retired.items()},
            "retire_after": man.retire_after,
        }
    )


def _hits(v: Vault, word: str) -> set[uuid.UUID] | None:
    v.parts.fulltext._cached = None  # as a fresh process: the manifest read again
    with v.parts.fulltext.view() as view:
        return None if view is None else {h.session_id for h in view.index.search(word)}


def _codes(v: Vault) -> dict[str, str]:
    return {p.code: p.severity for p in v.verify(read_data=True).problems if p.code.startswith("fts-")}


def test_the_manifest_is_binary_columns_decoded_on_demand(vault: Vault) -> None:
    sids = [vault.save(_s(f"word{i}")) for i in range(3)]  # compacted into a segment
    payload = _payload(vault)
    assert payload[0] == 2  # format 2 (format 1 was JSON: '{')
    man = Manifest.decode(payload)
    assert isinstance(man.stamps, StampTable)
    (seg,) = man.segments
    assert seg._sessions is None  # a query's view opens the segment by its id and key only
    assert man.stamps.get(sids[1]) is not None and seg._sessions is None
    assert sorted(seg.sessions) == sorted(sids) == sorted(man.stamps)
    assert _hits(vault, "word1") == {sids[1]}


def test_a_format_1_manifest_still_reads_and_the_next_commit_writes_format_2(vault: Vault) -> None:
    sids = [vault.save(_s(f"word{i}")) for i in range(3)]
    _seal(vault, _format_1(Manifest.decode(_payload(vault))))
    assert _payload(vault)[:1] == b"{"
    assert _hits(vault, "word2") == {sids[2]}  # read as it is
    assert _codes(vault) == {}
    more = [vault.save(_s(f"more{i}")) for i in range(3)]  # the next compaction commits
    assert _payload(vault)[0] == 2
    assert _hits(vault, "word2") == {sids[2]} and _hits(vault, "more0") == {more[0]}
    assert _codes(vault) == {}


def test_a_manifest_of_another_format_is_no_index_until_reindex(vault: Vault) -> None:
    sid = vault.save(_s("kumquat"))
    _seal(vault, b"\x03" + _payload(vault)[1:])  # a later version's
    assert _hits(vault, "kumquat") is None  # no index: search streams
    assert _codes(vault) == {"fts-format": "warning"}
    vault.save(_s("other"))  # a writer leaves it alone
    assert _payload(vault)[0] == 3
    assert vault.reindex() == 2
    assert _hits(vault, "kumquat") == {sid}
    assert _codes(vault) == {}


def test_a_damaged_payload_is_no_index_and_a_verify_error(vault: Vault) -> None:
    [vault.save(_s(f"word{i}")) for i in range(3)]
    _seal(vault, _payload(vault)[:-16])  # authentic (sealed anew) but a stamp short
    assert _hits(vault, "word0") is None
    assert _codes(vault) == {"fts-damaged": "error"}


def _parts(draw: st.DrawFn) -> tuple[Any, ...]:
    ids = st.uuids()
    segments = draw(
        st.lists(
            st.tuples(
                ids,
                st.binary(min_size=32, max_size=32),
                st.integers(0, 2**64 - 1),
                st.integers(0, 2**64 - 1),
                st.lists(ids, max_size=5),
            ),
            max_size=4,
        )
    )
    stamps = draw(st.dictionaries(ids, st.tuples(*[st.integers(0, 2**64 - 1)] * 4), max_size=8))
    names = st.builds(lambda u, suffix: u.hex + suffix, ids, st.sampled_from([".seg", ".delta"]))
    retired = draw(st.dictionaries(names, st.binary(min_size=16, max_size=16), max_size=3))
    return (
        draw(ids),
        draw(st.binary(min_size=32, max_size=32)),
        draw(st.integers(0, 2**64 - 1)),
        retired,
        segments,
        stamps,
    )


@settings(max_examples=60, deadline=None)
@given(st.composite(_parts)())
def test_format_2_round_trips_and_any_cut_or_extra_byte_fails(parts: tuple[Any, ...]) -> None:
    delta_id, delta_key, retire_after, retired, segments, stamps = parts
    segs = [(i, k, w, sz, b"".join(u.bytes for u in sessions)) for i, k, w, sz, sessions in segments]
    raw = pack_manifest(delta_id, delta_key, retire_after=retire_after, retired=retired, segments=segs, stamps=stamps)
    man = Manifest.decode(raw)
    assert (man.delta_id, man.delta_key, man.retire_after, man.retired) == (delta_id, delta_key, retire_after, retired)
    assert [(s.id, s.key, s.words, s.size, s.sessions) for s in man.segments] == [
        (i, k, w, sz, list(sessions)) for i, k, w, sz, sessions in segments
    ]
    assert dict(man.stamps.items()) == stamps
    assert all(man.stamps[sid] == v for sid, v in stamps.items())
    assert unpack_manifest(Manifest.decode(raw).encode())[4] == segs  # re-encoded unchanged
    for cut in range(1, len(raw)):
        with pytest.raises(IntegrityError):
            Manifest.decode(raw[:cut])
    with pytest.raises(IntegrityError):
        Manifest.decode(raw + b"\x00")


def test_a_lookup_is_by_whole_ids_only() -> None:
    """An id's 16 bytes found across two ids of the column are not a hit."""
    a, b = uuid.UUID(bytes=bytes(range(16))), uuid.UUID(bytes=bytes(range(16, 32)))
    table = StampTable.of({a: (1, 2, 3, 4), b: (5, 6, 7, 8)})
    straddle = uuid.UUID(bytes=bytes(range(8, 24)))
    assert straddle not in table and table.get(straddle) is None
    assert table[b] == (5, 6, 7, 8) and len(table) == 2
