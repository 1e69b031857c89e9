"""Importing Gemini CLI sessions (issue 22): sanitized, idempotent, a rewritten file appended
only when its stored messages are unchanged, originals removed only after the same proofs as
the other tools' (docs/importing.md), a ``.json`` document complete when it parses whole."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import Vault, find_transcripts
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring
from tests.unit.test_gemini_transcripts import AWS, GHP, NOTES, NOTES_ID, PG, WEBSHOP, WEBSHOP_ID


def _quiet(*files: Path, seconds: float = 3600) -> None:
    """Set a file's time *seconds* in the past: no agent has written it since (no sleeping)."""
    then = time.time() - seconds
    for f in files:
        os.utime(f, (then, then))


@pytest.fixture
def gemini_home(tmp_path: Path) -> Path:
    """A ``~/.gemini`` with the two fixture sessions, as Gemini CLI lays them out."""
    home = tmp_path / "home" / ".gemini"
    shutil.copytree(WEBSHOP.parents[2], home / "tmp")
    return home


def _webshop(home: Path) -> Path:
    return home / "tmp" / "webshop" / "chats" / WEBSHOP.name


def _notes(home: Path) -> Path:
    return home / "tmp" / NOTES.parents[1].name / "chats" / NOTES.name


def _rewrite(path: Path, change: Any) -> None:
    """Gemini CLI's own update of an older session file: read, change, write the whole file."""
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2))


def _sid(outcome: Any) -> uuid.UUID:
    assert outcome.session_id is not None
    return uuid.UUID(str(outcome.session_id))


def _stored(vault: Vault, sid: Any) -> str:
    return json.dumps(vault.load(sid).model_dump(mode="json"))


def test_gemini_sessions_are_imported_sanitized_and_idempotent(vault: Vault, gemini_home: Path) -> None:
    paths = find_transcripts(gemini=gemini_home)
    assert paths == sorted([_webshop(gemini_home), _notes(gemini_home)])
    by_tool = {o.source_id: o for o in vault.import_transcripts(paths)}
    web, notes = by_tool[WEBSHOP_ID], by_tool[NOTES_ID]
    assert (web.action, web.tool, web.messages) == ("new", "gemini-cli", 9)
    assert (notes.action, notes.messages, notes.unknown) == ("new", 4, {"message:plan_update": 1, "(no type)": 1})
    assert sum(web.redactions.values()) >= 2 and sum(notes.redactions.values()) >= 1
    stored = _stored(vault, web.session_id)
    assert GHP not in stored and AWS not in stored  # redacted in the stored session
    assert PG not in _stored(vault, notes.session_id)
    session = vault.load(_sid(web))
    assert session.tags == ["gemini-cli"] and session.workspace == "/home/dev/webshop"
    again = vault.import_transcripts(paths)
    assert [o.action for o in again] == ["unchanged", "unchanged"]
    assert len(vault.list()) == 2


def test_a_rewritten_session_that_only_grew_is_appended(vault: Vault, gemini_home: Path) -> None:
    f = _webshop(gemini_home)
    [first] = vault.import_transcripts([f])
    generation = vault.list()[0].generation

    def one_more_turn(record: dict[str, Any]) -> None:
        record["messages"] += [
            {"id": "u-more", "timestamp": "2026-03-16T09:25:00.000Z", "type": "user", "content": "and the docs?"},
            {"id": "g-more", "timestamp": "2026-03-16T09:25:09.000Z", "type": "gemini", "content": "Updated."},
        ]
        record["lastUpdated"] = "2026-03-16T09:25:09.100Z"

    _rewrite(f, one_more_turn)
    [grown] = vault.import_transcripts([f])
    assert (grown.action, grown.messages) == ("appended", 11)
    assert vault.list()[0].generation == generation  # appended in place, not stored anew
    session = vault.load(_sid(first))
    assert [m.id for m in session.messages][-2:] == ["u-more", "g-more"] and len(session.messages) == 11
    assert vault.checkpoints(first.session_id) == []  # type: ignore[arg-type]
    [same] = vault.import_transcripts([f])
    assert same.action == "unchanged"


def test_a_rewritten_session_whose_stored_messages_changed_is_updated(vault: Vault, gemini_home: Path) -> None:
    f = _webshop(gemini_home)
    [first] = vault.import_transcripts([f])

    def counted_and_grown(record: dict[str, Any]) -> None:
        # Gemini adds the token count to the last reply after writing it, then goes on.
        record["messages"][-1]["tokens"] = {"input": 1, "output": 1, "cached": 0, "total": 2}
        record["messages"].append({"id": "u-x", "timestamp": "2026-03-16T09:30:00Z", "type": "user", "content": "ok"})

    _rewrite(f, counted_and_grown)
    [changed] = vault.import_transcripts([f])
    assert (changed.action, changed.messages) == ("updated", 10)
    session = vault.load(_sid(first))
    assert session.messages[8].usage is not None and session.messages[8].usage.output_tokens == 1
    assert [c.reason for c in vault.checkpoints(first.session_id)] == ["manual"]  # type: ignore[arg-type]


def test_an_appended_jsonl_session_is_appended(vault: Vault, gemini_home: Path) -> None:
    f = _notes(gemini_home)
    [first] = vault.import_transcripts([f])
    with open(f, "a") as out:
        out.write(json.dumps({"id": "u4", "timestamp": "2026-03-17T14:40:00Z", "type": "user", "content": "thanks"}))
        out.write("\n")
    [grown] = vault.import_transcripts([f])
    assert (grown.action, grown.messages) == ("appended", 5)
    with open(f, "a") as out:
        out.write(json.dumps({"$rewindTo": "u4"}) + "\n")  # the user rewinds: no longer a prefix
    [rewound] = vault.import_transcripts([f])
    assert (rewound.action, rewound.messages) == ("updated", 4)
    assert [m.id for m in vault.load(_sid(first)).messages] == ["u1", "g1", "u3", "g3"]


def test_a_session_file_given_by_path_is_recognised(vault: Vault, gemini_home: Path, tmp_path: Path) -> None:
    # As a hook or `import-transcripts FILE` gives it: any name, told by its content.
    renamed = tmp_path / "from-hook.jsonl"
    shutil.copy(_notes(gemini_home), renamed)
    [o] = vault.import_transcripts([renamed])
    assert (o.action, o.tool, o.source_id) == ("new", "gemini-cli", NOTES_ID)


# -- --remove-originals -----------------------------------------------------------------------


def test_remove_originals_after_a_verified_read_back(vault: Vault, gemini_home: Path) -> None:
    web, notes = _webshop(gemini_home), _notes(gemini_home)
    _quiet(web, notes)
    outcomes = vault.import_transcripts([web, notes], remove_originals=True)
    assert [(o.removed, o.kept) for o in outcomes] == [(True, None), (True, None)]
    assert not web.exists() and not notes.exists()
    assert len(vault.load(outcomes[0].session_id).messages) == 9  # type: ignore[arg-type]


def test_a_recent_or_rewritten_session_is_kept(vault: Vault, gemini_home: Path, monkeypatch: Any) -> None:
    from sessionseal._vault._importer import TranscriptImporter

    f = _webshop(gemini_home)
    _quiet(f, seconds=30)  # within the quiet period
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("new", False, "recent") and f.exists()
    store = TranscriptImporter.store

    def gemini_rewrites_meanwhile(self: TranscriptImporter, *args: Any, **kwargs: Any) -> Any:
        counts = store(self, *args, **kwargs)
        _rewrite(f, lambda r: r["messages"].append({"id": "late", "type": "user", "content": "more"}))
        _quiet(f)  # even with an old time: it is not what was read
        return counts

    _rewrite(f, lambda r: r.update(summary="Fix the checkout total"))
    _quiet(f)
    monkeypatch.setattr(TranscriptImporter, "store", gemini_rewrites_meanwhile)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("appended", False, "changed") and f.exists()
    monkeypatch.undo()
    [rest] = vault.import_transcripts([f], remove_originals=True)
    assert (rest.action, rest.messages, rest.removed) == ("appended", 10, True) and not f.exists()
    assert vault.load(_sid(rest)).title == "Fix the checkout total"


def test_a_half_written_json_session_fails_and_stays(vault: Vault, gemini_home: Path) -> None:
    f = _webshop(gemini_home)
    whole = f.read_bytes()
    f.write_bytes(whole[: len(whole) // 2])  # caught in the middle of Gemini's rewrite
    _quiet(f)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed) == ("failed", False) and f.exists() and vault.list() == []
    assert o.error and "not one complete JSON document" in o.error and GHP not in o.error
    f.write_bytes(whole)
    _quiet(f)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed) == ("new", True)


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_import_transcripts_gemini(
    memory_keyring: MemoryKeyring, gemini_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("GEMINI_CLI_HOME", str(gemini_home.parent))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    r = runner.invoke(cli, ["import-transcripts", "--gemini", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["files"]
    assert sorted((row["tool"], row["action"], row["source_id"]) for row in rows) == [
        ("gemini-cli", "new", WEBSHOP_ID),
        ("gemini-cli", "new", NOTES_ID),
    ]
    r = runner.invoke(cli, ["import-transcripts", "--gemini", str(gemini_home / "tmp" / "webshop")])
    assert r.exit_code == 0 and "1 unchanged" in r.output
    r = runner.invoke(cli, ["import-transcripts"])
    assert r.exit_code == 2 and "--gemini" in r.output


def _migrate(json_file: Path, *extra: dict[str, Any]) -> Path:
    """What a newer Gemini CLI does when it resumes an older session: the same name in .jsonl,
    a metadata line, every message of the .json, then the new ones; the .json is left."""
    record = json.loads(json_file.read_text())
    meta = {k: record[k] for k in ("sessionId", "projectHash", "startTime", "lastUpdated")}
    lines = [meta, *record["messages"], *extra]
    jsonl = json_file.with_name(json_file.name + "l")
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return jsonl


def test_a_json_resumed_into_jsonl_is_removed_with_it(vault: Vault, gemini_home: Path) -> None:
    old = _webshop(gemini_home)
    new = _migrate(old, {"id": "u-new", "timestamp": "2026-03-18T08:00:00Z", "type": "user", "content": "again"})
    assert find_transcripts(gemini=gemini_home / "tmp" / "webshop") == [new]  # the .jsonl holds all of it
    _quiet(old, new)
    [o] = vault.import_transcripts([new], remove_originals=True)
    assert (o.action, o.source_id, o.messages, o.removed) == ("new", WEBSHOP_ID, 10, True)
    assert not new.exists() and not old.exists()  # the older copy went with it, proved the same way


def test_a_json_not_contained_in_its_jsonl_is_kept(vault: Vault, gemini_home: Path) -> None:
    old = _webshop(gemini_home)
    new = _migrate(old)
    _rewrite(old, lambda r: r["messages"].append({"id": "only-here", "type": "user", "content": "not migrated"}))
    _quiet(old, new)
    [o] = vault.import_transcripts([new], remove_originals=True)
    assert o.removed and not new.exists() and old.exists()
    assert o.warnings == [f"{old.name} beside it is not all in this session; it is kept"]


def test_a_sub_agent_is_removed_with_its_session_and_a_torn_one_keeps_both(vault: Vault, gemini_home: Path) -> None:
    from tests.unit.test_gemini_transcripts import SUB_SECRET, sub_agent

    main = _webshop(gemini_home)
    sub = sub_agent(main.parent, torn=True)  # the sub-agent is still writing its last line
    _quiet(main, sub)
    [o] = vault.import_transcripts([main], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("new", False, "incomplete") and main.exists() and sub.exists()
    sub_agent(main.parent)  # it finished
    _quiet(sub)
    [o] = vault.import_transcripts([main], remove_originals=True)
    # The main file is unchanged: found unchanged, and its sub-agent checked by what was read of it.
    assert (o.action, o.removed) == ("unchanged", False) and o.kept == "changed"
    os.utime(main, None)
    _quiet(main)
    [o] = vault.import_transcripts([main], remove_originals=True)
    assert (o.action, o.removed) == ("updated", True) and not main.exists() and not sub.exists()
    assert SUB_SECRET not in _stored(vault, o.session_id) and o.messages == 11


# -- a .json left behind by a resume: never stored over its .jsonl ------------------------------

#: The webshop session's last user turn, which the user rewinds to after resuming it.
_LAST_TURN = "0c1d9a7e-1111-4c2b-9e7a-000000000006"


def _resumed_and_rewound(old: Path, *, went_on: bool = True) -> Path:
    """A newer Gemini CLI resumes *old*, the user rewinds its last turn (and asks again): the
    .jsonl no longer holds all of the .json, which Gemini leaves as it was."""
    after: list[dict[str, Any]] = [{"$set": {"sessionId": WEBSHOP_ID}}, {"$rewindTo": _LAST_TURN}]
    if went_on:
        after += [
            {"id": "u-again", "timestamp": "2026-03-18T08:00:00.000Z", "type": "user", "content": "totals, not tax"},
            {"$set": {"lastUpdated": "2026-03-18T08:00:00.100Z"}},
            {"id": "g-again", "timestamp": "2026-03-18T08:00:07.000Z", "type": "gemini", "content": "Done."},
            {"$set": {"lastUpdated": "2026-03-18T08:00:07.100Z"}},
        ]
    return _migrate(old, *after)


def _ids(vault: Vault, sid: Any) -> list[str]:
    return [m.id for m in vault.load(sid).messages if m.id is not None]


@pytest.mark.parametrize("went_on", [True, False], ids=["asked-again", "rewound-only"])
def test_a_stale_json_never_replaces_the_session_of_its_jsonl(vault: Vault, gemini_home: Path, went_on: bool) -> None:
    old = _webshop(gemini_home)
    new = _resumed_and_rewound(old, went_on=went_on)
    _quiet(old, new)
    [o] = vault.import_transcripts([new], remove_originals=True)
    assert o.removed and not new.exists() and old.exists()  # the .json is not all in the .jsonl
    sid, stored = _sid(o), _ids(vault, o.session_id)
    assert _LAST_TURN not in stored and ("g-again" in stored) is went_on
    # The next run lists the .json again (its .jsonl is gone): it is older than what is stored.
    assert find_transcripts(gemini=gemini_home / "tmp" / "webshop") == [old]
    for _ in range(2):
        [again] = vault.import_transcripts([old], remove_originals=True)
        assert (again.action, again.session_id, again.source_id) == ("superseded", sid, WEBSHOP_ID)
        assert (again.removed, again.kept, again.error) == (False, None, None) and old.exists()
        assert again.warnings == [f"the vault holds this session from {new.name}, written after it; it is kept"]
    assert _ids(vault, sid) == stored and vault.checkpoints(sid) == []  # nothing stored, nothing regressed


def test_a_json_written_after_its_jsonl_is_imported(vault: Vault, gemini_home: Path) -> None:
    # An older Gemini CLI (a second install) went on with the .json after the newer one's
    # .jsonl was imported and removed: the .json is now the newer file.
    old = _webshop(gemini_home)
    new = _resumed_and_rewound(old)
    _quiet(old, new)
    [o] = vault.import_transcripts([new], remove_originals=True)
    assert o.removed and old.exists()

    def went_on(record: dict[str, Any]) -> None:
        record["messages"].append(
            {"id": "u-later", "timestamp": "2026-03-19T10:00:00Z", "type": "user", "content": "!"}
        )
        record["lastUpdated"] = "2026-03-19T10:00:00.100Z"

    _rewrite(old, went_on)
    [later] = vault.import_transcripts([old])
    assert (later.action, later.messages) == ("updated", 10)
    assert _ids(vault, o.session_id)[-1] == "u-later" and len(vault.checkpoints(o.session_id)) == 1  # type: ignore[arg-type]
    [same] = vault.import_transcripts([old])
    assert same.action == "unchanged"


@pytest.mark.parametrize("json_first", [True, False], ids=["json-first", "jsonl-first"])
def test_a_json_given_with_its_jsonl_is_superseded_in_either_order(
    vault: Vault, gemini_home: Path, json_first: bool
) -> None:
    old = _webshop(gemini_home)
    new = _resumed_and_rewound(old)
    _quiet(old, new)
    paths = [old, new] if json_first else [new, old]
    outcomes = {Path(o.path): o for o in vault.import_transcripts(paths, remove_originals=True)}
    assert outcomes[new].action == "new" and outcomes[new].removed
    assert (outcomes[old].action, outcomes[old].removed) == ("superseded", False) and old.exists()
    assert outcomes[old].session_id == outcomes[new].session_id and len(vault.list()) == 1
    sid = _sid(outcomes[new])
    assert _ids(vault, sid)[-1] == "g-again" and _LAST_TURN not in _ids(vault, sid)
    assert vault.checkpoints(sid) == []  # the .json was never stored, not even for a moment


def test_cli_reports_a_superseded_json(
    memory_keyring: MemoryKeyring, gemini_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    old = _webshop(gemini_home)
    new = _resumed_and_rewound(old)
    _quiet(old, new)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    project = str(gemini_home / "tmp" / "webshop")
    r = runner.invoke(cli, ["import-transcripts", "--gemini", project, "--remove-originals", "--yes"])
    assert r.exit_code == 0 and not new.exists() and old.exists(), r.output
    r = runner.invoke(cli, ["import-transcripts", "--gemini", project, "--remove-originals", "--yes", "--json"])
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.output)["files"]
    assert (row["path"], row["action"], row["removed"], row["source_id"]) == (str(old), "superseded", False, WEBSHOP_ID)
    r = runner.invoke(cli, ["import-transcripts", "--gemini", project])
    assert r.exit_code == 0 and "1 superseded" in r.output and old.exists()


def test_which_json_is_superseded(gemini_home: Path) -> None:
    from sessionseal._transcripts import gemini_superseded, read_transcript

    old = _webshop(gemini_home)
    t = read_transcript(old)
    assert t.document["source"]["last_updated"] == "2026-03-16T09:19:47.902Z"  # its lastUpdated
    jsonl = old.name + "l"

    def stored(name: str, updated_at: str | None = "2026-03-18T08:00:07.100000Z", **source: Any) -> dict[str, Any]:
        # Another spelling of the directory: the file's name decides.
        return {"updated_at": updated_at, "source": {"path": f"/elsewhere/chats/{name}", **source}}

    assert gemini_superseded(old, t, None) is None  # alone, nothing stored
    assert gemini_superseded(old, t, stored(old.name)) is None  # stored from itself: appended or updated
    assert gemini_superseded(old, t, stored(jsonl, last_updated="2026-03-16T09:19:47.902Z"))  # not later: stale
    assert gemini_superseded(old, t, stored(jsonl, last_updated="2026-03-16T09:00:00Z")) is None  # later: newer
    assert gemini_superseded(old, t, stored(jsonl))  # no last_updated recorded: the session's time
    assert gemini_superseded(old, t, stored(jsonl, "2026-03-16T09:00:00.000000Z")) is None
    assert gemini_superseded(old, t, stored(jsonl, None))  # no time to compare: the vault keeps its own
    beside = old.with_name(jsonl)
    beside.write_text(json.dumps({"sessionId": "another-session", "projectHash": "x"}) + "\n")
    assert gemini_superseded(old, t, None) is None  # another session's file of that name
    _migrate(old)
    assert (
        gemini_superseded(old, t, None)
        == f"{jsonl} beside it holds this session (Gemini CLI resumed it there); it is kept"
    )
    assert gemini_superseded(beside, read_transcript(beside), None) is None  # a .jsonl is never superseded
