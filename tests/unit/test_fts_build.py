"""The fast index build (docs/design.md, "Build speed"): the same terms, postings and segment
bytes as the plain implementation kept in tests/unit/_fts_reference.py, for every input; the
build on worker processes gives what one process gives, in order, with bounded memory."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _format as F
from sessionseal._fts import _parallel

from . import _fts_reference as ref

VAULT = UUID("11111111-2222-3333-4444-555555555555")
FIELDS = (_fts.TITLE, _fts.USER, _fts.ASSISTANT, _fts.TOOL)
#: Pieces that exercise every rule: case, camel case, "_", ids with digits, NFKC, non-ASCII
#: letters and marks, separators, and runs at and past the 64-byte limit.
PIECES = (
    "Value",
    "Error",
    "HTTP",
    "Server",
    "get",
    "ById",
    "_",
    "__",
    "toolu",
    "01LmSLb2L8ZpZj",
    "utf8",
    "X",
    "y",
    "9",
    "123",
    "é",
    "É",
    "ß",
    "ﬁ",
    "\uff21",
    "中",
    "\u0301",
    "İ",
    "ǅ",
    " ",
    ".",
    "-",
    "/",
    ":",
    "\n",
    "\t",
    "—",
    "a" * 63,
    "b" * 64,
    "C" * 65,
    "d_" * 33,
    "é" * 32,
    "\ud800",
    "\x00",
)
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=40).map("".join), st.text(max_size=200))


@settings(max_examples=500, deadline=None)
@given(texts)
def test_the_terms_are_those_of_the_reference_tokenizer(text: str) -> None:
    assert _fts.count_terms(text) == ref.count_terms(text)
    runs, length = _fts.count_runs(text)
    assert ({k.decode(): n for k, n in runs.items()}, length) == ref.count_terms(text)


#: Texts of repeated lines (a file read twice, a test run's output): lines drawn from a few,
#: some differing only in punctuation, so that pack() tokenizes them line by line.
repeating = st.lists(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join).map(lambda s: s.replace("\n", " ")),
    min_size=1,
    max_size=4,
).flatmap(lambda pool: st.lists(st.sampled_from([*pool, *(p + "." for p in pool)]), max_size=30).map("\n".join))


@settings(max_examples=300, deadline=None)
@given(st.one_of(repeating, texts))
def test_distinct_lines_counted_once_give_the_reference_terms(text: str) -> None:
    counts, length = _fts.count_lines(text)
    assert ({k.decode(): n for k, n in counts.items()}, length) == ref.count_terms(text)


docs = st.lists(st.tuples(st.sampled_from(FIELDS), texts), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(docs, min_size=1, max_size=6))
def test_packed_postings_and_segments_equal_the_reference(fields: list[list[tuple[int, str]]]) -> None:
    sessions = [_fts.Doc(UUID(int=i + 1), i + 2, f) for i, f in enumerate(fields)]
    analyzed = []
    for doc in sessions:
        entry, terms = ref.analyze(doc)  # type: ignore[no-untyped-call]
        packed = _fts.pack(doc)
        assert packed.analyzed() == _fts.analyze(doc) == _fts.Analyzed(entry, terms)
        assert packed.size == sum(len(t) for _f, t in doc.fields)
        analyzed.append(_fts.Analyzed(entry, terms))
    keys = F.SubKeys.of(bytes(32))
    builder = _fts.SegmentBuilder()
    for doc in sessions:
        builder.add(_fts.pack(doc))
    assert builder.invert()._payloads(keys) == ref._bucket_payloads(ref._invert(analyzed), keys)
    dek = bytes(range(32))

    def nonces() -> Iterator[bytes]:
        return (i.to_bytes(12, "big") for i in itertools.count())

    sealed = builder.build(VAULT, UUID(int=9), bytes(32), dek=dek, nonces=nonces())
    assert sealed == _fts.build_segment(VAULT, UUID(int=9), bytes(32), analyzed, dek=dek, nonces=nonces())


def test_a_segment_still_refuses_a_session_twice_and_a_bad_term() -> None:
    doc = _fts.pack(_fts.Doc(UUID(int=1), 1, [(_fts.USER, "hello")]))
    builder = _fts.SegmentBuilder()
    builder.add(doc)
    with pytest.raises(ValueError, match="once"):
        builder.add(doc)
    bad = _fts.Analyzed(_fts.DocEntry(UUID(int=2), 1, (0, 1, 0, 0)), {"x" * 65: _fts.Posting(1, _fts.USER)})
    with pytest.raises(ValueError, match="64"):
        _fts.build_segment(VAULT, UUID(int=9), bytes(32), [bad])


def corpus(n: int) -> list[_fts.Doc]:
    words = ["ValueError", "refresh_token", "déjà", "vu", "HTTPServer", "src/app.py", "the", "Straße"]
    return [
        _fts.Doc(
            UUID(int=i + 1),
            1,
            [(FIELDS[(i + j) % 4], " ".join(words[(i * (j + 1)) % 8 :] * (i % 5 + 1))) for j in range(3)],
        )
        for i in range(n)
    ]


def test_worker_processes_give_what_one_process_gives_in_order() -> None:
    sessions = corpus(12)
    assert list(_fts.analyze_many(sessions, workers=2)) == list(map(_fts.pack, sessions))
    assert list(_fts.analyze_many(sessions, workers=0)) == list(map(_fts.pack, sessions))


def test_workers_take_at_most_in_flight_sessions_ahead_of_the_consumer() -> None:
    pulled = 0

    def source() -> Iterator[_fts.Doc]:
        nonlocal pulled
        for doc in corpus(20):
            pulled += 1
            yield doc

    it = _fts.analyze_many(source(), workers=2, in_flight=3)
    first = next(it)
    assert first.entry.session_id == UUID(int=1) and pulled == 3
    it.close()  # stops the pool
    assert pulled == 3


def test_segments_are_capped_by_text_and_report_progress(tmp_path: Path) -> None:
    sessions = corpus(30)
    sizes = [sum(len(t) for _f, t in d.fields) for d in sessions]
    seen: list[tuple[int, int]] = []
    builders = list(_fts.segments(sessions, workers=0, max_text=2_000, progress=lambda n, c: seen.append((n, c))))
    assert [len(b) for b in builders] and sum(len(b) for b in builders) == 30
    assert all(b.size <= 2_000 or len(b) == 1 for b in builders)
    assert seen == [(i + 1, sum(sizes[: i + 1])) for i in range(30)]
    # Sealed one by one, they answer what one segment of all the sessions answers.
    readers = []
    for i, b in enumerate(builders):
        key, sid = os.urandom(32), UUID(int=100 + i)
        path = tmp_path / f"{i}.seg"
        path.write_bytes(b.build(VAULT, sid, key))
        readers.append(_fts.SegmentReader(path, VAULT, sid, key))
    index = _fts.FtsIndex(readers, [])
    try:
        found = {h.session_id for h in index.search("httpserver AND refresh", limit=100)}
    finally:
        for r in readers:
            r.close()
    text = {d.session_id: " ".join(t for _f, t in d.fields) for d in sessions}
    want = {s for s, t in text.items() if "HTTPServer" in t and "refresh_token" in t}
    assert 0 < len(want) < 30
    assert found == want


def test_segments_built_on_workers_are_the_bytes_of_one_process() -> None:
    sessions = corpus(40)

    def sealed(workers: int) -> list[bytes]:
        dek = bytes(range(32))
        out = []
        for i, inv in enumerate(_fts.segments(sessions, workers=workers, max_text=3_000)):
            nonces = (n.to_bytes(12, "big") for n in itertools.count())
            out.append(inv.build(VAULT, UUID(int=100 + i), bytes(32), dek=dek, nonces=nonces))
        return out

    one = sealed(0)
    assert len(one) > 2 and sealed(2) == one


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join), st.integers(0, 40))
def test_a_long_text_counted_in_pieces_gives_the_reference_terms(piece: str, shift: int) -> None:
    # Past the 1 MiB piece size, with words across the cuts at every offset.
    text = "x" * shift + (piece + " HTTPServer_x déjà ") * (2_200_000 // (len(piece) + 19) + 1)
    assert _fts.count_terms(text) == ref.count_terms(text)


def _worker_state() -> tuple[int, str | None]:
    """In a build worker: PR_GET_DUMPABLE (3), and the passphrase variable if it inherited it."""
    import ctypes

    return int(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)), os.environ.get("SESSIONSEAL_PASSPHRASE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_build_worker_is_spawned_hardened_and_drops_the_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", "not-a-real-passphrase")
    with _parallel._pool(1) as pool:
        assert pool.apply(_worker_state) == (0, None)
