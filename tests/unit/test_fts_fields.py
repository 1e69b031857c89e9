"""What of a stored session is indexed (docs/spec/fts-v1.md, "What is indexed"), and the
property that makes an append O(turn): a save plus appends index what the whole does."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _events
from sessionseal._fts import ASSISTANT, TITLE, TOOL, USER, Analyzed, Doc, analyze, doc_fields, ops_fields
from sessionseal._fts import replaces_text as replaces

SID = uuid.UUID(int=7)

_WORDS = st.sampled_from(["alpha", "Beta", "refresh_token", "ValueError", "déjà", "x", "42", "naïve", "HTTPServer"])
_TEXT = st.lists(_WORDS, max_size=6).map(" ".join)
_ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "critic"])


def _block() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        _TEXT.map(lambda t: {"type": "text", "text": t}),
        _TEXT.map(lambda t: {"type": "thinking", "text": t}),
        st.tuples(_TEXT, _TEXT).map(
            lambda a: {"type": "tool_call", "id": "c1", "name": a[0], "arguments": {"q": a[1], "n": [a[0], 3]}}
        ),
        _TEXT.map(lambda t: {"type": "tool_result", "tool_call_id": "c1", "content": t}),
        _TEXT.map(
            lambda t: {
                "type": "tool_result",
                "content": [{"type": "text", "text": t}, {"type": "image", "data": "QUJD"}],
            }
        ),
        _TEXT.map(lambda t: {"type": "image", "data": t}),
    )


_MESSAGE = st.fixed_dictionaries({"role": _ROLES, "content": st.lists(_block(), max_size=3)})
_OP = st.one_of(
    _MESSAGE.map(lambda m: {"op": "message", "value": m}),
    st.lists(_block(), max_size=2).map(lambda c: {"op": "extend", "value": {"content": c}}),
    st.just({"op": "records", "value": {"records": [{"text": "a record is not indexed"}]}}),
    st.just({"op": "set", "value": {"status": "completed", "workspace": "/w"}}),
    st.just({"op": "tool_use", "value": {"tool": "Bash", "call_id": "c1"}}),
)


def _postings(a: Analyzed) -> tuple[tuple[int, int, int, int], dict[str, tuple[int, int]]]:
    return a.entry.lengths, {t: (p.tf, p.mask) for t, p in a.terms.items()}


def _sum(parts: list[Analyzed]) -> tuple[tuple[int, ...], dict[str, tuple[int, int]]]:
    lengths = [0, 0, 0, 0]
    terms: dict[str, tuple[int, int]] = {}
    for a in parts:
        lengths = [x + y for x, y in zip(lengths, a.entry.lengths, strict=True)]
        for t, p in a.terms.items():
            tf, mask = terms.get(t, (0, 0))
            terms[t] = (tf + p.tf, mask | p.mask)
    return tuple(lengths), terms


@settings(max_examples=200, deadline=None)
@given(
    title=_TEXT,
    messages=st.lists(_MESSAGE, min_size=1, max_size=4),
    appends=st.lists(st.lists(_OP, max_size=4), max_size=4),
)
def test_a_save_and_its_appends_index_what_the_whole_does(
    title: str, messages: list[dict[str, Any]], appends: list[list[dict[str, Any]]]
) -> None:
    doc: dict[str, Any] = {"title": title, "description": "", "messages": messages}
    parts = [analyze(Doc(SID, 1, doc_fields(doc)))]
    whole = copy.deepcopy(doc)
    for ops in appends:
        last_role = whole["messages"][-1]["role"]
        parts.append(analyze(Doc(SID, 1, ops_fields(ops, last_role=last_role))))
        assert not replaces(whole, ops)
        _events.apply(whole, copy.deepcopy(ops))
    assert _sum(parts) == _postings(analyze(Doc(SID, 1, doc_fields(whole))))


def test_the_fields_of_a_session() -> None:
    doc = {
        "title": "Deploy plan",
        "description": "the quarterly rollout",
        "tags": ["tagword"],
        "workspace": "/home/workspaceword",
        "config": {"k": "configword"},
        "source_records": [{"text": "recordword"}],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": [{"type": "text", "text": "fix the parser"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "text": "look first"},
                    {"type": "tool_call", "name": "Bash", "arguments": {"command": "pytest -q"}},
                ],
            },
            {"role": "tool", "content": [{"type": "tool_result", "content": "3 passed"}]},
            {"role": "user", "content": [{"type": "image", "data": "aW1hZ2U="}]},
        ],
    }
    assert doc_fields(doc) == [
        (TITLE, "Deploy plan"),
        (TITLE, "the quarterly rollout"),
        (USER, "be brief"),
        (USER, "fix the parser"),
        (ASSISTANT, "look first"),
        (TOOL, "Bash"),
        (TOOL, "pytest -q"),
        (TOOL, "3 passed"),
    ]


def test_a_set_of_the_title_replaces_text_and_one_of_the_same_title_does_not() -> None:
    before = {"title": "old", "description": ""}
    assert replaces(before, [{"op": "set", "value": {"title": "new"}}])
    assert replaces(before, [{"op": "set", "value": {"description": "added"}}])
    assert not replaces(before, [{"op": "set", "value": {"title": "old", "status": "completed"}}])
    assert not replaces(before, [{"op": "set", "value": {"title": "new"}}, {"op": "set", "value": {"title": "old"}}])
    assert ops_fields([{"op": "set", "value": {"title": "new"}}]) == []
