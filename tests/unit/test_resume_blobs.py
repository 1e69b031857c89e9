"""``resume --into`` gives the model provider back its own blobs: a Claude thinking block's
``signature`` and a ``redacted_thinking`` block's ``data``, a Codex reasoning item's
``encrypted_content``.  The API verifies or decrypts each one it is sent back, so the sanitizer
keeps them (docs/sanitizer.md, "Structural rules") and the writer writes them as they were; only
a blob the sanitizer did change (a token found inside it) is replaced (docs/capture/resume.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import zstandard

from sessionseal import Vault, find_transcripts, resume_session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
SID = "3c9e1f20-7a4b-4d8e-9f01-6b2c5d8e0a13"
#: Made up in the shape of a signature; a GitHub token (valid checksum, made up) pasted into one.
SIGNATURE = "EqQBCkYIBxgCKkB" + "r7Vw2LmQ9xTz4Kp8Nc3Hd6Fg0JsYb5Ue1Ri7Ow2Aq4Sx9Dv3Ct6Bn8Mk0Ph5Lj2Gf7Hd4Fs"
GHP = "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"


def _blocks(data: bytes, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The content blocks of these kinds in a Claude Code transcript, in order."""
    out = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("message") if isinstance(record, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            out += [b for b in content if isinstance(b, dict) and b.get("type") in kinds]
    return out


def _reasoning(data: bytes) -> list[Any]:
    """The encrypted content of each reasoning item of a Codex rollout, in order."""
    out = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        payload = record.get("payload") if isinstance(record, dict) else None
        if isinstance(payload, dict) and payload.get("type") == "reasoning":
            out.append(payload.get("encrypted_content"))
    return out


def test_claude_thinking_comes_back_signed(vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(FIXTURES / "claude", tmp_path / "in")
    outcomes = vault.import_transcripts(find_transcripts(claude=tmp_path / "in" / "projects"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    cwd = tmp_path / "work"
    cwd.mkdir()
    thinking = 0
    for o in outcomes:
        assert o.session_id is not None
        r = resume_session(vault, o.session_id, into="claude", cwd=str(cwd), execute=False, plaintext=True)
        before = _blocks(Path(o.path).read_bytes(), ("thinking", "redacted_thinking"))
        after = _blocks(Path(r.path).read_bytes(), ("thinking", "redacted_thinking"))
        assert after == before  # each still a thinking block, its signature byte for byte
        assert b"[thinking not kept" not in Path(r.path).read_bytes()
        thinking += sum(1 for b in before if b.get("signature"))
    assert thinking >= 3  # the fixture's signed thinking blocks


def test_codex_reasoning_comes_back_encrypted(vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(FIXTURES / "codex", tmp_path / "in")
    outcomes = vault.import_transcripts(find_transcripts(codex=tmp_path / "in" / "sessions"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    encrypted = 0
    for o in outcomes:
        assert o.session_id is not None
        r = resume_session(vault, o.session_id, into="codex", cwd=str(tmp_path), execute=False, plaintext=True)
        data = Path(o.path).read_bytes()
        if o.path.endswith(".zst"):
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        assert _reasoning(Path(r.path).read_bytes()) == _reasoning(data)  # none left out, none changed
        encrypted += sum(1 for e in _reasoning(data) if isinstance(e, str) and e)
    assert encrypted >= 2


def _claude_session(root: Path, content: list[dict[str, Any]]) -> Path:
    path = root / "projects" / "-home-dev-shop" / f"{SID}.jsonl"
    path.parent.mkdir(parents=True)
    base = {"isSidechain": False, "userType": "external", "cwd": "/home/dev/shop", "sessionId": SID}
    base |= {"version": "2.1.9", "gitBranch": "main"}
    user = base | {"parentUuid": None, "type": "user", "uuid": "00000000-0000-4000-8000-000000000000"}
    user |= {"timestamp": "2026-11-30T10:00:00.000Z", "message": {"role": "user", "content": "why?"}}
    reply = base | {"parentUuid": user["uuid"], "type": "assistant", "uuid": "00000000-0000-4000-8000-000000000001"}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5"}
    reply |= {"timestamp": "2026-11-30T10:00:01.000Z", "message": message | {"content": content}}
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in (user, reply)))
    return path


def test_only_a_redacted_signature_is_replaced(vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A token pasted into a blob is still found (by its own rule): that block cannot be sent
    # back as it was, and becomes a text block saying so; the intact one beside it stays.
    content = [
        {"type": "thinking", "thinking": "first", "signature": SIGNATURE},
        {"type": "thinking", "thinking": "second", "signature": f"EqQBCkYI/{GHP}"},  # a placeholder inside
        {"type": "redacted_thinking", "data": GHP},  # a placeholder, whole
        {"type": "text", "text": "because"},
    ]
    [o] = vault.import_transcripts([_claude_session(tmp_path / "in", content)])
    assert o.session_id is not None
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    r = resume_session(vault, o.session_id, into="claude", cwd=str(tmp_path), execute=False, plaintext=True)
    written = Path(r.path).read_bytes()
    assert GHP.encode() not in written
    placeholder = {"type": "text", "text": "[thinking not kept: its signature was redacted]"}
    assert _blocks(written, ("thinking", "redacted_thinking", "text")) == [
        content[0],
        placeholder,
        placeholder,
        content[3],
    ]


def test_only_a_redacted_reasoning_item_is_left_out(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codex_id = "019d2a11-5c3e-7f40-9a1b-2c3d4e5f6a7c"
    path = tmp_path / "in" / "sessions" / "2026" / "11" / "30" / f"rollout-2026-11-30T10-00-00-{codex_id}.jsonl"
    path.parent.mkdir(parents=True)
    meta = {"id": codex_id, "timestamp": "2026-11-30T10:00:00.000Z", "cwd": "/home/dev/shop"}
    meta |= {"originator": "codex_cli_rs", "cli_version": "0.128.0", "model_provider": "openai", "source": "cli"}
    intact = "gAAAAAB" + "q8Zr3Lm9Xv4Rt7Yp1Wn6Bc3Hd5Fg0JsK2Pa7Ue4Ti9Oy6Nw1Mb5Vc8Xd3Ze0Ag2Sh7Jk4Lf9Qp1Rm6"
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "why?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": intact},
        {"type": "reasoning", "id": "rs_2", "summary": [], "content": None, "encrypted_content": f"gAAAAAB-{GHP}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "because"}]},
    ]
    lines: list[dict[str, Any]] = [{"timestamp": "2026-11-30T10:00:00.000Z", "type": "session_meta", "payload": meta}]
    lines += [
        {"timestamp": f"2026-11-30T10:00:0{n + 1}.000Z", "type": "response_item", "payload": p}
        for n, p in enumerate(items)
    ]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in lines))
    [o] = vault.import_transcripts([path])
    assert o.session_id is not None
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    r = resume_session(vault, o.session_id, into="codex", cwd=str(tmp_path), execute=False, plaintext=True)
    written = Path(r.path).read_bytes()
    assert GHP.encode() not in written
    assert _reasoning(written) == [intact]  # the spoilt item left out, the intact one as it was
