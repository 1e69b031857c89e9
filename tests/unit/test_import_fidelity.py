"""Import fidelity (issue 22): a file that grew is appended even when its first new record
continues the last stored reply (the stored result is the one a fresh import gives), a last
line without its newline is read when it is whole, and records that repeat an id are counted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from sessionseal import KeychainProvider, Vault
from sessionseal._transcripts import parse_claude
from tests.memkeyring import MemoryKeyring

FIDELITY = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "fidelity"
#: Claude Code: a streamed reply written as one record per content block, one message id.
CLAUDE_BLOCKS = FIDELITY / "5b2e8f14-9c3d-4a7e-b061-d4f2a8c9e315.jsonl"
DESKTOP = FIDELITY / "rollout-2026-05-04T09-12-03-019e2b7c-41d0-7a63-9f15-3c8d2e6a0b47.jsonl"
CLI = FIDELITY / "rollout-2026-05-05T14-01-00-019e2c01-8b3e-7d12-a4c6-5f0e9d8c7b16.jsonl"
FILES = [CLAUDE_BLOCKS, DESKTOP, CLI]


def _vault(root: Path) -> Vault:
    return Vault.init(root, key_provider=KeychainProvider(backend=MemoryKeyring()))


def _stored(vault: Vault, sid: Any) -> dict[str, Any]:
    """The stored session document, without what depends on when the file was written and
    the tally of redactions made (an append sanitizes the fields it sets again, the title
    among them: the tally counts that work, not the secrets in the document)."""
    doc: dict[str, Any] = json.loads(vault.load_json(sid))
    doc["source"].pop("mtime_ns")
    doc.pop("redactions", None)
    return doc


def _boundaries(data: bytes) -> list[int]:
    """Where each record ends (after its newline): the places an agent may have got to."""
    ends, pos = [], 0
    while (pos := data.find(b"\n", pos) + 1) > 0:
        ends.append(pos)
    return ends


def _one_shot(tmp_path: Path, source: Path) -> tuple[Path, dict[str, Any]]:
    """The file at its own name in a directory of its own, and a fresh import of it whole."""
    f = tmp_path / "agent" / source.name
    f.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, f)
    with _vault(tmp_path / "one-shot") as vault:
        [o] = vault.import_transcripts([f])
        assert o.action == "new"
        return f, _stored(vault, o.session_id)


@pytest.mark.parametrize("source", FILES, ids=lambda p: p.name[:16])
def test_every_cut_then_the_rest_is_an_append_that_equals_a_fresh_import(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    f, whole = _one_shot(tmp_path, source)
    for i, cut in enumerate(_boundaries(data)[:-1]):
        f.write_bytes(data[:cut])
        with _vault(tmp_path / f"v{i}") as vault:
            [first] = vault.import_transcripts([f])
            f.write_bytes(data)
            [rest] = vault.import_transcripts([f])
            assert (first.action, rest.action) == ("new", "appended"), f"cut after record {i + 1}"
            assert _stored(vault, rest.session_id) == whole, f"cut after record {i + 1}"
            assert vault.checkpoints(rest.session_id) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("source", FILES, ids=lambda p: p.name[:16])
def test_a_record_at_a_time_is_one_append_each_and_ends_as_a_fresh_import(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    f, whole = _one_shot(tmp_path, source)
    with _vault(tmp_path / "step") as vault:
        actions = []
        for cut in _boundaries(data):
            f.write_bytes(data[:cut])
            [o] = vault.import_transcripts([f])
            actions.append(o.action)
        assert actions == ["new"] + ["appended"] * (len(actions) - 1)
        assert _stored(vault, o.session_id) == whole
        generation = vault.list()[0].generation
        assert vault.verify().ok  # the extended messages read back as they were stored
        assert vault.list()[0].generation == generation


def test_a_reply_that_went_on_is_extended_in_place(tmp_path: Path) -> None:
    data = CLAUDE_BLOCKS.read_bytes()
    cut = _boundaries(data)[2]  # the thinking and the text of the first reply; its tool call next
    f = tmp_path / CLAUDE_BLOCKS.name
    f.write_bytes(data[:cut])
    with _vault(tmp_path / "v") as vault:
        [o] = vault.import_transcripts([f])
        reply = vault.load(o.session_id).messages[-1]  # type: ignore[arg-type]
        assert [b.type for b in reply.content] == ["thinking", "text"]
        generation = vault.list()[0].generation
        f.write_bytes(data)
        [grown] = vault.import_transcripts([f])
        assert grown.action == "appended" and vault.list()[0].generation == generation
        messages = vault.load(o.session_id).messages  # type: ignore[arg-type]
        assert [b.type for b in messages[1].content] == ["thinking", "text", "tool_call"]
        assert messages[1].usage.output_tokens == 95  # type: ignore[union-attr]  # the largest count
        assert b"npm_FakeCla5deT0ken" not in vault.load_json(o.session_id)  # type: ignore[arg-type]


def test_a_changed_earlier_message_is_still_stored_anew(tmp_path: Path) -> None:
    data = CLAUDE_BLOCKS.read_bytes()
    f = tmp_path / CLAUDE_BLOCKS.name
    f.write_bytes(data[: _boundaries(data)[6]])
    with _vault(tmp_path / "v") as vault:
        vault.import_transcripts([f])
        # The agent rewrote its file: the first prompt differs (its id too), and it grew.
        f.write_bytes(data.replace(b"7d0c0001-", b"7d0c0099-"))
        [o] = vault.import_transcripts([f])
        assert o.action == "updated" and len(vault.checkpoints(o.session_id)) == 1  # type: ignore[arg-type]


# -- a last line without its newline (item 3) --------------------------------------------------


def _quiet(f: Path) -> None:
    then = time.time() - 3600
    os.utime(f, (then, then))


def test_a_whole_last_line_without_its_newline_is_read_and_consumed(tmp_path: Path) -> None:
    data = CLAUDE_BLOCKS.read_bytes()
    t = parse_claude(tmp_path / "s.jsonl", data.rstrip(b"\n"))
    assert t.consumed == len(data) - 1 and t.records == data.count(b"\n") and t.warnings == []
    assert t.document["messages"][-1]["content"][0]["text"] == "Pinned."
    torn = parse_claude(tmp_path / "s.jsonl", data.rstrip(b"\n")[:-1])  # one byte short: not an object
    assert torn.consumed == data.rfind(b"\n", 0, len(data) - 1) + 1
    assert torn.warnings == ["line 12 is incomplete (no newline yet); left for the next read"]


def test_the_newline_and_more_lines_after_it_are_an_append(tmp_path: Path) -> None:
    data = CLAUDE_BLOCKS.read_bytes()
    ends = _boundaries(data)
    f = tmp_path / CLAUDE_BLOCKS.name
    f.write_bytes(data[: ends[5] - 1])  # six records, the last without its newline
    _quiet(f)
    with _vault(tmp_path / "v") as vault:
        [o] = vault.import_transcripts([f], remove_originals=True)
        assert (o.action, o.messages) == ("new", 4)  # the sixth record's reply is in
        # Whole, but the agent may still add its newline: the file is kept until it does.
        assert (o.removed, o.kept) == (False, "incomplete")
        f.write_bytes(data[: ends[5]])  # the newline alone
        [nl] = vault.import_transcripts([f])
        assert (nl.action, nl.messages) == ("appended", 4)
        f.write_bytes(data)
        _quiet(f)
        [rest] = vault.import_transcripts([f], remove_originals=True)
        assert (rest.action, rest.removed) == ("appended", True) and not f.exists()
        source = json.loads(vault.load_json(o.session_id))["source"]  # type: ignore[arg-type]
        assert source["consumed"] == len(data) and source["records"] == 12


# -- records that repeat an id (item 4) --------------------------------------------------------


def test_a_repeated_uuid_is_counted_and_the_first_record_wins(tmp_path: Path) -> None:
    lines = CLAUDE_BLOCKS.read_bytes().splitlines(keepends=True)
    replay = lines[6]  # "Do it." written again, as a resumed session replays its tail
    changed = json.loads(lines[6])
    changed["message"]["content"] = "Do something else."
    data = b"".join(lines[:7]) + replay + json.dumps(changed).encode() + b"\n" + b"".join(lines[7:])
    t = parse_claude(tmp_path / "s.jsonl", data)
    prompts = [m["content"][0]["text"] for m in t.document["messages"] if m["role"] == "user"]
    assert prompts == [json.loads(lines[0])["message"]["content"], "Do it."]
    assert t.warnings == [
        "2 record(s) repeat the uuid of an earlier record: the first was kept (a copy that differs is kept as a raw event)"
    ]
    [kept] = [e for e in t.document["raw_events"] if e["record"] == changed]
    assert kept["line"] == 9 and t.unknown["duplicate uuid"] == 1


# -- the extend operation (docs/spec/container-v1.md, "Appends") -------------------------------


def test_extend_adds_blocks_to_the_last_message_and_counts_no_message() -> None:
    from sessionseal import _events

    doc: dict[str, Any] = {"messages": [{"role": "user", "content": []}, {"role": "assistant", "content": [{"a": 1}]}]}
    ops = _events.check_ops([{"op": "extend", "value": {"content": [{"b": 2}], "usage": {"output_tokens": 9}}}])
    _events.apply(doc, ops)
    assert doc["messages"][-1] == {"role": "assistant", "content": [{"a": 1}, {"b": 2}], "usage": {"output_tokens": 9}}
    empty: dict[str, Any] = {"messages": []}
    _events.apply(empty, ops)
    assert empty == {"messages": []}  # nothing to extend: nothing changes
    meta = _events.summary_of(doc, 100)
    assert _events.summary_after(meta, ops, 10)["message_count"] == 2
    for bad in ({}, {"content": "text"}):
        with pytest.raises(ValueError, match="content"):  # read as an integrity failure
            _events.check_ops([{"op": "extend", "value": bad}])


def test_a_session_stamped_before_issue_22_is_stored_anew_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._vault import _importer

    data = DESKTOP.read_bytes()
    f, whole = _one_shot(tmp_path, DESKTOP)
    ends = _boundaries(data)
    f.write_bytes(data[: ends[10]])
    with _vault(tmp_path / "v") as vault, monkeypatch.context() as old_writer:
        # What an import of before issue 22 recorded: [id, blocks] (its parser dropped the
        # prompts of this rollout and kept Codex's token counts).
        old_writer.setattr(_importer, "_last_stamp", lambda ms: [ms[-1].get("id"), len(ms[-1]["content"])])
        [o] = vault.import_transcripts([f])
        old_writer.undo()
        f.write_bytes(data[: ends[-2]])
        [anew] = vault.import_transcripts([f])
        assert anew.action == "updated" and len(vault.checkpoints(o.session_id)) == 1  # type: ignore[arg-type]
        f.write_bytes(data)
        [rest] = vault.import_transcripts([f])
        assert rest.action == "appended" and _stored(vault, o.session_id) == whole
