"""Codex import fidelity (issue 22): prompts that only a ``user_message`` event records, one
message per prompt when both records are written, duplicate item ids, and token counts in
the same convention as Claude's (``input_tokens`` without the cached part)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sessionseal import Vault
from sessionseal._transcripts import parse_codex, read_transcript

FIDELITY = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "fidelity"
#: Codex Desktop 0.128: every prompt only as ``event_msg`` ``user_message``.
DESKTOP = FIDELITY / "rollout-2026-05-04T09-12-03-019e2b7c-41d0-7a63-9f15-3c8d2e6a0b47.jsonl"
#: Codex CLI: every prompt as a ``response_item`` user message, then as the event.
CLI = FIDELITY / "rollout-2026-05-05T14-01-00-019e2c01-8b3e-7d12-a4c6-5f0e9d8c7b16.jsonl"


def _shape(messages: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(m["role"], [b["type"] for b in m["content"]]) for m in messages]


def _texts(messages: list[dict[str, Any]], role: str) -> list[str]:
    return [b["text"] for m in messages if m["role"] == role and not m.get("meta") for b in m["content"] if "text" in b]


def test_desktop_prompts_recorded_only_as_events_become_user_messages() -> None:
    t = read_transcript(DESKTOP)
    messages = t.document["messages"]
    assert _shape(messages) == [
        ("developer", ["text"]),
        ("user", ["text"]),  # the environment context (meta)
        ("user", ["text"]),
        ("assistant", ["thinking", "tool_call"]),
        ("tool", ["tool_result"]),
        ("assistant", ["text"]),
        ("user", ["text", "input_image", "local_image"]),
        ("assistant", ["text"]),  # the second answer is its own message, after its prompt
    ]
    prompts = _texts(messages, "user")
    assert prompts[0] == "Why does `make lint` fail on CI but not on my machine?"
    assert prompts[1].startswith("Pin it in CI too.") and len(prompts) == 2
    assert t.document["title"] == "Why does `make lint` fail on CI but not on my machine?"
    image, local = messages[6]["content"][1:]
    assert isinstance(image["image_url"], int)  # inline data: its length, not its bytes
    assert local == {"type": "local_image", "path": "/home/dev/Pictures/ci-failure.png"}
    assert messages[6]["timestamp"] == "2026-05-04T09:13:40.020Z"
    assert "event_msg:user_message" not in t.unknown


def test_cli_prompts_written_twice_are_one_message_each() -> None:
    t = read_transcript(CLI)
    messages = t.document["messages"]
    assert _texts(messages, "user") == ["List the TODOs in src/.", "Again please.", "Again please."]
    assert [m["role"] for m in messages] == ["user", "user", "assistant", "user", "user", "assistant"]
    # The events that repeat a prompt are kept verbatim, as every unmapped record is.
    assert t.unknown["event_msg:user_message"] == 3
    assert t.warnings == []


def test_an_event_written_before_its_item_is_one_message_too(tmp_path: Path) -> None:
    lines = CLI.read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]  # the event first, then the response item
    t = parse_codex(tmp_path / "rollout-x.jsonl", b"".join(lines))
    assert _texts(t.document["messages"], "user") == ["List the TODOs in src/.", "Again please.", "Again please."]
    assert t.unknown["response_item:message"] == 1


def test_codex_input_tokens_leave_the_cached_part_out_as_claude_does() -> None:
    t = read_transcript(CLI)
    first, second = (m["usage"] for m in t.document["messages"] if m["role"] == "assistant")
    assert first == {
        "input_tokens": 8000 - 6144,
        "output_tokens": 90,
        "cache_read_tokens": 6144,
        "cache_write_tokens": 0,
    }
    assert second["input_tokens"] == 8300 - 8064 and second["cache_read_tokens"] == 8064
    stats = t.document["stats"]  # the running total of the last count
    assert (stats["input_tokens"], stats["cache_read_tokens"], stats["output_tokens"]) == (16300 - 14208, 14208, 120)


def test_stats_mean_the_same_for_both_tools(vault: Vault, tmp_path: Path) -> None:
    [o] = vault.import_transcripts([DESKTOP])
    stored = json.loads(vault.load_json(o.session_id))  # type: ignore[arg-type]
    assert stored["stats"]["input_tokens"] == 25602 - 21504 and stored["stats"]["cache_read_tokens"] == 21504
    assert b"ghp_FakeDesk70pT0ken" not in vault.load_json(o.session_id)  # type: ignore[arg-type]  # sanitized


def test_a_repeated_item_id_is_counted_and_the_first_wins(tmp_path: Path) -> None:
    lines = CLI.read_bytes().splitlines(keepends=True)
    answer = json.loads(lines[5])
    changed = json.loads(lines[5])
    changed["payload"]["content"][0]["text"] = "Four, in fact."
    data = b"".join(lines[:6]) + json.dumps(answer).encode() + b"\n" + json.dumps(changed).encode() + b"\n"
    t = parse_codex(tmp_path / "rollout-x.jsonl", data)
    assert _texts(t.document["messages"], "assistant") == ["There are three: stock.py:12, orders.py:88, api.py:5."]
    assert t.warnings == [
        "2 record(s) repeat the item id of an earlier record: the first was kept (a copy that differs is kept as a raw event)"
    ]
    assert t.unknown["duplicate item id"] == 1  # the copy that differs, verbatim
    assert "msg_0a1b2c3d4e5f6071" not in " ".join(t.warnings)  # a count, never an id
