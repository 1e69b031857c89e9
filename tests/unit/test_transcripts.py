"""The transcript parser (_transcripts/): Claude Code and Codex files into session documents.

The fixtures under tests/fixtures/transcripts are hand-written from the public descriptions of
both formats, with fake secrets planted where real ones leak (pasted env, tool output, a remote
URL, a private key): the parser must pass them through verbatim for the vault to sanitize.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import errors
from sessionseal._transcripts import (
    Transcript,
    find_claude,
    find_codex,
    parse_claude,
    parse_codex,
    read_transcript,
)
from sessionseal.models import Session

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
CLAUDE = FIX / "claude" / "projects"
PARSER = CLAUDE / "-home-dev-parser"
CLAUDE_MAIN = PARSER / "7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47.jsonl"
CLAUDE_NEWER_AGENT = PARSER / "7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47" / "subagents" / "agent-a3f9c21.jsonl"
CLAUDE_OLDER_AGENT = PARSER / "agent-5d1e0b7.jsonl"
CLAUDE_OTHER_AGENT = PARSER / "agent-9e07c44.jsonl"
CLAUDE_SMALL = CLAUDE / "-home-dev-webapp" / "c41d8e2b-6f0a-4d7c-b3e5-a2f19e8d0c64.jsonl"
CODEX = FIX / "codex" / "sessions"
CODEX_MAIN = CODEX / "2026/03/14/rollout-2026-03-14T10-22-31-019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93.jsonl"
CODEX_ZST = CODEX / "2026/03/15/rollout-2026-03-15T08-05-12-019cf0b1-6a2d-7e13-8c4f-1b9e3d7a5c20.jsonl.zst"
CODEX_LEGACY = CODEX / "2025/05/02/rollout-2025-05-02T14-11-09-6d0f3b27-91c4-4a58-b2e6-0c8d7f5a1e34.jsonl"

# The planted fake secrets.
AWS_CLAUDE = "AKIAQ3FAKEKEY7DEV4XZ"
AWS_CODEX = "AKIAZ7FAKEKEY2LEDGER"
GHP = "ghp_F4keT0kenF0rSessi0nSealTests0nly0001"
GHP_LEGACY = "ghp_L3gacyF4keT0kenF0rD0tfilesRem0te0002"
PG_CLAUDE = "postgres://parser_app:s3cr3t-fake-pw@db.internal.example:5432/parser_dev"
PG_CODEX = "postgres://ledger:Sup3r-fake-pass@staging-db.example.internal:5432/ledger"
KEY_HEAD = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
)
KEY_TAIL = "S0VGQUtFRkFLRUZBS0VGQUtFRkFLRQ==\n-----END OPENSSH PRIVATE KEY-----\n"


def _valid(t: Transcript) -> dict[str, Any]:
    """The document validates as a Session and serializes as the vault does."""
    Session.model_validate(t.document)
    orjson.dumps(t.document)
    return t.document


def _texts(value: Any) -> str:
    """Every string in *value*, joined: a secret passed through is found whole, escapes decoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\x00".join(_texts(k) + "\x00" + _texts(v) for k, v in value.items())
    if isinstance(value, list):
        return "\x00".join(_texts(v) for v in value)
    return ""


def _lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a fixture that are JSON, parsed independently of the module."""
    data = path.read_bytes()
    out = []
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _claude_line(*, type_: str = "user", **fields: Any) -> bytes:
    record = {"type": type_, "sessionId": "s-1", "cwd": "/w", "timestamp": "2026-01-01T00:00:00Z", **fields}
    return json.dumps(record).encode() + b"\n"


# -- finding files ---------------------------------------------------------------------------


def test_find_claude_lists_main_sessions_only() -> None:
    found = find_claude(CLAUDE)
    assert found == sorted([CLAUDE_MAIN, CLAUDE_SMALL])
    assert find_claude(FIX / "claude") == found  # ~/.claude itself: its projects directory is searched
    assert find_claude(FIX / "nowhere") == []


def test_find_codex_lists_plain_and_compressed_rollouts() -> None:
    found = find_codex(CODEX)
    assert found == sorted([CODEX_MAIN, CODEX_ZST, CODEX_LEGACY])
    assert find_codex(FIX / "codex") == found


# -- Claude Code -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claude_main() -> Transcript:
    return read_transcript(CLAUDE_MAIN)


def test_a_claude_session_is_read_with_its_identity(claude_main: Transcript) -> None:
    doc = _valid(claude_main)
    assert (claude_main.tool, claude_main.source_id) == ("claude-code", "7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47")
    assert doc["tags"] == ["claude-code"]
    assert (doc["workspace"], doc["working_directory"]) == ("/home/dev/parser", "/home/dev/parser")
    assert (doc["created_at"], doc["updated_at"]) == ("2026-03-14T09:12:01.097Z", "2026-03-14T09:43:13.120Z")
    assert doc["config"] == {
        "model": "claude-opus-4-5-20251101",
        "models": ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-5-20251101"],
        "git_branch": "fix/torn-lines",
        "tool_version": "2.1.3",
        "source_tool": "claude-code",
    }
    assert doc["source"]["tool"] == "claude-code" and doc["source"]["path"] == str(CLAUDE_MAIN)
    assert doc["stats"]["message_count"] == len(doc["messages"])


def test_the_last_summary_record_is_the_title(claude_main: Transcript) -> None:
    # Two summary records: an older one at the top, the newer one near the end.
    assert claude_main.document["title"] == "Reader keeps a torn last line for the next read"


def test_a_reply_split_over_records_is_one_message(claude_main: Transcript) -> None:
    assistants = [m for m in claude_main.document["messages"] if m["role"] == "assistant" and "sidechain" not in m]
    first = assistants[0]
    assert [b["type"] for b in first["content"]] == ["thinking", "text", "tool_call"]
    assert first["content"][0]["text"].startswith("A torn last line means")
    assert "signature" not in first["content"][0]
    assert first["content"][2]["arguments"] == {"file_path": "/home/dev/parser/parser/reader.py"}
    # The usage repeated on each record counts once, at its final value.
    assert first["usage"] == {
        "input_tokens": 4,
        "output_tokens": 142,
        "cache_read_tokens": 14512,
        "cache_write_tokens": 3120,
    }
    # Two parallel calls, the first call's result written between the two records: still one message.
    second = assistants[1]
    assert [(b["type"], b["name"]) for b in second["content"]] == [("tool_call", "Bash"), ("tool_call", "Bash")]
    i = claude_main.document["messages"].index(second)
    assert [m["role"] for m in claude_main.document["messages"][i + 1 : i + 3]] == ["tool", "tool"]


def test_usage_sums_count_each_api_message_once(claude_main: Transcript) -> None:
    # Independently: the last record of each message id (main and sub-agent files) holds its usage.
    final: dict[str, dict[str, int]] = {}
    for path in (CLAUDE_MAIN, CLAUDE_NEWER_AGENT, CLAUDE_OLDER_AGENT):
        for r in _lines(path):
            if r.get("type") == "assistant":
                final[r["message"]["id"]] = r["message"]["usage"]
    stats = claude_main.document["stats"]
    assert stats["input_tokens"] == sum(u["input_tokens"] for u in final.values()) == 74
    assert stats["output_tokens"] == sum(u["output_tokens"] for u in final.values()) == 1934
    assert stats["cache_read_tokens"] == sum(u["cache_read_input_tokens"] for u in final.values())


def test_claude_tool_calls_pair_with_results_and_errors(claude_main: Transcript) -> None:
    doc = claude_main.document
    history = {h["call_id"]: h for h in doc["tool_history"]}
    calls = [b for m in doc["messages"] for b in m["content"] if b["type"] == "tool_call"]
    assert len(history) == len(calls) == 11
    failed = [h for h in doc["tool_history"] if h["status"] == "error"]
    assert len(failed) == 1 and failed[0]["tool"] == "Bash"
    result = next(b for m in doc["messages"] for b in m["content"] if b.get("tool_call_id") == failed[0]["call_id"])
    assert result["is_error"] is True and result["content"].startswith("Exit code 1\n")
    assert (failed[0]["started_at"], failed[0]["finished_at"]) == (
        "2026-03-14T09:12:53.611Z",
        "2026-03-14T09:12:55.020Z",
    )
    assert failed[0]["duration_ms"] == pytest.approx(1409.0)
    # The push was cut off with the session (its result is the torn last line): no status.
    push = doc["tool_history"][-1]
    assert (push["tool"], push["status"], push["finished_at"]) == ("Bash", None, None)
    # Results arrive in user records: they become tool messages; a Task result keeps its blocks.
    tool_messages = [m for m in doc["messages"] if m["role"] == "tool"]
    assert all(b["type"] == "tool_result" for m in tool_messages for b in m["content"])
    task = next(h for h in doc["tool_history"] if h["tool"] == "Task")
    task_result = next(b for m in tool_messages for b in m["content"] if b["tool_call_id"] == task["call_id"])
    assert [b["type"] for b in task_result["content"]] == ["text", "text"]


def test_sidechains_of_both_layouts_are_interleaved_by_time(claude_main: Transcript) -> None:
    doc = claude_main.document
    messages = doc["messages"]
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        if "sidechain" in m:
            by_agent.setdefault(m["sidechain"], []).append(m)
    # The newer layout (<session>/subagents/) and the older one (agent-*.jsonl beside it, naming
    # this session); agent-9e07c44.jsonl names another session and is left out.
    assert sorted(by_agent) == ["5d1e0b7", "a3f9c21"]
    assert [m["role"] for m in by_agent["a3f9c21"]] == ["user", "assistant", "tool", "assistant"]
    assert len(by_agent["5d1e0b7"]) == 5  # its torn last line is not read
    assert by_agent["a3f9c21"][1]["model"] == "claude-haiku-4-5-20251001"
    # The Explore agent ran between its Task call and the Task result.
    task_call = next(m for m in messages if any(b.get("name") == "Task" for b in m["content"]))
    task_id = next(b["id"] for b in task_call["content"] if b.get("name") == "Task")
    task_result = next(m for m in messages if any(b.get("tool_call_id") == task_id for b in m["content"]))
    inside = messages[messages.index(task_call) + 1 : messages.index(task_result)]
    assert inside == by_agent["a3f9c21"]
    assert doc["source"]["sidechain_paths"] == [str(CLAUDE_NEWER_AGENT), str(CLAUDE_OLDER_AGENT)]
    assert doc["source"]["sidechains"]["5d1e0b7"] == {
        "records": 5,
        "consumed": CLAUDE_OLDER_AGENT.read_bytes().rfind(b"\n") + 1,
    }
    assert str(CLAUDE_OTHER_AGENT) not in _texts(doc)
    assert "sidechain 5d1e0b7: line 6 is incomplete (no newline yet); left for the next read" in claude_main.warnings


def test_a_compaction_is_a_system_message_then_the_summary(claude_main: Transcript) -> None:
    messages = claude_main.document["messages"]
    i = next(i for i, m in enumerate(messages) if "compaction" in m)
    assert messages[i]["role"] == "system"
    assert messages[i]["content"] == [{"type": "text", "text": "[conversation compacted]"}]
    assert messages[i]["compaction"] == {"trigger": "auto", "preTokens": 167342}
    assert messages[i + 1]["role"] == "user" and messages[i + 1]["compact_summary"] is True
    assert messages[i + 1]["content"][0]["text"].startswith("This session is being continued")


def test_claude_records_not_mapped_are_kept_verbatim_and_counted(claude_main: Transcript) -> None:
    assert claude_main.unknown == {
        "file-history-snapshot": 2,
        "queue-operation": 1,
        "system:api_error": 1,
        "session-insight": 1,
    }
    raw = claude_main.document["raw_events"]
    assert len(raw) == sum(claude_main.unknown.values())
    lines = CLAUDE_MAIN.read_bytes().split(b"\n")
    for event in raw:
        assert event["record"] == json.loads(lines[event["line"] - 1])
    assert [e["record"]["type"] for e in raw][-1] == "session-insight"


def test_a_torn_last_line_is_not_consumed(claude_main: Transcript) -> None:
    data = CLAUDE_MAIN.read_bytes()
    assert not data.endswith(b"\n")
    assert claude_main.consumed == data.rfind(b"\n") + 1 == claude_main.document["source"]["consumed"]
    assert claude_main.records == data.count(b"\n") == 38
    assert "line 39 is incomplete (no newline yet); left for the next read" in claude_main.warnings


def test_inline_images_keep_their_shape_not_their_data(claude_main: Transcript) -> None:
    image = next(b for m in claude_main.document["messages"] for b in m["content"] if b["type"] == "image")
    assert image["source"]["media_type"] == "image/png"
    assert isinstance(image["source"]["data"], int) and image["source"]["data"] > 500
    assert "iVBORw0KGgo" not in _texts(claude_main.document)


def test_claude_secrets_pass_through_verbatim(claude_main: Transcript) -> None:
    text = _texts(claude_main.document)
    for secret in (AWS_CLAUDE, GHP, PG_CLAUDE, KEY_HEAD, KEY_TAIL):
        assert secret in text
    key_result = next(
        b["content"]
        for m in claude_main.document["messages"]
        for b in m["content"]
        if b["type"] == "tool_result" and isinstance(b["content"], str) and "OPENSSH" in b["content"]
    )
    assert key_result.startswith(KEY_HEAD) and key_result.endswith(KEY_TAIL)


def test_without_a_summary_the_first_real_request_is_the_title() -> None:
    t = read_transcript(CLAUDE_SMALL)
    doc = _valid(t)
    # A meta caveat and a shell echo come first; the request starts with a blank line.
    assert doc["title"] == "Add a /healthz endpoint to the Flask app"
    assert doc["messages"][0].get("meta") is True
    assert t.warnings == [] and t.unknown == {} and t.consumed == len(CLAUDE_SMALL.read_bytes())
    assert doc["source"]["sidechain_paths"] == []


def test_a_long_first_request_is_cut_to_80_characters(tmp_path: Path) -> None:
    data = _claude_line(uuid="u1", message={"role": "user", "content": "x" * 200 + "\nsecond line"})
    doc = parse_claude(tmp_path / "s.jsonl", data).document
    assert len(doc["title"]) == 80 and doc["title"].endswith("…")


def test_inline_sidechain_records_are_marked_and_never_the_title(tmp_path: Path) -> None:
    data = _claude_line(
        uuid="u1", isSidechain=True, agentId="ab12", message={"role": "user", "content": "sub-agent prompt"}
    ) + _claude_line(uuid="u2", message={"role": "user", "content": "the real request"})
    t = parse_claude(tmp_path / "s.jsonl", data)
    _valid(t)
    assert t.document["messages"][0]["sidechain"] == "ab12"
    assert t.document["title"] == "the real request"
    assert t.source_id == "s-1"


def test_sidechains_given_directly_are_interleaved(tmp_path: Path) -> None:
    main = _claude_line(uuid="u1", timestamp="2026-01-01T00:00:00Z", message={"role": "user", "content": "a"})
    main += _claude_line(uuid="u3", timestamp="2026-01-01T00:00:02Z", message={"role": "user", "content": "c"})
    side = _claude_line(
        uuid="u2", isSidechain=True, timestamp="2026-01-01T00:00:01Z", message={"role": "user", "content": "b"}
    )
    t = parse_claude(tmp_path / "s.jsonl", main, {"agent7": side + b'{"type":'})
    doc = _valid(t)
    assert [m["content"][0]["text"] for m in doc["messages"]] == ["a", "b", "c"]
    assert doc["messages"][1]["sidechain"] == "agent7"
    assert doc["source"]["sidechains"] == {"agent7": {"records": 1, "consumed": len(side)}}
    assert t.records == 2 and t.consumed == len(main)


def test_a_record_written_twice_is_read_once(tmp_path: Path) -> None:
    line = _claude_line(uuid="u1", message={"role": "user", "content": "once"})
    t = parse_claude(tmp_path / "s.jsonl", line + line)
    assert len(t.document["messages"]) == 1 and t.records == 2


# -- Codex -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codex_main() -> Transcript:
    return read_transcript(CODEX_MAIN)


def test_a_codex_rollout_is_read_with_its_identity(codex_main: Transcript) -> None:
    doc = _valid(codex_main)
    assert (codex_main.tool, codex_main.source_id) == ("codex", "019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93")
    assert doc["tags"] == ["codex"]
    # The session started at the repository root; the last turn ran in a sub-directory.
    assert (doc["workspace"], doc["working_directory"]) == ("/home/dev/ledger", "/home/dev/ledger/services/billing")
    assert (doc["created_at"], doc["updated_at"]) == ("2026-03-14T10:22:31.198Z", "2026-03-14T10:30:01.240Z")
    config = doc["config"]
    assert (config["model"], config["models"]) == ("gpt-5.1-codex-max", ["gpt-5.1-codex", "gpt-5.1-codex-max"])
    assert (config["git_branch"], config["tool_version"], config["source_tool"]) == (
        "fix/invoice-rounding",
        "0.114.0",
        "codex",
    )
    assert config["reasoning_effort"] == "high" and config["approval_policy"] == "on-request"


def test_codex_boilerplate_is_kept_but_not_the_title(codex_main: Transcript) -> None:
    doc = codex_main.document
    assert doc["title"] == "Invoice totals are off by a cent for some line items. Staging DB for repro: pos…"
    assert len(doc["title"]) == 80
    roles = [(m["role"], m.get("meta", False)) for m in doc["messages"][:4]]
    assert roles == [("developer", False), ("user", True), ("user", True), ("user", False)]


def test_codex_items_become_messages_with_blocks(codex_main: Transcript) -> None:
    messages = codex_main.document["messages"]
    shape = [(m["role"], [b["type"] for b in m["content"]]) for m in messages[4:]]
    assert shape == [
        ("assistant", ["thinking", "tool_call"]),
        ("tool", ["tool_result"]),
        ("assistant", ["tool_call"]),
        ("tool", ["tool_result"]),
        ("assistant", ["tool_call"]),
        ("tool", ["tool_result"]),
        ("assistant", ["tool_call", "text"]),
        ("system", ["text"]),
        ("user", ["text"]),
        ("assistant", ["tool_call"]),
        ("tool", ["tool_result"]),
        ("assistant", ["text"]),
    ]
    first = messages[4]
    assert first["content"][0]["text"].startswith("**Reproducing the failing test**")
    assert first["content"][1]["name"] == "shell"
    assert first["content"][1]["arguments"]["command"] == ["bash", "-lc", "pytest -q tests/test_invoice.py"]
    assert first["model"] == "gpt-5.1-codex"
    assert first["usage"] == {
        "input_tokens": 9812 - 3072,  # Codex counts the cached part in; Claude does not
        "output_tokens": 211,
        "cache_read_tokens": 3072,
        "cache_write_tokens": 0,
    }
    patch = messages[8]["content"][0]
    assert patch["name"] == "apply_patch" and patch["arguments"].startswith("*** Begin Patch\n")
    assert messages[13]["content"][0]["name"] == "local_shell"
    assert messages[13]["model"] == "gpt-5.1-codex-max"
    compaction = messages[11]
    assert compaction["compaction"] == {} and compaction["content"][0]["text"].startswith("Fixed invoice rounding")


def test_codex_tool_outputs_pair_and_mark_errors(codex_main: Transcript) -> None:
    doc = codex_main.document
    history = [(h["tool"], h["status"]) for h in doc["tool_history"]]
    assert history == [
        ("shell", "error"),
        ("shell", "ok"),
        ("apply_patch", "ok"),
        ("web_search", "ok"),
        ("local_shell", "ok"),
    ]
    results = [b for m in doc["messages"] for b in m["content"] if b["type"] == "tool_result"]
    failed = results[0]
    assert failed["is_error"] is True and "AssertionError" in failed["content"]
    assert failed["metadata"] == {"exit_code": 1, "duration_seconds": 0.9}
    plain = results[-1]  # the newer plain-text output
    assert plain["is_error"] is False and plain["content"].startswith("Exit code: 0\n")
    shell = doc["tool_history"][0]
    assert (shell["started_at"], shell["finished_at"]) == ("2026-03-14T10:23:02.977Z", "2026-03-14T10:23:04.102Z")


def test_codex_stats_are_the_last_token_count(codex_main: Transcript) -> None:
    stats = codex_main.document["stats"]
    assert (stats["input_tokens"], stats["output_tokens"], stats["cache_read_tokens"]) == (61204 - 41984, 1893, 41984)
    assert stats["message_count"] == len(codex_main.document["messages"]) == 16


def test_codex_records_not_mapped_are_kept_and_counted(codex_main: Transcript) -> None:
    assert codex_main.unknown == {
        "event_msg:user_message": 2,
        "event_msg:agent_reasoning": 1,
        "event_msg:agent_message": 1,
        "event_msg:task_complete": 1,
        "event_msg:context_compacted": 1,
        "reasoning (encrypted)": 1,
        "response_item:ghost_snapshot": 1,
        "session_state_v2": 1,
    }
    raw = codex_main.document["raw_events"]
    assert len(raw) == 9
    lines = CODEX_MAIN.read_bytes().split(b"\n")
    for event in raw:
        assert event["record"] == json.loads(lines[event["line"] - 1])


def test_codex_bad_and_torn_lines_are_warned_by_number_only(codex_main: Transcript) -> None:
    data = CODEX_MAIN.read_bytes()
    assert codex_main.warnings == [
        "line 18 is not JSON",
        "line 38 is incomplete (no newline yet); left for the next read",
    ]
    assert codex_main.consumed == data.rfind(b"\n") + 1 and codex_main.records == 37


def test_codex_secrets_pass_through_verbatim(codex_main: Transcript) -> None:
    text = _texts(codex_main.document)
    assert PG_CODEX in text and AWS_CODEX in text


def test_a_compressed_rollout_is_read() -> None:
    t = read_transcript(CODEX_ZST)
    doc = _valid(t)
    plain = zstandard.ZstdDecompressor().decompress(CODEX_ZST.read_bytes())
    assert (t.tool, t.source_id) == ("codex", "019cf0b1-6a2d-7e13-8c4f-1b9e3d7a5c20")
    assert t.consumed == len(plain) and t.records == 9 and t.warnings == []
    assert doc["title"] == 'Why does `ssh -i ~/.ssh/deploy_infra deploy@bastion` say "invalid format"?'
    key = next(b["content"] for m in doc["messages"] for b in m["content"] if b["type"] == "tool_result")
    assert KEY_HEAD in key and key.endswith(KEY_TAIL)  # the \n escapes decoded, the block whole


def test_a_legacy_rollout_is_read() -> None:
    t = read_transcript(CODEX_LEGACY)
    doc = _valid(t)
    assert t.source_id == "6d0f3b27-91c4-4a58-b2e6-0c8d7f5a1e34"
    assert doc["title"] == "Which scripts in bin/ lack `set -euo pipefail`?"
    assert t.unknown == {"legacy state": 4}
    assert doc["created_at"] == doc["updated_at"] == "2025-05-02T14:11:09.512Z"  # items carry no times
    assert doc["config"]["instructions"] == "Always run shellcheck on scripts you touch."
    assert [h["status"] for h in doc["tool_history"]] == ["ok", "error"]
    assert [m["role"] for m in doc["messages"]] == [
        "user",
        "user",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert GHP_LEGACY in doc["config"]["git_repository_url"]


def test_the_tool_is_told_by_content_when_the_name_does_not(tmp_path: Path) -> None:
    for src, tool in ((CODEX_MAIN, "codex"), (CODEX_LEGACY, "codex"), (CLAUDE_SMALL, "claude-code")):
        copy = tmp_path / f"{tool}-{src.stem[:8]}.jsonl"
        shutil.copy(src, copy)
        assert read_transcript(copy).tool == tool


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not json\n", b"[1, 2]\n\n", b'{"type": "user"', b"\xff\xfe\n"])
@pytest.mark.parametrize("parse", [parse_claude, parse_codex])
def test_what_is_not_a_transcript_is_refused_by_name(data: bytes, parse: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with pytest.raises(errors.InvalidInput, match=r"t\.jsonl: not a .* transcript"):
        parse(path, data)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="no such transcript file"):
        read_transcript(tmp_path / "missing.jsonl")
    with pytest.raises(errors.InvalidInput, match="is a directory"):
        read_transcript(tmp_path)
    garbage = tmp_path / "rollout-x.jsonl.zst"
    garbage.write_bytes(b"this is not zstd at all")
    with pytest.raises(errors.InvalidInput, match=r"rollout-x\.jsonl\.zst: is not a valid zstd stream"):
        read_transcript(garbage)


def test_the_size_limit_holds_before_and_after_decompression(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="larger than 1000 bytes"):
        read_transcript(CLAUDE_SMALL, max_bytes=1000)
    bomb = tmp_path / "rollout-bomb.jsonl.zst"
    bomb.write_bytes(zstandard.ZstdCompressor(write_content_size=False).compress(b"\n" * (4 << 20)))
    assert bomb.stat().st_size < 1000
    with pytest.raises(errors.InvalidInput, match="decompresses to more than"):
        read_transcript(bomb, max_bytes=1 << 20)


def test_warnings_never_quote_a_line(tmp_path: Path) -> None:
    data = b'{"type":"user","message":{"content":"' + GHP.encode() + b'"\n' + _claude_line(message={"content": "ok"})
    data += b'"' + AWS_CLAUDE.encode() + b'"\n' + b'{"type":"user","x":"' + PG_CLAUDE.encode()
    t = parse_claude(tmp_path / "s.jsonl", data)
    assert t.warnings == [
        "line 1 is not JSON",
        "line 3 is not a JSON object",
        "line 4 is incomplete (no newline yet); left for the next read",
    ]
    assert len(t.document["messages"]) == 1


def test_storage_hostile_values_are_repaired(tmp_path: Path) -> None:
    # Half an emoji (a lone surrogate escape), an int past 64 bits, deep nesting: all legal JSON.
    data = _claude_line(uuid="u1", message={"role": "user", "content": "cut \\ud83d"}).replace(b"\\\\ud83d", b"\\ud83d")
    data += _claude_line(type_="x-future", big=2**70)
    data += b'{"type":"x-future","deep":' + b"[" * 150 + b"]" * 150 + b"}\n"
    t = parse_claude(tmp_path / "s.jsonl", data)
    doc = _valid(t)
    assert doc["messages"][0]["content"][0]["text"] == "cut \ufffd"
    assert doc["raw_events"][0]["record"]["big"] == str(2**70)
    assert t.warnings == ["line 3 is nested too deeply"]


# -- fuzzing -----------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_word = st.sampled_from(
    [
        "user",
        "assistant",
        "summary",
        "system",
        "compact_boundary",
        "text",
        "thinking",
        "tool_use",
        "tool_result",
        "tool_call",
        "image",
        "session_meta",
        "turn_context",
        "response_item",
        "event_msg",
        "compacted",
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "local_shell_call",
        "web_search_call",
        "token_count",
        "input_text",
        "output_text",
        "summary_text",
        "state",
        "x",
    ]
)
_key = st.sampled_from(
    [
        "type",
        "subtype",
        "message",
        "content",
        "role",
        "id",
        "uuid",
        "parentUuid",
        "sessionId",
        "timestamp",
        "cwd",
        "gitBranch",
        "isSidechain",
        "agentId",
        "isMeta",
        "isCompactSummary",
        "model",
        "usage",
        "input_tokens",
        "output_tokens",
        "text",
        "thinking",
        "name",
        "input",
        "tool_use_id",
        "is_error",
        "payload",
        "summary",
        "arguments",
        "call_id",
        "output",
        "info",
        "total_token_usage",
        "last_token_usage",
        "record_type",
        "git",
        "status",
        "data",
        "compactMetadata",
    ]
)
_value = st.deferred(
    lambda: (
        _word
        | _json
        | st.sampled_from(["2026-03-14T10:22:31.123Z", "0001-01-01T00:00:00+05:00", "2026-02-30T00:00:00Z", 5])
        | st.lists(_record, max_size=3)
        | _record
    )
)
_record: st.SearchStrategy[dict[str, Any]] = st.deferred(
    lambda: st.dictionaries(_key, _value, max_size=6).map(lambda d: {"type": d.pop("type", "user"), **d})
)


def _fuzz_check(parse: Any, data: bytes) -> None:
    try:
        t = parse(Path("fuzz.jsonl"), data)
    except errors.InvalidInput as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith("fuzz.jsonl: ") and "\n" not in message
        return
    _valid(t)
    assert t.consumed <= len(data) and len(t.document["raw_events"]) == sum(t.unknown.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), codex=st.booleans())
def test_random_bytes_give_a_document_or_invalid_input(data: bytes, codex: bool) -> None:
    _fuzz_check(parse_codex if codex else parse_claude, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_record, max_size=8), tail=st.binary(max_size=20), codex=st.booleans())
def test_random_records_give_a_valid_document(records: list[dict[str, Any]], tail: bytes, codex: bool) -> None:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail
    _fuzz_check(parse_codex if codex else parse_claude, data)
    if not codex:
        _fuzz_check(lambda p, d: parse_claude(p, d, {"a": d, "b": tail}), data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=40000), flip=st.integers(min_value=0, max_value=255))
def test_damaged_fixtures_give_a_document_or_invalid_input(cut: int, flip: int) -> None:
    for path, parse in ((CLAUDE_MAIN, parse_claude), (CODEX_MAIN, parse_codex), (CODEX_LEGACY, parse_codex)):
        data = bytearray(path.read_bytes()[: cut % (len(path.read_bytes()) + 1)])
        if data:
            data[flip * 7919 % len(data)] ^= flip
        _fuzz_check(parse, bytes(data))
