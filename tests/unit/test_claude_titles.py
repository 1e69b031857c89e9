"""The title of an imported Claude Code session (issue 22, import fidelity).

Claude Code writes ``summary`` records for the conversation that ends at their ``leafUuid``; a
resumed session's file starts with the summaries of *earlier* conversations, whose leaves are
in other files (anthropics/claude-code#2597): they must not title this one.  A session that
starts with a slash command (``<command-name>/init</command-name>``, its ``<command-message>``
and ``<command-args>``, a caveat and the command's expanded prompt as meta records) is titled
by its first typed request, or by the command itself when nothing else was typed.

The fixtures (tests/fixtures/transcripts/claude/titles) are in Claude Code 2.1's shapes, with
synthetic values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionseal import Vault
from sessionseal._transcripts import parse_claude, read_transcript
from sessionseal.models import Session

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "claude" / "titles" / "-home-dev-shop"
RESUMED = FIX / "8c1f4e2a-3b5d-4c6e-9f70-1a2b3c4d5e6f.jsonl"
COMMAND_ONLY = FIX / "9d2a5f3b-4c6e-4d7f-8a81-2b3c4d5e6f70.jsonl"
OWN_SUMMARY = FIX / "ae3b6a4c-5d7f-4e80-9b92-3c4d5e6f7081.jsonl"


def _line(**record: Any) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _user(uid: str, content: Any, **extra: Any) -> bytes:
    return _line(type="user", uuid=uid, sessionId="s", message={"role": "user", "content": content}, **extra)


def test_summaries_of_earlier_conversations_do_not_title_a_resumed_session() -> None:
    doc = read_transcript(RESUMED).document
    Session.model_validate(doc)
    # Not "Orders API pagination cursor bug": that conversation's leaf is in another file.
    assert doc["title"] == "Add a section on running the integration tests against the staging database"


def test_a_session_that_is_only_a_slash_command_is_titled_by_it() -> None:
    doc = read_transcript(COMMAND_ONLY).document
    assert doc["title"] == "/review-pr 142"  # not ""
    assert doc["messages"][1].get("meta") is True  # the expanded prompt is kept, as meta


def test_a_summary_of_this_conversation_titles_it() -> None:
    # One summary at the top for another conversation, one at the end whose leaf is here.
    assert read_transcript(OWN_SUMMARY).document["title"] == "Checkout total rounding fixed"


@pytest.mark.parametrize(
    ("records", "title"),
    [
        # A summary without a leaf cannot be placed: the first request titles the session.
        ([_line(type="summary", summary="from nowhere"), _user("u1", "the request")], "the request"),
        # The last summary whose leaf is in the file wins.
        (
            [
                _user("u1", "first"),
                _line(type="summary", summary="older", leafUuid="u1"),
                _user("u2", "second"),
                _line(type="summary", summary="newer", leafUuid="u2"),
                _line(type="summary", summary="another file's", leafUuid="u9"),
            ],
            "newer",
        ),
        # A blank summary is no title.
        ([_user("u1", "the request"), _line(type="summary", summary="  ", leafUuid="u1")], "the request"),
        # The caveat in its newer tag, even without isMeta, is not a request.
        (
            [
                _user("u1", "<local-command-caveat>Caveat: The messages below were generated</local-command-caveat>"),
                _user("u2", "<command-name>/clear</command-name>\n<command-message>clear</command-message>"),
                _user("u3", "<local-command-stdout></local-command-stdout>"),
                _user("u4", [{"type": "text", "text": "fix the flaky test"}]),
            ],
            "fix the flaky test",
        ),
        # A title the user gave wins, then Claude Code's; the last of each kind.
        (
            [
                _line(type="custom-title", customTitle="checkout rounding", sessionId="s"),
                _user("u1", "the request"),
                _line(type="ai-title", aiTitle="Fix rounding", sessionId="s"),
                _line(type="custom-title", customTitle="checkout rounding, take 2", sessionId="s"),
                _line(type="summary", summary="Rounding fixed", leafUuid="u1"),
            ],
            "checkout rounding, take 2",
        ),
        (
            [
                _line(type="ai-title", aiTitle="Fix rounding", sessionId="s"),
                _user("u1", "the request"),
                _line(type="summary", summary="Rounding fixed", leafUuid="u1"),
            ],
            "Fix rounding",
        ),
        # A command without arguments; the tags in either order; a sub-agent's never counts.
        (
            [
                _user("u0", "<command-name>/agents</command-name>", isSidechain=True, agentId="a1"),
                _user("u1", "<command-message>init</command-message>\n<command-name>/init</command-name>"),
                _user("u2", "Please analyze this codebase", isMeta=True),
            ],
            "/init",
        ),
    ],
)
def test_title_rules(tmp_path: Path, records: list[bytes], title: str) -> None:
    assert parse_claude(tmp_path / "s.jsonl", b"".join(records)).document["title"] == title


def test_the_title_is_stored_with_the_session(vault: Vault) -> None:
    [o] = vault.import_transcripts([RESUMED])
    [summary] = vault.list()
    assert summary.title == "Add a section on running the integration tests against the staging database"
    assert o.action == "new"
