"""What a save gives the full-text index, and how it tokenizes (docs/design.md, "The cost of the
index"): a save is tokenized from the sanitized document it stored (not its bytes parsed
again), each distinct line once; the postings are exactly those of the stored document, and a
failure to tokenize never fails the save."""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
import pytest

from sessionseal import Vault
from sessionseal._fts import Doc, analyze, doc_fields
from sessionseal._index import stamp_of
from sessionseal._vault._fulltext import FtsView

#: A pytest run's output, read again and again by the agent: the same lines many times.
_OUTPUT = "\n".join(f"tests/test_parser.py::test_ValueError_{i % 40}_héllo PASSED [{i % 100:3d}%]" for i in range(400))
_SECRET = "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"


def _large_session() -> dict[str, Any]:
    """Over 1 MiB of JSON: tool output repeated, prose, a tool call, a secret."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": f"Run the parser tests; the token is {_SECRET}"},
    ]
    i = 0
    while sum(len(orjson.dumps(m)) for m in messages) < 1 << 20:
        messages += [
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "text": f"Turn {i}: the HTTPServer keeps refresh_token déjà—vu."},
                    {"type": "tool_call", "id": f"c{i}", "name": "Bash", "arguments": {"command": ["pytest", "-q"]}},
                ],
            },
            {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": f"c{i}", "content": _OUTPUT}]},
        ]
        i += 1
    return {"title": "Parser tests", "messages": messages}


def _indexed(view: FtsView, sid: uuid.UUID, terms: set[str]) -> tuple[Any, dict[str, tuple[int, int]]]:
    out = {}
    for t in terms:
        p = view.index._term(t).get(sid)
        if p is not None:
            out[t] = (p.tf, p.mask)
    return view.index.docs[sid].lengths, out


def _current(vault: Vault, view: FtsView, sid: uuid.UUID) -> bool:
    sessions = vault.parts.ctx.sessions
    st = os.stat(vault.parts.keys.file_name(sid) + ".sst", dir_fd=sessions.fd, follow_symlinks=False)
    return view.stamps.get(sid) == stamp_of(st)


def test_a_large_save_is_indexed_exactly_as_stored(vault: Vault) -> None:
    sid = vault.save(_large_session())
    stored = orjson.loads(vault.load_json(sid))
    assert _SECRET not in orjson.dumps(stored).decode()
    ref = analyze(Doc(sid, 1, doc_fields(stored)))
    with vault.parts.fulltext.view() as view:
        assert view is not None and _current(vault, view, sid)
        lengths, postings = _indexed(
            view, sid, set(ref.terms) | {_SECRET.lower(), "zb0zdxrzrqpta3vynmf143ht3wszhx38g0mt"}
        )
    assert lengths == ref.entry.lengths
    assert postings == {t: (p.tf, p.mask) for t, p in ref.terms.items()}  # nothing more: not the secret


def test_a_large_save_tokenizes_each_distinct_line_once(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._fts._tokens import count_translated as real

    given: list[int] = []

    def counting(raw: bytes) -> tuple[dict[bytes, int], int]:
        given.append(len(raw))
        return real(raw)

    monkeypatch.setattr("sessionseal._fts._analyze.count_translated", counting)
    # The pure path's line by line tokenizing (the compiled one counts the whole text at C speed)
    monkeypatch.setattr("sessionseal._fts._analyze.NATIVE", False)
    session = _large_session()
    vault.save(session)
    text = sum(len(t.encode()) + 1 for _, t in doc_fields(session))
    assert sum(given) < text / 4  # the output's 400 lines (40 distinct) once, not once per read


def test_a_failed_tokenizing_leaves_the_session_behind_not_the_save_failed(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise MemoryError

    vault.save({"title": "first", "messages": [{"role": "user", "content": "kumquat"}]})  # an index
    monkeypatch.setattr("sessionseal._fts.pack", broken)
    monkeypatch.setattr("sessionseal._vault._ftsfiles.pack", broken)
    sid = vault.save(_large_session())  # succeeds all the same
    monkeypatch.undo()
    assert vault.load(sid).title == "Parser tests"
    with vault.parts.fulltext.view() as view:
        assert view is not None and not _current(vault, view, sid)  # behind
    hits = vault.search("ValueError")
    assert [h.id for h in hits] == [str(sid)] and hits.stale == 1  # search reads it
