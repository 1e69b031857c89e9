"""The Gemini CLI parser (_transcripts/_gemini.py): both file forms into session documents.

The fixtures under tests/fixtures/transcripts/gemini are written in the shapes of Gemini CLI's
``ConversationRecord`` (``packages/core/src/services/chatRecordingTypes.ts``): an older
session as one pretty-printed JSON document, a newer one as JSON lines with a record written
again, ``$set``, ``$rewindTo``, a message type this build does not know and a line of no known
shape.  Fake secrets are planted where real ones leak (a referenced file, a shell's output,
a pasted URL): the parser passes them through for the vault to sanitize.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import errors, find_transcripts
from sessionseal._transcripts import (
    Transcript,
    find_gemini,
    grew_in_place,
    identify,
    parse_gemini,
    read_transcript,
    removable,
)
from sessionseal.models import Session

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "gemini"
WEBSHOP = FIX / "tmp" / "webshop" / "chats" / "session-2026-03-16T09-12-4b7e2c1a.json"
NOTES_HASH = hashlib.sha256(b"/home/dev/notes").hexdigest()
NOTES = FIX / "tmp" / NOTES_HASH / "chats" / "session-2026-03-17T14-30-9c0d1e2f.jsonl"
WEBSHOP_ID = "4b7e2c1a-9d3f-4e61-8a25-6c0f1b2d3e4a"
NOTES_ID = "9c0d1e2f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"

# The planted fake secrets.
GHP = "ghp_G3m1n1F4keT0kenF0rSessi0nSealTest0003"
AWS = "AKIAG7FAKEKEY5GEMINI"
PG = "postgres://notes:Vq7r2LmZp9xK@db.notes.internal:5432/notes"


def _valid(t: Transcript) -> dict[str, Any]:
    """The document validates as a Session and serializes as the vault does."""
    Session.model_validate(t.document)
    orjson.dumps(t.document)
    return t.document


def _texts(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\x00".join(_texts(k) + "\x00" + _texts(v) for k, v in value.items())
    if isinstance(value, list):
        return "\x00".join(_texts(v) for v in value)
    return ""


def _session(messages: list[Any], **meta: Any) -> bytes:
    """A legacy session document as Gemini CLI writes it: pretty-printed, no final newline."""
    record = {"sessionId": "s-1", "projectHash": "h", "startTime": "2026-01-01T00:00:00Z", **meta}
    return json.dumps({**record, "messages": messages}, indent=2).encode()


def _user(mid: str, text: Any, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "timestamp": "2026-01-01T00:00:01Z", "type": "user", "content": text, **extra}


# -- finding files ---------------------------------------------------------------------------


def test_find_gemini_lists_session_files_of_every_project() -> None:
    assert find_gemini(FIX / "tmp") == sorted([WEBSHOP, NOTES])
    assert find_gemini(FIX) == sorted([WEBSHOP, NOTES])  # ~/.gemini itself: its tmp is searched
    assert find_gemini(FIX / "nowhere") == []


def test_find_gemini_skips_sub_agents_and_a_json_resumed_into_jsonl(tmp_path: Path) -> None:
    chats = tmp_path / "tmp" / "p" / "chats"
    (chats / NOTES_ID).mkdir(parents=True)
    (chats / NOTES_ID / "0f1e2d3c.jsonl").write_text("{}\n")  # a sub-agent of that session
    (chats / "session-2026-01-01T00-00-aaaaaaaa.json").write_text("{}")
    (chats / "session-2026-01-01T00-00-aaaaaaaa.jsonl").write_text("{}\n")  # its migration
    (chats / "session-2026-01-02T00-00-bbbbbbbb.json").write_text("{}")
    (chats / "notes.txt").write_text("x")
    (tmp_path / "tmp" / "p" / "logs.json").write_text("[]")
    names = [p.name for p in find_gemini(tmp_path)]
    assert names == ["session-2026-01-01T00-00-aaaaaaaa.jsonl", "session-2026-01-02T00-00-bbbbbbbb.json"]


def test_the_gemini_home_follows_gemini_cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._transcript_dirs import gemini_dir

    chats = tmp_path / "home" / ".gemini" / "tmp" / "p" / "chats"
    chats.mkdir(parents=True)
    shutil.copy(WEBSHOP, chats)
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "home"))
    assert gemini_dir() == tmp_path / "home" / ".gemini"
    assert find_transcripts(gemini=True) == [chats / WEBSHOP.name]
    monkeypatch.delenv("GEMINI_CLI_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert gemini_dir() == tmp_path / "home" / ".gemini"
    assert find_transcripts(gemini=FIX) == sorted([WEBSHOP, NOTES])


# -- the older form: one JSON document --------------------------------------------------------


@pytest.fixture(scope="module")
def webshop() -> Transcript:
    return read_transcript(WEBSHOP)


def test_a_json_session_is_read_with_its_identity(webshop: Transcript) -> None:
    doc = _valid(webshop)
    assert (webshop.tool, webshop.source_id) == ("gemini-cli", WEBSHOP_ID)
    assert doc["tags"] == ["gemini-cli"]
    # The project comes from .project_root beside chats/: Gemini's records name only its hash.
    assert (doc["workspace"], doc["working_directory"]) == ("/home/dev/webshop", "/home/dev/webshop")
    assert (doc["created_at"], doc["updated_at"]) == ("2026-03-16T09:12:03.118Z", "2026-03-16T09:19:47.902Z")
    assert doc["config"] == {
        "model": "gemini-2.5-flash",
        "models": ["gemini-2.5-pro", "gemini-2.5-flash"],
        "project_hash": hashlib.sha256(b"/home/dev/webshop").hexdigest(),
        "source_tool": "gemini-cli",
    }
    source = doc["source"]
    assert (source["form"], source["records"], source["consumed"]) == ("json", 7, WEBSHOP.stat().st_size)
    assert source["digest"].startswith("sha256:") and webshop.unknown == {} and webshop.warnings == []


def test_the_title_is_the_first_real_request_not_a_slash_command(webshop: Transcript) -> None:
    # The first user message is "/memory show"; the title is what the user typed next
    # (its displayContent: the content adds the referenced file).
    assert webshop.document["title"] == "Why does the checkout test fail? The CI log is in @ci.log"


def test_gemini_messages_become_blocks(webshop: Transcript) -> None:
    messages = webshop.document["messages"]
    assert [m["role"] for m in messages] == [
        "user",
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "user",
        "assistant",
    ]
    assert messages[1]["notice"] == "info"
    assert messages[2]["display"] == [{"type": "text", "text": messages[2]["content"][0]["text"]}]
    reply = messages[3]
    assert reply["model"] == "gemini-2.5-pro" and reply["id"] == "7a2e4f10-2222-4d3c-8b1a-000000000004"
    thinking, read, shell = reply["content"]
    assert thinking == {
        "type": "thinking",
        "text": "Reading the failing test\nI should open test_checkout.py first.",
        "timestamp": "2026-03-16T09:12:44.010Z",
    }
    assert (read["type"], read["name"], read["status"]) == ("tool_call", "read_file", "success")
    assert read["arguments"] == {"absolute_path": "/home/dev/webshop/tests/test_checkout.py"}
    results = messages[4]
    assert results["id"] == reply["id"] + ":results" and results["timestamp"] == "2026-03-16T09:12:49.450Z"
    assert [(b["tool_call_id"], b["is_error"]) for b in results["content"]] == [
        (read["id"], False),
        (shell["id"], False),
    ]
    assert results["content"][0]["content"] == "def test_total():\n    assert cart.total() == 42\n"
    cancelled = messages[6]["content"][0]
    assert cancelled["is_error"] is True and cancelled["content"].startswith("[Operation Cancelled]")


def test_gemini_tool_history_pairs_calls_with_results(webshop: Transcript) -> None:
    history = webshop.document["tool_history"]
    assert [(h["tool"], h["status"]) for h in history] == [
        ("read_file", "ok"),
        ("run_shell_command", "ok"),
        ("replace", "error"),
    ]
    assert history[0]["duration_ms"] == 571.0


def test_gemini_usage_is_stored_as_the_other_tools(webshop: Transcript) -> None:
    # Gemini's input (promptTokenCount) includes the cached part; Claude's input_tokens does
    # not: stored as Claude's.  Thoughts are written output, as Claude and Codex count them.
    first = webshop.document["messages"][3]["usage"]
    assert first == {
        "input_tokens": 8123 - 6000,
        "output_tokens": 41 + 120,
        "cache_read_tokens": 6000,
        "cache_write_tokens": 0,
        "reasoning_tokens": 120,
        "total_tokens": 8123 + 41 + 120,
    }
    stats = webshop.document["stats"]
    assert (stats["input_tokens"], stats["cache_read_tokens"]) == (2123 + 1340 + 702, 6000 + 8000 + 9000)
    assert stats["output_tokens"] == 161 + 276 + 48 and stats["message_count"] == 9


def test_gemini_secrets_pass_through_verbatim(webshop: Transcript) -> None:
    text = _texts(webshop.document)
    assert GHP in text and AWS in text  # for the vault's sanitizer to count and redact


# -- the newer form: JSON lines ---------------------------------------------------------------


@pytest.fixture(scope="module")
def notes() -> Transcript:
    return read_transcript(NOTES)


def test_a_jsonl_session_is_resolved_as_gemini_loads_it(notes: Transcript) -> None:
    doc = _valid(notes)
    assert (notes.tool, notes.source_id, doc["title"]) == ("gemini-cli", NOTES_ID, "Summarise the notes todo list")
    assert doc.get("workspace") is None  # an older hashed directory: no .project_root
    # g1 was written twice (its token count came later): one message, the later record.
    # "$rewindTo": "u2" dropped u2 and g2.
    assert [m["id"] for m in doc["messages"]] == ["u1", "g1", "u3", "g3"]
    assert doc["messages"][1]["usage"]["input_tokens"] == 2105  # 2100 - 0 cached + 5 tool-use
    assert doc["messages"][3]["content"] == [
        {"type": "thinking", "text": "Thinking about it"},
        {"type": "text", "text": "Here is the summary."},
    ]
    assert (doc["source"]["form"], doc["source"]["consumed"]) == ("jsonl", NOTES.stat().st_size)
    assert PG in _texts(doc)


def test_gemini_records_not_mapped_are_kept_verbatim_and_counted(notes: Transcript) -> None:
    assert notes.unknown == {"message:plan_update": 1, "(no type)": 1}
    raw = notes.document["raw_events"]
    assert [e["record"].get("id") for e in raw] == ["p1", None]
    assert raw[0]["record"]["content"] == {"steps": ["read", "summarise"]}
    assert raw[1]["record"] == {"checkpoint": {"tag": "unknown line shape"}}


def test_a_torn_jsonl_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    data = NOTES.read_bytes()
    cut = data[: len(data) - 20]
    t = parse_gemini(tmp_path / NOTES.name, cut)
    assert t.consumed == cut.rfind(b"\n") + 1 and t.warnings[-1].endswith("left for the next read")


def test_set_messages_replaces_the_list(tmp_path: Path) -> None:
    lines = [
        {"sessionId": "s", "projectHash": "h"},
        _user("a", "first"),
        _user("b", "second"),
        {"$set": {"messages": [_user("a", "first, masked")]}},
        _user("c", "third"),
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    t = parse_gemini(tmp_path / "session-x.jsonl", data)
    assert [(m["id"], m["content"][0]["text"]) for m in t.document["messages"]] == [
        ("a", "first, masked"),
        ("c", "third"),
    ]


# -- identity from the head, and telling the tools apart ----------------------------------------


@pytest.mark.parametrize("path", [WEBSHOP, NOTES])
def test_identify_reads_the_id_from_the_head(path: Path) -> None:
    assert identify(path) == ("gemini-cli", read_transcript(path).source_id)
    assert identify(path, head=64) == ("gemini-cli", read_transcript(path).source_id)


def test_a_gemini_file_is_told_by_content_when_the_name_does_not(tmp_path: Path) -> None:
    copy = tmp_path / "chat.jsonl"
    shutil.copy(NOTES, copy)
    assert read_transcript(copy).tool == "gemini-cli" and identify(copy)[0] == "gemini-cli"


# -- refusals and hostile input -------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{", b'{"sessionId": "s", "messages": [', b"[1, 2]", b"\xff\xfe"])
def test_a_json_file_that_is_not_one_document_is_refused(data: bytes, tmp_path: Path) -> None:
    # Gemini CLI rewrites the file in place (no temporary file): a reader may see it half written.
    with pytest.raises(errors.InvalidInput, match=r"^[^\n]*session-x\.json: not one complete JSON document") as exc:
        parse_gemini(tmp_path / "session-x.json", data)
    assert "sessionId" not in str(exc.value)


def test_garbled_lines_are_warned_by_number_only(tmp_path: Path) -> None:
    data = b'{"sessionId":"s","projectHash":"h"}\n{"id":"u","type":"user","content":"' + GHP.encode() + b"\n"
    data += json.dumps(_user("v", "ok")).encode() + b"\n" + b'"' + AWS.encode() + b'"\n'
    t = parse_gemini(tmp_path / "session-x.jsonl", data)
    assert t.warnings == ["line 2 is not JSON", "line 4 is not a JSON object"]
    assert GHP not in " ".join(t.warnings) and [m["id"] for m in t.document["messages"]] == ["v"]


def test_unknown_shapes_never_fail(tmp_path: Path) -> None:
    messages: list[Any] = [
        7,
        "text",
        None,
        {"id": 5, "type": "user", "content": "an id that is no string"},
        {"id": "g", "type": "gemini", "content": {"weird": True}, "toolCalls": [3, {"id": 9, "result": {"x": 1}}]},
        {"id": "h", "type": "gemini", "thoughts": "not a list", "tokens": {"input": -1, "output": 2**70}},
        {"id": "i", "type": "gemini", "content": [{"inlineData": {"mimeType": "image/png", "data": "QUJD" * 100}}]},
        {"id": "j", "type": "user", "content": [{"text": 5}, {"type": "text", "x": 1}, {}, [1]]},
        {"id": "k", "type": ["a"], "content": "odd type"},
        {
            "id": "l",
            "type": "gemini",
            "toolCalls": [{"id": "c", "name": "x", "args": "not json", "result": [{"a": 1}]}],
        },
    ]
    t = parse_gemini(tmp_path / "session-x.json", _session(messages))
    doc = _valid(t)
    assert sum(t.unknown.values()) == len(doc["raw_events"]) >= 4
    image = next(m for m in doc["messages"] if m["id"] == "i")["content"][0]
    assert image == {"type": "inlineData", "inlineData": {"mimeType": "image/png", "data": 400}}
    assert next(m for m in doc["messages"] if m["id"] == "h")["usage"]["output_tokens"] == 0


def test_huge_values_are_stored_not_refused(tmp_path: Path) -> None:
    big = "x" * (4 << 20)
    deep: Any = "bottom"
    for _ in range(150):
        deep = [deep]
    messages = [_user("u", big), {"id": "g", "type": "gemini", "content": "ok", "tokens": {"input": 2**80}}]
    t = parse_gemini(tmp_path / "session-x.json", _session(messages, big=2**80))
    _valid(t)
    assert len(t.document["messages"][0]["content"][0]["text"]) == len(big)
    with pytest.raises(errors.InvalidInput):  # nested past the serializer's limit: refused whole
        parse_gemini(tmp_path / "session-y.json", _session([_user("u", deep)]))


# -- growth and removal ---------------------------------------------------------------------


def test_growth_is_an_unchanged_prefix_of_messages(tmp_path: Path) -> None:
    path = tmp_path / "session-x.json"
    reply = {"id": "g1", "timestamp": "2026-01-01T00:00:02Z", "type": "gemini", "content": "hi"}
    first = parse_gemini(path, _session([_user("u1", "hello"), reply])).document
    old = {**first["source"], "messages": len(first["messages"])}
    more = parse_gemini(path, _session([_user("u1", "hello"), reply, _user("u2", "more")])).document
    assert grew_in_place(old, more)
    # The last reply gained its token count in place: the stored copy is stale, not a prefix.
    counted = {**reply, "tokens": {"input": 5, "output": 1, "cached": 0, "total": 6}}
    assert not grew_in_place(old, parse_gemini(path, _session([_user("u1", "hello"), counted])).document)
    assert not grew_in_place(old, parse_gemini(path, _session([_user("u1", "hello")])).document)  # rewound
    assert not grew_in_place({**old, "digest": None}, more) and not grew_in_place({**old, "messages": "2"}, more)


def test_a_json_document_is_complete_when_it_parses_whole(tmp_path: Path) -> None:
    path = tmp_path / "session-x.json"
    shutil.copy(WEBSHOP, path)
    os.utime(path, (1, 1))
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    assert isinstance(removable(path, consumed=st.st_size, stamp=stamp, quiet_ns=0), os.stat_result)
    torn = path.read_bytes()[:-1]  # its closing brace not written yet
    path.write_bytes(torn + b" ")  # same size, no longer one document
    os.utime(path, (1, 1))
    assert removable(path, consumed=st.st_size, stamp=stamp, quiet_ns=0)[0] == "incomplete"


# -- property: never raises on fuzzed input -------------------------------------------------

_word = st.text(max_size=8)
_key = st.sampled_from(
    [
        "id",
        "type",
        "content",
        "displayContent",
        "timestamp",
        "thoughts",
        "tokens",
        "model",
        "toolCalls",
        "args",
        "result",
        "status",
        "name",
        "text",
        "thought",
        "functionResponse",
        "response",
        "output",
        "inlineData",
        "data",
        "sessionId",
        "messages",
        "$set",
        "$rewindTo",
        "input",
        "cached",
    ]
)
_value: st.SearchStrategy[Any] = st.deferred(
    lambda: (
        _word
        | st.integers()
        | st.none()
        | st.booleans()
        | st.sampled_from(["user", "gemini", "info", "success", "error", "2026-03-14T10:22:31Z", "g1", "u1"])
        | st.lists(_value, max_size=3)
        | st.dictionaries(_key, _value, max_size=5)
    )
)
_record = st.dictionaries(_key, _value, max_size=6)


def _fuzz_check(path: Path, data: bytes, sidechains: dict[str, bytes] | None = None) -> None:
    try:
        t = parse_gemini(path, data, None, sidechains)
    except errors.InvalidInput as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith(f"{path}: ") and "\n" not in message
        return
    _valid(t)
    assert t.consumed <= len(data) and len(t.document["raw_events"]) == sum(t.unknown.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(_record | _value, max_size=6), meta=_record, jsonl=st.booleans(), tail=st.binary(max_size=12))
def test_fuzzed_sessions_give_a_valid_document_or_invalid_input(
    messages: list[Any], meta: dict[str, Any], jsonl: bool, tail: bytes
) -> None:
    if jsonl:
        data = b"".join(json.dumps(r).encode() + b"\n" for r in [meta, *messages]) + tail
        _fuzz_check(Path("session-f.jsonl"), data)
        _fuzz_check(Path("session-f.jsonl"), data, {"a": data, "b": tail})
    else:
        _fuzz_check(Path("session-f.json"), json.dumps({**meta, "messages": messages}).encode() + tail)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=6000), flip=st.integers(0, 255))
def test_random_and_damaged_bytes_give_a_document_or_invalid_input(data: bytes, cut: int, flip: int) -> None:
    _fuzz_check(Path("session-f.json"), data)
    _fuzz_check(Path("session-f.jsonl"), data)
    for path in (WEBSHOP, NOTES):
        damaged = bytearray(path.read_bytes()[:cut])
        if damaged:
            damaged[flip * 7919 % len(damaged)] ^= flip
        _fuzz_check(Path(path.name), bytes(damaged))


# -- sub-agents -------------------------------------------------------------------------------

SUB_ID = "e5d4c3b2-a190-4f8e-9d7c-6b5a49382716"
SUB_SECRET = "ghp_SubAg3ntF4keT0kenF0rSessi0nSeal0004"


def sub_agent(chats: Path, *, torn: bool = False) -> Path:
    """A sub-agent's file where Gemini CLI writes it: ``chats/<parent session id>/<id>.jsonl``."""
    folder = chats / WEBSHOP_ID
    folder.mkdir(exist_ok=True)
    lines = [
        {"sessionId": SUB_ID, "projectHash": "h", "startTime": "2026-03-16T09:12:47.000Z", "kind": "subagent"},
        {"id": "s1", "timestamp": "2026-03-16T09:12:47.100Z", "type": "user", "content": "Investigate the tax code"},
        {
            "id": "s2",
            "timestamp": "2026-03-16T09:12:55.000Z",
            "type": "gemini",
            "content": f"Found GITHUB_TOKEN={SUB_SECRET} in .env",
            "model": "gemini-2.5-flash-lite",
        },
    ]
    f = folder / f"{SUB_ID}.jsonl"
    text = "".join(json.dumps(x) + "\n" for x in lines)
    f.write_text(text[:-10] if torn else text)
    return f


def test_a_sub_agent_is_read_with_its_main_session(tmp_path: Path) -> None:
    chats = tmp_path / "chats"
    chats.mkdir()
    main = Path(shutil.copy(WEBSHOP, chats))
    sub_agent(chats)
    assert find_gemini(tmp_path) == [main]  # read with its session, not listed on its own
    t = read_transcript(main)
    doc = _valid(t)
    side = [m for m in doc["messages"] if "sidechain" in m]
    assert [(m["id"], m["sidechain"]) for m in side] == [("s1", SUB_ID), ("s2", SUB_ID)]
    ids = [m["id"] for m in doc["messages"]]
    assert ids.index("s1") == ids.index("7a2e4f10-2222-4d3c-8b1a-000000000004") + 1  # interleaved by time
    assert doc["title"].startswith("Why does the checkout test fail?")  # not the sub-agent's prompt
    assert doc["config"]["model"] == "gemini-2.5-flash" and "gemini-2.5-flash-lite" in doc["config"]["models"]
    assert doc["source"]["sidechains"] == {
        SUB_ID: {"records": 3, "consumed": (chats / WEBSHOP_ID / f"{SUB_ID}.jsonl").stat().st_size}
    }
    assert doc["source"]["sidechain_paths"] == [str(chats / WEBSHOP_ID / f"{SUB_ID}.jsonl")]
    assert SUB_SECRET in _texts(doc)
