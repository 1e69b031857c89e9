"""``sessionseal browse`` driven by Textual's own pilot, headless (docs/browse.md).

Every action of the app on a real vault (memory keyring): the list and its filters, search,
opening a transcript (audited as ``load``, as ``show``), folding, tag, rename, pin, archive,
checkpoint, fork, export, resume (the command it would run), delete with its confirmation;
hostile stored text shown literally; nothing decrypted written to disk.  Textual is the ``tui``
extra: skipped without it, required in CI (``SESSIONSEAL_REQUIRE_TUI=1``, .ci/run).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionseal import ListQuery, PassphraseProvider, Vault, errors
from tests.integration._cli import sessionseal

pytestmark = pytest.mark.tui

if not os.environ.get("SESSIONSEAL_REQUIRE_TUI"):
    pytest.importorskip("textual")
importlib.import_module("textual")

from textual.app import App  # noqa: E402

from sessionseal.cli._browse_app import BrowseApp, parse_filter  # noqa: E402
from sessionseal.cli._browse_cmds import scrub_textual_env  # noqa: E402
from sessionseal.cli._browse_view import PIECE, PLACEHOLDER, Entries, build_entries  # noqa: E402
from sessionseal.cli._browse_widgets import SessionList, TranscriptView  # noqa: E402
from sessionseal.errors import InvalidInput  # noqa: E402

FAKE = str(Path(__file__).with_name("fake_agent.py"))
SECRET = "ghp_" + "Cf4" * 12
HOSTILE_TITLE = "[bold red]boom[/] [link=https://evil.example]x[/link] \x1b]52;c;aGk=\x07 \x1b[2J\u202e"
CLAUDE_SID = "5b0c6d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"


class Recording(BrowseApp):
    """The app, with what it tells the user kept for the test to read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:
        self.said.append(message)
        super().notify(message, **kwargs)


Scenario = Callable[[Any, Recording], Awaitable[None]]


def drive(app: Recording, scenario: Scenario, size: tuple[int, int] = (120, 40)) -> None:
    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot, app)

    asyncio.run(go())


async def typed(pilot: Any, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


def claude_transcript(root: Path) -> Path:
    path = root / "projects" / "-home-dev-shop" / f"{CLAUDE_SID}.jsonl"
    path.parent.mkdir(parents=True)
    common = {"isSidechain": False, "userType": "external", "cwd": "/home/dev/shop", "sessionId": CLAUDE_SID}
    lines = [
        {
            **common,
            "parentUuid": None,
            "type": "user",
            "uuid": "00000000-0000-4000-8000-000000000000",
            "timestamp": "2026-11-30T10:00:00.000Z",
            "message": {"role": "user", "content": "fix the shop"},
        },
        {
            **common,
            "parentUuid": "00000000-0000-4000-8000-000000000000",
            "type": "assistant",
            "uuid": "00000000-0000-4000-8000-000000000001",
            "timestamp": "2026-11-30T10:01:00.000Z",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "fixed"}],
                "usage": {"input_tokens": 10, "output_tokens": 4},
            },
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.fixture
def sessions(vault: Vault) -> dict[str, str]:
    """A vault with a hostile session, a plain one, an expensive one and a Claude Code one."""
    hostile = vault.save(
        {
            "title": HOSTILE_TITLE,
            "tags": ["red"],
            "workspace": "/home/dev/alpha",
            "messages": [
                {"role": "user", "content": f"my token is {SECRET} [bold]not bold[/bold] \x1b[31mred\x1b[0m"},
                {
                    "role": "assistant",
                    "model": "m-big",
                    "cost_usd": 3.5,
                    "content": [
                        {"type": "thinking", "text": "pondering the shop\nsecond thought line"},
                        {"type": "tool_call", "name": "bash", "arguments": {"cmd": "ls -la"}},
                        {"type": "text", "text": "answer text here"},
                    ],
                },
                {"role": "tool", "content": [{"type": "tool_result", "content": "file-one\nfile-two"}]},
            ],
        }
    )
    plain = vault.save({"title": "plain notes", "tags": ["blue"], "workspace": "/home/dev/beta", "messages": []})
    [outcome] = vault.import_transcripts([claude_transcript(vault.path.parent / "claude-in")])
    assert outcome.session_id is not None
    return {"hostile": str(hostile), "plain": str(plain), "claude": str(outcome.session_id)}


def app_of(vault: Vault, query: ListQuery | None = None) -> Recording:
    return Recording(vault, query or ListQuery(), agent_command=[sys.executable, FAKE])


async def select(pilot: Any, app: Recording, sid: str) -> None:
    """Move the list's cursor to *sid* with the keys a person would press."""
    await pilot.press("home")
    for _ in range(len(app.sessions.rows)):
        if app.sessions.current and app.sessions.current["id"] == sid:
            return
        await pilot.press("down")
    raise AssertionError("not in the list")


def field(screen: Any, selector: str) -> Any:
    """A field of a dialog (an Input, a Select or a Checkbox: each has a value)."""
    return screen.query_one(selector)


def _row(app: Recording, sid: str) -> dict[str, Any]:
    return next(r for r in app.sessions.rows if r["id"] == sid)


# -- the list, filters, search ------------------------------------------------------------------


def test_the_list_shows_the_index_columns_newest_first(vault: Vault, sessions: dict[str, str]) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await pilot.click(SessionList, offset=(5, 1))  # the second row
        await pilot.pause()
        assert app.sessions.cursor == 1 and app.opened is None
        await pilot.click(SessionList, offset=(5, 2), times=2)  # a double click opens
        await pilot.pause()
        assert app.opened == app.sessions.rows[2]["id"]
        assert [r["id"] for r in app.sessions.rows] == [r["id"] for r in json.loads(vault.list_json()[0])]
        header = app.query_one("#columns").render()
        for name in ("title", "updated", "status", "tags", "workspace", "model", "cost", "size"):
            assert name in str(header)
        line = app.sessions.render_line(app.sessions.rows.index(_row(app, sessions["hostile"]))).text
        assert "$3.50" in line and "m-big" in line and "red" in line and "dev/alpha" in line

    drive(app_of(vault), scenario)


def test_filters_narrow_the_list_and_bad_words_are_refused(vault: Vault, sessions: dict[str, str]) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await pilot.press("f")
        await typed(pilot, "tag:blue")
        await pilot.press("enter")
        await pilot.pause()
        assert [r["id"] for r in app.sessions.rows] == [sessions["plain"]]
        await pilot.press("f")
        await pilot.press(*["backspace"] * 20)
        await typed(pilot, "min-cost:1 workspace:/home/dev")
        await pilot.press("enter")
        await pilot.pause()
        assert [r["id"] for r in app.sessions.rows] == [sessions["hostile"]]
        await pilot.press("f")
        await pilot.press(*["backspace"] * 40)
        await typed(pilot, "colour:red")
        await pilot.press("enter")
        await pilot.pause()
        assert "filter word 1 is not one of" in app.said[-1] and "colour" not in app.said[-1]
        assert [r["id"] for r in app.sessions.rows] == [sessions["hostile"]]  # unchanged

    drive(app_of(vault), scenario)


def test_parse_filter_builds_the_query_of_list() -> None:
    q = parse_filter("tag:a tag:b status:paused model:m since:7d min-cost:0.5 sort:cost all", ListQuery(tags=("x",)))
    assert q.tags == ("x", "a", "b") and q.model == "m" and q.min_cost == 0.5 and q.archived is None
    assert q.since is not None and q.sort.value == "cost"
    with pytest.raises(InvalidInput):
        parse_filter("min-cost:lots", ListQuery())


def test_search_goes_through_vault_search(vault: Vault, sessions: dict[str, str]) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await pilot.press("slash")
        await typed(pilot, "pondering")
        await pilot.press("enter")
        await pilot.pause()
        assert [r["id"] for r in app.sessions.rows] == [sessions["hostile"]]
        assert "search: pondering" in str(app.query_one("#status").render())
        await pilot.press("slash", "enter")  # empty: the whole list again
        await pilot.pause()
        assert len(app.sessions.rows) == 3

    drive(app_of(vault), scenario)
    assert any(r["action"] == "search" for r in vault.audit_records())


# -- a transcript: opening, folding, escaping -----------------------------------------------------


def test_opening_a_transcript_is_audited_as_show_and_folds_tools_and_thinking(
    vault: Vault, sessions: dict[str, str]
) -> None:
    sid = sessions["hostile"]
    loads_before = [r for r in vault.audit_entries(session=sid)[0] if r["action"] == "load"]

    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sid)
        await pilot.press("enter")
        await pilot.pause()
        text = app.transcript.text()
        assert "answer text here" in text
        # Folded: the first line of each tool call, result and thought, not the rest.
        assert "▸ (thinking) pondering the shop" in text and "second thought line" not in text
        assert "▸ -> bash" in text and "▸ <- file-one" in text and "file-two" not in text
        assert app.transcript.has_focus
        await pilot.press("space")  # unfolds the first fold (the thought)
        await pilot.pause()
        assert "second thought line" in app.transcript.text() and "file-two" not in app.transcript.text()
        await pilot.press("n", "n", "space")  # the tool result
        await pilot.pause()
        assert "file-two" in app.transcript.text()
        # A click on a fold's first line toggles it too.
        view = app.transcript
        line = next(i for i, strip in enumerate(view._lines) if strip.text.startswith("▸ -> bash"))
        await pilot.click(TranscriptView, offset=(2, line - view.scroll_offset.y))
        await pilot.pause()
        assert '\n  "cmd": "ls -la"\n' in app.transcript.text()  # the arguments, in full
        await pilot.click(TranscriptView, offset=(2, line - view.scroll_offset.y))
        await pilot.pause()
        assert '\n  "cmd": "ls -la"\n' not in app.transcript.text()
        await pilot.press("x")  # one still folded (the tool call): unfold them all
        await pilot.pause()
        assert '\n  "cmd": "ls -la"\n' in app.transcript.text()
        await pilot.press("x")  # all unfolded: fold them all
        await pilot.pause()
        assert "file-two" not in app.transcript.text() and "second thought line" not in app.transcript.text()

    drive(app_of(vault), scenario)
    loads = [r for r in vault.audit_entries(session=sid)[0] if r["action"] == "load"]
    # Exactly one more read of this session, recorded as show records it: who, which, how much.
    assert len(loads) == len(loads_before) + 1
    assert loads[-1]["outcome"] == "ok" and loads[-1]["bytes"] > 0 and loads[-1]["verified"] is True


def test_hostile_stored_text_is_shown_literally(vault: Vault, sessions: dict[str, str]) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sessions["hostile"])
        line = app.sessions.render_line(app.sessions.cursor).text
        assert "[bold red]boom[/]" in line and "\x1b" not in line and "\\x1b" in line
        await pilot.press("enter")
        await pilot.pause()
        strips = app.transcript._lines
        text = app.transcript.text()
        # Markup is text: the brackets are there, and no span made anything bold or a link.
        assert "[bold red]boom[/] [link=https://evil.example]x[/link]" in text
        assert "[bold]not bold[/bold]" in text
        assert not any(seg.style and seg.style.link for s in strips for seg in s)
        # Escapes are shown, never sent: no ESC, BEL or bidi override reaches the terminal.
        assert "\\x1b]52;c;aGk=\\x07" in text and "\\x1b[2J" in text and "\\u202e" in text
        assert not any(ch in text for ch in "\x1b\x07\u202e\x9b")
        # The secret was redacted at save; its placeholder is highlighted.
        assert SECRET not in text and "[REDACTED:" in text
        marked = [seg for s in strips for seg in s if seg.text.startswith("[REDACTED:")]
        assert marked and all(seg.style and seg.style.bgcolor for seg in marked)

    drive(app_of(vault), scenario, size=(240, 40))


def test_the_placeholder_browse_highlights_is_the_sanitizers() -> None:
    from sessionseal._sanitize import PLACEHOLDER_RE

    assert PLACEHOLDER.pattern == PLACEHOLDER_RE.pattern


def test_a_big_transcript_is_rendered_lazily() -> None:
    doc = {
        "id": "x",
        "title": "big",
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"line {i}\n" * 50}]} for i in range(2000)],
    }
    entries = Entries(doc)
    huge = {"id": "y", "messages": [{"role": "tool", "content": [{"type": "text", "text": "z" * (PIECE * 40)}]}]}

    class One(App[None]):
        def compose(self) -> Iterator[Any]:
            yield TranscriptView()

    async def go() -> None:
        app = One()
        async with app.run_test(size=(100, 30)) as pilot:
            view = app.query_one(TranscriptView)
            view.show(entries)
            await pilot.pause()
            # About a screen (and the one below it) rendered, out of 100,000 lines; the
            # entries of the first few messages made, out of 2,000.
            assert 0 < view.rendered_lines < 200
            assert len(entries.items) < 20
            view.show(build_entries(huge))
            await pilot.pause()
            assert view.rendered_lines < 200  # one piece of a 320 KB text, not all of it
            await pilot.press("end")
            await pilot.pause()
            assert view.rendered_lines > 40 * 80 and view.scroll_offset.y > 40 * 80 - 30

    asyncio.run(go())


# -- actions ---------------------------------------------------------------------------------------


def test_tag_rename_pin_archive_checkpoint(vault: Vault, sessions: dict[str, str]) -> None:
    sid = sessions["plain"]

    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sid)
        await pilot.press("t")
        await typed(pilot, "+green -blue")
        await pilot.press("enter")
        await pilot.pause()
        assert _row(app, sid)["tags"] == ["green"]
        await pilot.press("r", *["backspace"] * 20)
        await typed(pilot, "renamed notes")
        await pilot.press("enter")
        await pilot.pause()
        assert _row(app, sid)["title"] == "renamed notes"
        await pilot.press("p")
        await pilot.pause()
        assert _row(app, sid)["pinned"] is True
        await pilot.press("p")
        await pilot.pause()
        assert _row(app, sid)["pinned"] is False
        await pilot.press("c")
        await typed(pilot, "before-change")
        await pilot.press("enter")
        await pilot.pause()
        assert "Checkpoint #1 created" in app.said
        await select(pilot, app, sid)
        await pilot.press("a")
        await pilot.pause()
        assert sid not in [r["id"] for r in app.sessions.rows]  # archived: out of the default list
        await pilot.press("f")
        await typed(pilot, "archived")
        await pilot.press("enter")
        await pilot.pause()
        assert [r["id"] for r in app.sessions.rows] == [sid]
        await pilot.press("a")  # unarchive
        await pilot.pause()

    drive(app_of(vault), scenario)
    s = vault.load(sid)
    assert (s.title, s.tags, s.pinned, s.status.value) == ("renamed notes", ["green"], False, "active")
    assert [cp.name for cp in vault.checkpoints(sid)] == ["before-change"]


def test_fork_selects_the_new_session(vault: Vault, sessions: dict[str, str]) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sessions["hostile"])
        await pilot.press("o")
        await typed(pilot, "the fork")
        await pilot.press("enter")
        await pilot.pause()
        assert app.sessions.current is not None and app.sessions.current["title"] == "the fork"

    drive(app_of(vault), scenario)
    forks = [s for s in vault.list() if s.title == "the fork"]
    assert len(forks) == 1 and vault.load(forks[0].id).links.forked_from is not None


def test_export_bundle_and_plaintext_with_consent(
    vault: Vault, sessions: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bundle, markdown = tmp_path / f"{sessions['plain']}.ssb", tmp_path / "one.md"

    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sessions["plain"])
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        field(dialog, "#f-passphrase").value = "bundle pass 123"
        field(dialog, "#f-again").value = "bundle pass 123"
        await pilot.click("#ok")
        await pilot.pause()
        assert bundle.exists() and (bundle.stat().st_mode & 0o777) == 0o600  # ID.ssb, here
        # Markdown without the plaintext box ticked: refused, nothing written.
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        field(dialog, "#f-format").value = "markdown"
        field(dialog, "#f-out").value = str(markdown)
        await pilot.click("#ok")
        await pilot.pause()
        assert not markdown.exists() and "plaintext" in app.said[-1]
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        field(dialog, "#f-format").value = "markdown"
        field(dialog, "#f-out").value = str(markdown)
        field(dialog, "#f-plaintext").value = True
        await pilot.click("#ok")
        await pilot.pause()
        assert markdown.exists() and (markdown.stat().st_mode & 0o777) == 0o600

    drive(app_of(vault), scenario)
    assert "plain notes" in markdown.read_text()


def test_resume_shows_the_command_it_would_run(vault: Vault, sessions: dict[str, str], tmp_path: Path) -> None:
    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sessions["claude"])
        await pilot.press("R")
        await pilot.pause()
        question = str(app.screen.query_one("#dialog-title").render())
        assert "Resume in claude" in question and f"{FAKE} --resume {CLAUDE_SID}" in question
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("R")
        await pilot.pause()
        await pilot.press("y")  # headless: the terminal cannot be handed over; nothing runs
        await pilot.pause()
        assert "cannot hand itself to the agent" in app.said[-1]
        # A session from no agent: said so, nothing asked.
        await select(pilot, app, sessions["plain"])
        await pilot.press("R")
        await pilot.pause()
        assert "came from no agent" in app.said[-1]

    drive(app_of(vault), scenario)
    assert not (vault.path / "run").exists() or not any((vault.path / "run").iterdir())


def test_delete_asks_and_cancel_keeps(vault: Vault, sessions: dict[str, str]) -> None:
    sid = sessions["plain"]

    async def scenario(pilot: Any, app: Recording) -> None:
        await select(pilot, app, sid)
        await pilot.press("d")
        await pilot.pause()
        assert "plain notes" in str(app.screen.query_one("#dialog-title").render())
        await pilot.press("d", "p", "a")  # inside the dialog (modal): no other action starts
        await pilot.pause()
        assert len(app.screen_stack) == 2 and _row(app, sid)["pinned"] is False
        await pilot.press("n")
        await pilot.pause()
        assert sid in [r["id"] for r in app.sessions.rows] and "Nothing was deleted" in app.said
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("enter")  # the focused button is No
        await pilot.pause()
        assert sid in [r["id"] for r in app.sessions.rows]
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert sid not in [r["id"] for r in app.sessions.rows]

    drive(app_of(vault), scenario)
    assert sid not in [str(s.id) for s in vault.list(archived=None)]
    assert [r["action"] for r in vault.audit_records()].count("delete") == 1


def test_a_bug_ends_the_app_without_a_traceback(vault: Vault, sessions: dict[str, str]) -> None:
    class Broken(Recording):
        def open_session(self, sid: str) -> None:
            raise RuntimeError("session text that a traceback's locals would show")

    app = Broken(vault, ListQuery())

    async def scenario(pilot: Any, app: Recording) -> None:
        await pilot.press("enter")
        await pilot.pause()

    # The pilot re-raises what ended the app; the command prints one line and exits 70.
    with pytest.raises(RuntimeError):
        drive(app, scenario)
    assert app.crash == "RuntimeError" and app.return_code == 70


# -- nothing decrypted on disk -----------------------------------------------------------------------


def test_browsing_writes_no_plaintext(
    vault: Vault, sessions: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    for d in (home, work, tmp_path / "tmp"):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.chdir(work)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    async def scenario(pilot: Any, app: Recording) -> None:
        for sid in sessions.values():
            await select(pilot, app, sid)
            await pilot.press("enter", "x", "tab")
            await pilot.pause()
        # A screenshot would be the decrypted screen in a file: refused, whatever asks for it.
        app.action_screenshot()
        await pilot.pause()
        assert "browse writes no screenshot" in app.said[-1]
        with pytest.raises(InvalidInput):
            app.save_screenshot(path=str(work))

    drive(app_of(vault), scenario)
    new = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert all(vault.path in p.parents for p in new), new  # only the vault's own files (its audit log)
    for p in tmp_path.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert b"answer text here" not in data and b"pondering" not in data, p


def test_textual_variables_that_write_or_act_are_dropped() -> None:
    env = {"TEXTUAL_LOG": "/tmp/x", "TEXTUAL": "devtools", "TEXTUAL_SCREENSHOT": "1", "TEXTUAL_PRESS": "d,y"}
    env |= {"TEXTUAL_THEME": "nord", "TERM": "xterm"}
    assert sorted(scrub_textual_env(env)) == ["TEXTUAL", "TEXTUAL_LOG", "TEXTUAL_PRESS", "TEXTUAL_SCREENSHOT"]
    assert env == {"TEXTUAL_THEME": "nord", "TERM": "xterm"}


# -- before the app: the CLI's errors ------------------------------------------------------------------


def test_without_a_terminal_browse_fails_as_the_cli_does(tmp_path: Path) -> None:
    with Vault.init(tmp_path / "v", key_provider=PassphraseProvider("browse pass", log2_n=14)) as v:
        v.save({"title": "t"})
    env = {"SESSIONSEAL_VAULT": str(tmp_path / "v"), "HOME": str(tmp_path)}
    # No passphrase and no terminal to ask on: the one line and exit code of every command.
    r = sessionseal("browse", env=env)
    assert r.code == errors.KeyStoreError.exit_code and r.err.count("\n") == 1
    assert r.err.startswith("sessionseal: error: the vault passphrase is needed and there is no terminal")
    r = sessionseal("browse", env={**env, "SESSIONSEAL_PASSPHRASE": "wrong one"})
    assert r.code == errors.WrongPassphrase.exit_code and r.err.count("\n") == 1
    # The vault opens, but the app has no terminal to take: a usage error, before it starts.
    r = sessionseal("browse", env={**env, "SESSIONSEAL_PASSPHRASE": "browse pass"})
    assert r.code == 2 and "browse needs a terminal" in r.err and r.out == ""
