"""An index build overlapped on threads of one process (docs/design.md, "Build speed"):
:func:`_fts.overlapped` seals each segment on a thread while the next is gathered, and gives
the same segments, byte for byte, as the serial build (on the compiled and the pure path, in
two real processes), in order, with progress that never goes back, at most two segments in
memory, and an error of the seal raised to the caller."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from sessionseal import _fts
from sessionseal._fts import _tokens

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: Both builds of the same sessions, in one process: serial (``segments`` on no worker, each
#: segment sealed after it), and overlapped (packed on 2 threads, sealed on another); the same
#: segment keys, data keys and nonces. Prints whether the accelerator ran, then both outputs.
BUILD = """
import concurrent.futures, hashlib, sys
from uuid import UUID
from sessionseal import _fts
from sessionseal._fts import _tokens

def doc(i):
    tool = "Traceback: ValueError in src/app_%d.py line %d\\n" % (i % 7, i) * (3 + i % 5)
    return _fts.Doc(UUID(int=i + 1), 1 + i % 3, [(_fts.TITLE, "Fix the HTTPServer %d" % i),
        (_fts.USER, "why does refresh_token fail? déjà vu ﬁle Straße " * (1 + i % 4)),
        (_fts.ASSISTANT, "word%d shared " % i + "z" * (60 + i % 9)), (_fts.TOOL, tool)])

docs = [doc(i) for i in range(60)]

def sealer():
    n = iter(range(10**6))
    def seal(inverted):
        k = next(n)
        nonces = (j.to_bytes(12, "big") for j in range(k << 20, (k + 1) << 20))
        key = bytes([k]) * 32
        return inverted.build(UUID(int=7), UUID(int=100 + k), key, dek=key[::-1], nonces=nonces)
    return seal

seal = sealer()
serial = [seal(inv) for inv in _fts.segments(iter(docs), workers=0, max_text=2000)]
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    packed = pool.map(_fts.pack, docs)
    overlapped = list(_fts.overlapped(packed, sealer(), max_text=2000))
digest = lambda segs: hashlib.sha256(b"".join(segs)).hexdigest()
print(_tokens.NATIVE, len(serial), digest(serial), len(overlapped), digest(overlapped))
"""


def _build(pure: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSEAL_PURE_FTS"}
    env["PYTHONPATH"] = SRC
    if pure:
        env["SESSIONSEAL_PURE_FTS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", BUILD], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


@pytest.mark.parametrize("pure", [False, True])
def test_overlapped_segments_are_the_serial_segments_byte_for_byte(pure: bool) -> None:
    native, n_serial, serial, n_overlapped, overlapped = _build(pure)
    assert native == str(not pure and _tokens.NATIVE)
    assert int(n_serial) > 5  # several segments, as a large vault's
    assert (n_overlapped, overlapped) == (n_serial, serial)


def test_the_compiled_and_the_pure_path_overlap_into_the_same_bytes() -> None:
    if not _tokens.NATIVE:
        pytest.skip("the accelerator is not built here")
    assert _build(pure=False)[1:] == _build(pure=True)[1:]


def _docs(n: int, words: int = 60) -> list[_fts.Doc]:
    return [_fts.Doc(UUID(int=i + 1), 1, [(_fts.USER, f"w{i} shared " * words)]) for i in range(n)]


def test_segments_come_in_order_with_progress_that_never_goes_back() -> None:
    docs = _docs(30)
    seen: list[tuple[int, int]] = []
    got = list(
        _fts.overlapped(
            map(_fts.pack, docs),
            lambda inv: [e.session_id for e in inv.entries],
            max_text=2500,
            progress=lambda n, chars: seen.append((n, chars)),
        )
    )
    expected = [[e.session_id for e in inv.entries] for inv in _fts.segments(iter(docs), workers=0, max_text=2500)]
    assert got == expected and len(got) > 3
    assert [n for n, _ in seen] == list(range(1, 31))
    assert [c for _, c in seen] == sorted(c for _, c in seen)
    assert seen[-1][1] == sum(len(t) for d in docs for _f, t in d.fields)


def test_at_most_two_segments_are_in_memory() -> None:
    """A segment is gathered while the one before it is sealed, never further ahead: when
    segment k's seal ends, the sessions of segments k + 1 and k + 2 (one session each here) may
    have been taken, not more."""
    pulled = 0
    over: list[tuple[int, int]] = []
    gate = threading.Event()

    def packed() -> Iterator[_fts.PackedDoc]:
        nonlocal pulled
        for doc in _docs(12, words=200):  # each session fills a segment
            pulled += 1
            if pulled == 6:
                gate.set()  # lets seal 3 (and the others) end, then checks the bound
            yield _fts.pack(doc)

    def seal(inverted: _fts.Inverted) -> int:
        k = inverted.entries[0].session_id.int - 1
        if k == 3:
            assert gate.wait(60)  # a hang guard, not a speed figure
        if pulled > k + 3:
            over.append((k, pulled))
        return k

    assert list(_fts.overlapped(packed(), seal, max_text=1500)) == list(range(12))
    assert over == []


def test_an_error_of_the_seal_reaches_the_caller_and_no_other_segment_is_sealed() -> None:
    sealed: list[int] = []

    def seal(inverted: _fts.Inverted) -> int:
        k = inverted.entries[0].session_id.int - 1
        sealed.append(k)
        if k == 2:
            raise OSError("disk full")
        return k

    built = _fts.overlapped(map(_fts.pack, _docs(10, words=200)), seal, max_text=1500)
    with pytest.raises(OSError, match="disk full"):
        list(built)
    assert sealed in ([0, 1, 2], [0, 1, 2, 3])  # the one after it may have started meanwhile
    assert not [t for t in threading.enumerate() if t.name.startswith("fts-seal")]


def test_closing_the_build_early_stops_sealing_and_leaves_no_thread() -> None:
    sealed: list[int] = []

    def seal(inverted: _fts.Inverted) -> int:
        sealed.append(inverted.entries[0].session_id.int - 1)
        return sealed[-1]

    built = _fts.overlapped(map(_fts.pack, _docs(10, words=200)), seal, max_text=1500)
    assert next(built) == 0
    built.close()
    assert len(sealed) <= 2
    assert not [t for t in threading.enumerate() if t.name.startswith("fts-seal")]


def test_sessions_packed_on_threads_in_any_timing_give_the_serial_postings() -> None:
    """The reading threads finish in any order; the build takes them in the names' order."""
    docs = _docs(40)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        packed = list(pool.map(_fts.pack, docs))
    assert [p.analyzed() for p in packed] == [_fts.pack(d).analyzed() for d in docs]
