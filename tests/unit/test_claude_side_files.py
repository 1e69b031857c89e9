"""Claude Code's tool-results files (issue 22): large tool outputs that Claude Code saves beside
the transcript, in ``<session>/tool-results/<tool_use_id>.txt``, keeping only a preview in the
transcript (anthropics/claude-code#23948), and that hold whatever the tool printed (``.env``
values: anthropics/claude-code#18223).  They come in with their session, sanitized, a file that
appears later comes in on the next import, and ``--remove-originals`` removes them with the
transcript or keeps everything.

The fixture (tests/fixtures/transcripts/claude/side-files) is in Claude Code 2.1's shapes, with
synthetic values: a Bash result in ``<persisted-output>`` naming its file, a Grep result that
names none (paired by its tool_use_id), and a file no record names (the agent stopped first).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import Vault, find_transcripts
from sessionseal._transcripts import claude_side_files, read_transcript
from sessionseal._vault._importer import TranscriptImporter
from sessionseal.cli import cli
from sessionseal.models import Session
from tests.memkeyring import MemoryKeyring

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "claude" / "side-files"
SID = "5b2e9c4a-1f3d-4a6b-8e7c-9d0a1b2c3e4f"
BASH, GREP, ORPHAN = (
    "toolu_01DeployEnvPrint0000000001",
    "toolu_01GrepAccessLog000000002",
    "toolu_01MigrateDryRun0000000003",
)
#: The fake token in the Bash output's file (never in the transcript itself: only its preview is).
SECRET = "ghp_F4keT0kenInT00lResu1tsF1le0000042"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture as ``<config>/projects/-home-dev-shop``, quiet for an hour."""
    dest = tmp_path / "claude" / "projects" / "-home-dev-shop"
    shutil.copytree(FIX / "-home-dev-shop", dest)
    _quiet(*_all_files(dest))
    return dest


def _main(project: Path) -> Path:
    return project / f"{SID}.jsonl"


def _results_dir(project: Path) -> Path:
    return project / SID / "tool-results"


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _quiet(*files: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    for f in files:
        os.utime(f, (then, then))


def _results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["tool_call_id"]: b for m in doc["messages"] for b in m["content"] if b["type"] == "tool_result"}


# -- reading --------------------------------------------------------------------------------


def test_a_result_gets_the_whole_output_of_the_file_it_names() -> None:
    t = read_transcript(FIX / "-home-dev-shop" / f"{SID}.jsonl")
    doc = t.document
    Session.model_validate(doc)
    folder = FIX / "-home-dev-shop" / SID / "tool-results"
    bash = _results(doc)[BASH]
    assert bash["content"] == (folder / f"{BASH}.txt").read_text()  # the whole output, not the preview
    assert SECRET in bash["content"]  # the parser passes secrets through; the vault redacts them
    assert bash["persisted_output"]["file"] == f"{BASH}.txt"
    assert bash["persisted_output"]["inline"].startswith("<persisted-output>\nOutput too large (")
    # A result that names no file is paired with <tool_use_id>.txt; what it held is kept.
    grep = _results(doc)[GREP]
    assert grep["content"] == (folder / f"{GREP}.txt").read_text()
    assert grep["persisted_output"]["inline"][0]["text"].endswith("[output truncated]")
    # The file no record names is kept as a raw event, by name: not an unknown record.
    [orphan] = [e for e in doc["raw_events"] if "file" in e]
    assert orphan["file"] == f"tool-results/{ORPHAN}.txt"
    assert orphan["record"] == {
        "type": "tool-results-file",
        "name": f"{ORPHAN}.txt",
        "text": (folder / f"{ORPHAN}.txt").read_text(),
    }
    assert t.unknown == {} and t.warnings == []
    assert doc["source"]["tool_result_paths"] == [str(folder / f"{n}.txt") for n in (BASH, GREP, ORPHAN)]
    assert set(doc["source"]["side_stamps"]) == set(doc["source"]["tool_result_paths"])


def test_the_path_named_may_be_a_windows_path(tmp_path: Path) -> None:
    project = tmp_path / "C--Users-dev-shop"
    shutil.copytree(FIX / "-home-dev-shop", project)
    main = _main(project)
    data = main.read_text().replace(
        f"/home/dev/.claude/projects/-home-dev-shop/{SID}/tool-results/",
        f"C:\\\\Users\\\\dev\\\\.claude\\\\projects\\\\C--Users-dev-shop\\\\{SID}\\\\tool-results\\\\",
    )
    assert "C:\\\\Users" in data
    main.write_text(data)
    os.rename(_results_dir(project) / f"{BASH}.txt", _results_dir(project) / "saved-elsewhere.txt")
    main.write_text(data.replace(f"tool-results\\\\{BASH}.txt", "tool-results\\\\saved-elsewhere.txt"))
    doc = read_transcript(main).document
    assert _results(doc)[BASH]["persisted_output"]["file"] == "saved-elsewhere.txt"  # by the path, not the id


def test_a_file_that_is_not_utf8_or_not_regular_is_left_alone(project: Path, tmp_path: Path) -> None:
    folder = _results_dir(project)
    (folder / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the agent's")
    (folder / "link.txt").symlink_to(outside)
    t = read_transcript(_main(project))
    assert "tool-results file image.bin is not UTF-8 text: not imported, left in place" in t.warnings
    assert any(w.startswith("tool-results file link.txt was not read") for w in t.warnings)
    assert str(folder / "image.bin") not in t.document["source"]["tool_result_paths"]
    assert str(folder / "image.bin") in t.document["source"]["side_stamps"]  # seen, so no change next time
    assert "not the agent's" not in json.dumps(t.document)  # a link is not followed
    assert claude_side_files(_main(project)) == sorted([*(folder.glob("toolu_*.txt")), folder / "image.bin"])


# -- importing ------------------------------------------------------------------------------


def test_tool_results_are_imported_sanitized_and_counted(vault: Vault, project: Path) -> None:
    orphan = _results_dir(project) / f"{ORPHAN}.txt"
    other = "ghp_" + "0rphanF1le" * 3 + "Tok000042"  # a token in the file no record names
    orphan.write_text(orphan.read_text() + f"export GH_TOKEN={other}\n")
    main = _main(project)
    main.write_text(main.read_text().replace("# printenv for the deploy job", f"# printenv {other}"))
    _quiet(orphan, main)
    [o] = vault.import_transcripts(find_transcripts(claude=project.parent))
    assert (o.action, o.tool_results, o.messages) == ("new", 3, 6)
    stored = vault.load_json(o.session_id)  # type: ignore[arg-type]
    assert SECRET.encode() not in stored  # the fake token of the .txt file is redacted
    assert other.encode() not in stored  # in the raw event and in the preview kept as "inline"
    assert b'"persisted_output"' in stored and b"tool-results-file" in stored
    assert sum(o.redactions.values()) >= 1
    assert b"LINE_1199=value 1199 of the service configuration" in stored  # past the 2 KB preview
    assert b"migration step 2499: ok" in stored  # the file no record names
    [again] = vault.import_transcripts([_main(project)])
    assert again.action == "unchanged"


def test_a_tool_results_file_written_later_comes_in_on_the_next_import(vault: Vault, project: Path) -> None:
    main = _main(project)
    [first] = vault.import_transcripts([main])
    assert first.tool_results == 3
    late = _results_dir(project) / "toolu_01LateWrite00000000000004.txt"
    late.write_text("written after the import\n")  # the transcript's bytes do not change
    [o] = vault.import_transcripts([main])
    assert (o.action, o.tool_results) == ("updated", 4)  # before: "unchanged", and the file never came in
    assert b"written after the import" in vault.load_json(o.session_id)  # type: ignore[arg-type]
    grown = _results_dir(project) / f"{ORPHAN}.txt"
    with grown.open("a") as f:
        f.write("migration step 2500: ok\n")  # a file that changed
    [o] = vault.import_transcripts([main])
    assert o.action == "updated" and b"migration step 2500: ok" in vault.load_json(o.session_id)  # type: ignore[arg-type]
    os.unlink(late)  # a side file gone is no change: what came in of it stays
    [o] = vault.import_transcripts([main])
    assert o.action == "unchanged"


def test_a_sub_agent_file_written_later_comes_in_on_the_next_import(vault: Vault, project: Path) -> None:
    [first] = vault.import_transcripts([_main(project)])
    agents = project / SID / "subagents"
    agents.mkdir()
    record = {
        "parentUuid": None,
        "isSidechain": True,
        "agentId": "b7c1d2e",
        "sessionId": SID,
        "type": "user",
        "uuid": "b7000000-0000-4000-8000-000000000001",
        "timestamp": "2026-04-25T07:00:15.000Z",
        "message": {"role": "user", "content": "List the migration files"},
    }
    (agents / "agent-b7c1d2e.jsonl").write_text(json.dumps(record) + "\n")
    [o] = vault.import_transcripts([_main(project)])
    assert (o.action, o.messages) == ("updated", first.messages + 1)  # before: "unchanged"
    doc = json.loads(vault.load_json(o.session_id))  # type: ignore[arg-type]
    assert [m["sidechain"] for m in doc["messages"] if "sidechain" in m] == ["b7c1d2e"]


def test_cli_json_counts_tool_results(
    memory_keyring: MemoryKeyring, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(project.parents[2] / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(project.parents[1]))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--json"])
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.output)["files"]
    assert (row["action"], row["tool_results"]) == ("new", 3)


# -- removing -------------------------------------------------------------------------------


def test_remove_originals_takes_the_tool_results_and_the_empty_directories(vault: Vault, project: Path) -> None:
    (project / SID / "subagents").mkdir()
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert o.removed and o.kept is None, o.error
    assert not (project / SID).exists()  # tool-results/, subagents/ and <session>/: empty, removed
    assert project.is_dir() and list(project.iterdir()) == []  # the project directory stays
    assert b"migration step 2499" in vault.load_json(o.session_id)  # type: ignore[arg-type]


def test_a_directory_with_something_else_in_it_stays(vault: Vault, project: Path) -> None:
    memory = project / SID / "session-memory"
    memory.mkdir()
    (memory / "summary.md").write_text("# Session\n")
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert o.removed and not _main(project).exists() and not _results_dir(project).exists()
    assert (memory / "summary.md").read_text() == "# Session\n"  # rmdir, never a tree


def _meanwhile(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Make *change* happen after the session is stored and before the removal checks: what
    the agent does when it writes between an import's read and its removal (no sleeping)."""
    store = TranscriptImporter.store

    def agent_writes_meanwhile(self: TranscriptImporter, *args: Any, **kwargs: Any) -> Any:
        counts = store(self, *args, **kwargs)
        change()
        return counts

    monkeypatch.setattr(TranscriptImporter, "store", agent_writes_meanwhile)


def test_a_tool_results_file_that_changed_keeps_every_file(
    vault: Vault, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown = _results_dir(project) / f"{GREP}.txt"

    def grow() -> None:
        grown.write_text(grown.read_text() + "written while importing\n")
        _quiet(grown)  # even with an old time: it is not what was read

    before = _all_files(project)
    _meanwhile(monkeypatch, grow)
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("new", False, "changed")
    assert f"its tool-results file {GREP}.txt" in (o.error or "")
    assert _all_files(project) == before  # every file kept
    monkeypatch.undo()
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)  # the next run takes it
    assert (o.action, o.removed) == ("updated", True), o.error
    assert b"written while importing" in vault.load_json(o.session_id)  # type: ignore[arg-type]
    assert not (project / SID).exists()


def test_a_recent_tool_results_file_keeps_the_transcript(vault: Vault, project: Path) -> None:
    os.utime(_results_dir(project) / f"{ORPHAN}.txt", None)  # just written
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert (o.removed, o.kept) == (False, "recent") and f"{ORPHAN}.txt" in (o.error or "")
    assert len(_all_files(project)) == 4


def test_a_file_left_alone_does_not_hold_the_rest_back(vault: Vault, project: Path) -> None:
    (_results_dir(project) / "image.bin").write_bytes(b"\xff\xfe\x00binary")
    _quiet(_results_dir(project) / "image.bin")
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert o.removed, o.error
    assert _all_files(project) == [_results_dir(project) / "image.bin"]  # not imported: not removed


def test_a_side_file_not_imported_yet_keeps_everything(
    vault: Vault, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _results_dir(project) / "toolu_01Arrived0000000000000005.txt"

    def arrive() -> None:
        new.write_text("arrived after the read\n")
        _quiet(new)

    _meanwhile(monkeypatch, arrive)
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    # Removing the transcript now would leave that file behind, never imported.
    assert (o.removed, o.kept) == (False, "changed") and "not imported yet" in (o.error or "")
    assert new.exists() and _main(project).exists() and len(_all_files(project)) == 5


def test_a_tool_results_file_without_its_stamp_is_not_removed(
    vault: Vault, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stored session that names a tool-results file but not what it was when read (an
    # older or damaged record): nothing proves the file is what the vault holds.
    from sessionseal._transcripts import _files

    read = _files._claude_tool_results

    def without_one_stamp(path: Path, max_bytes: int) -> Any:
        texts, stamps, notes = read(path, max_bytes)
        stamps.pop(str(_results_dir(project) / f"{GREP}.txt"))
        return texts, stamps, notes

    monkeypatch.setattr(_files, "_claude_tool_results", without_one_stamp)
    before = _all_files(project)
    [o] = vault.import_transcripts([_main(project)], remove_originals=True)
    assert (o.removed, o.kept) == (False, "changed") and f"{GREP}.txt" in (o.error or "")
    assert _all_files(project) == before
