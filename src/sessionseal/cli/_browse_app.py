"""``sessionseal browse``: the Textual app (docs/browse.md).

The app is a client of the public Vault API only, on a vault the command opened before the app
started (so the keychain prompt and a locked keychain behave as in every command).  It lists
from the index (``Vault.list_json``, what ``list --json`` reads), searches with
``Vault.search``, opens a transcript with ``Vault.load_json`` (what ``show --json`` reads,
audited as ``load`` like every ``show``) and acts with the methods the commands call.
Decrypted text stays in this process's memory: nothing is cached to disk.  The one way out is
an export the user asks for, with the consent and modes of ``export``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from rich.text import Text
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from sessionseal.errors import InvalidInput, SessionSealError

from ._browse_view import Entries, one_line
from ._browse_widgets import SessionList, TranscriptView, header_text
from ._common import EXIT_INTERNAL

if TYPE_CHECKING:
    from sessionseal import ListQuery, Vault

__all__ = ["AGENT_OF_TAG", "BrowseApp", "Field", "parse_filter"]

#: The agent a session can be resumed in, by the tag its import gave it (docs/capture/resume.md).
AGENT_OF_TAG = {"claude-code": "claude", "codex": "codex", "gemini-cli": "gemini"}
#: The keys, on the last line (docs/browse.md has them all).
KEYS = (
    "enter open  tab pane  space fold  n/b next fold  x all folds  / search  f filter  t tag  r rename  "
    "p pin  a archive  c checkpoint  o fork  e export  R resume  d delete  q quit"
)
#: The file an export writes when none is given, by format.
_EXPORT_SUFFIX = {"bundle": ".ssb", "json": ".json", "yaml": ".yaml", "markdown": ".md"}
#: How many hits a search shows (``search`` shows 20 by default).
SEARCH_LIMIT = 200


_FILTER_KEYS = ("tag", "status", "workspace", "ws", "model", "since", "until", "min-cost", "max-cost", "sort")


def _filter_word(key: str, value: str, tags: list[str], statuses: list[str], changes: dict[str, Any]) -> None:
    from ._audit_cmds import parse_when

    if key == "tag":
        tags.append(value)
    elif key == "status":
        statuses.append(value)
    elif key in ("workspace", "ws"):
        changes["workspace"] = os.path.abspath(os.path.expanduser(value))
    elif key in ("since", "until"):
        changes[key] = parse_when(value, key)
    elif key in ("min-cost", "max-cost"):
        changes[key.replace("-", "_")] = float(value)
    else:
        changes[key] = value


def parse_filter(text: str, base: ListQuery) -> ListQuery:
    """The list filters as words: ``tag:T status:S workspace:DIR model:M since:WHEN until:WHEN
    min-cost:USD max-cost:USD sort:KEY pinned archived all``, on top of *base* (the command's).

    :raises InvalidInput: an unknown word or a bad value (named by position, never echoed).
    """
    changes: dict[str, Any] = {}
    tags, statuses = list(base.tags), [str(st.value) for st in base.statuses]
    for number, word in enumerate(text.split(), 1):
        key, _, value = word.partition(":")
        if key in _FILTER_KEYS and value:
            try:
                _filter_word(key, value, tags, statuses, changes)
            except (ValueError, InvalidInput):
                raise InvalidInput(f"filter word {number} has a value that is not valid there") from None
        elif word in ("pinned", "archived", "all"):
            changes.update({"pinned": True} if word == "pinned" else {"archived": True if word == "archived" else None})
        else:
            raise InvalidInput(
                f"filter word {number} is not one of {' '.join(k + ':' for k in _FILTER_KEYS)} pinned archived all"
            )
    # ListQuery turns status names into statuses (and refuses an unknown one).
    return dataclasses.replace(base, tags=tuple(tags), statuses=tuple(statuses), **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Field:
    """One field of a dialog: text, a password, a choice, or a check box."""

    name: str
    label: str
    kind: str = "text"
    value: str = ""
    choices: tuple[str, ...] = ()


class Ask(ModalScreen[dict[str, Any] | None]):
    """A dialog: fields, then OK (Enter) or Cancel (Escape).  Labels are plain text."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str | Text, fields: Sequence[Field], *, ok: str = "OK") -> None:
        super().__init__()
        self.title_text = title if isinstance(title, Text) else Text(title)
        self.fields = list(fields)
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            for f in self.fields:
                if f.kind == "check":
                    yield Checkbox(Text(f.label), value=f.value == "yes", id=f"f-{f.name}")
                    continue
                yield Label(Text(f.label))
                if f.kind == "choice":
                    yield Select([(c, c) for c in f.choices], value=f.value, allow_blank=False, id=f"f-{f.name}")
                else:
                    yield Input(value=f.value, password=f.kind == "password", id=f"f-{f.name}")
            with Horizontal(id="buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            widget = self.query_one(f"#f-{f.name}")
            out[f.name] = getattr(widget, "value", None)
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter in a field goes to the next one; in the last text field, it is OK.
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.dismiss(self.values())
        else:
            inputs[inputs.index(event.input) + 1].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.values() if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question: y or Enter on Yes, n or Escape for no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: Text, *, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="dialog-title")
            with Horizontal(id="buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button("No", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class BrowseApp(App[None]):
    """The browser: the list (top), the transcript of the session opened (below)."""

    TITLE = "sessionseal browse"
    # The palette offers "save screenshot": an SVG of the screen, plaintext on disk.
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #status { height: 1; background: $panel; }
    #keys { height: auto; background: $panel; }
    #columns { height: 1; text-style: bold; }
    SessionList { height: 40%; border-bottom: solid $primary; overflow-x: hidden; }
    TranscriptView { height: 1fr; overflow-x: hidden; }
    Ask, Confirm { align: center middle; }
    #dialog { width: 72; height: auto; max-height: 100%; overflow-y: auto; padding: 1 2; border: thick $primary;
              background: $surface; }
    #dialog-title { margin-bottom: 1; width: 100%; }
    #buttons { height: auto; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("tab", "switch_pane", "Pane", show=False),
        Binding("slash", "search", "Search"),
        Binding("f", "filter", "Filter"),
        Binding("t", "tag", "Tag"),
        Binding("r", "rename", "Rename"),
        Binding("p", "pin", "Pin"),
        Binding("a", "archive", "Archive"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("o", "fork", "Fork"),
        Binding("e", "export", "Export"),
        Binding("R", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
    ]

    def __init__(
        self,
        vault: Vault,
        query: ListQuery,
        *,
        agent_command: Sequence[str] | None = None,
        resume: Callable[..., Any] | None = None,
        first: tuple[bytes, list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.vault = vault
        self.base_query = query
        self.query_now = query
        self.filter_text = ""
        self.search_text = ""
        self.agent_command = list(agent_command) if agent_command else None
        self.opened: str | None = None
        self.problems: list[str] = []
        self._resume = resume
        self._first = first  # the command's listing: the first paint shows it as it is
        self.crash: str | None = None  # the type of an unexpected exception that ended the app

    def save_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str:
        """Refused: a screenshot is the decrypted screen in a file (docs/browse.md)."""
        raise InvalidInput("browse writes no screenshot: it would be decrypted text on disk")

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        self.fail(InvalidInput("browse writes no screenshot: it would be decrypted text on disk"))
        return None

    def _handle_exception(self, error: Exception) -> None:
        # A bug: Textual would print a traceback with its locals (session text) when the app
        # exits; the command prints the CLI's one line instead (exit 70), unless SESSIONSEAL_DEBUG.
        self.crash = type(error).__name__
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        if os.environ.get("SESSIONSEAL_DEBUG"):
            super()._fatal_error()
            return
        self.exit(return_code=EXIT_INTERNAL)

    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        yield Static("", id="columns", markup=False)
        yield SessionList(id="list")
        yield TranscriptView(id="transcript")
        # One line of text, not Textual's Footer: a widget per key costs a tenth of a second
        # of styling at start and at each change of focus.
        yield Static(KEYS, id="keys", markup=False)

    def on_mount(self) -> None:
        self.reload()
        self.query_one(SessionList).focus()

    # -- the list ------------------------------------------------------------------------------

    @property
    def sessions(self) -> SessionList:
        return self.query_one(SessionList)

    @property
    def transcript(self) -> TranscriptView:
        return self.query_one(TranscriptView)

    def reload(self, *, keep: str | None = None) -> None:
        """Read the list again (from the index; with a search, through ``Vault.search``)."""
        if self._first is not None:
            (data, self.problems), self._first = self._first, None
        else:
            data, self.problems = self.vault.list_json(self.query_now)
        rows: list[dict[str, Any]] = orjson.loads(data)
        if self.search_text:
            query = dataclasses.replace(self.query_now, limit=SEARCH_LIMIT)
            hits = self.vault.search(self.search_text, query)
            by_id = {r["id"]: r for r in rows}
            rows = [by_id[h.id] for h in hits if h.id in by_id]
        current = self.sessions.current
        self.sessions.set_rows(rows, keep=keep or (current or {}).get("id"))
        self._status()

    def _status(self) -> None:
        parts = [f"{len(self.sessions.rows)} session(s)"]
        if self.filter_text:
            parts.append("filter: " + one_line(self.filter_text, 60))
        if self.search_text:
            parts.append("search: " + one_line(self.search_text, 40))
        if self.problems:
            parts.append(f"{len(self.problems)} unreadable (see 'sessionseal list')")
        self.query_one("#status", Static).update(Text("  ".join(parts)))
        self.query_one("#columns", Static).update(header_text(self.size.width or 80))

    def on_resize(self) -> None:
        self._status()

    def on_session_list_opened(self, event: SessionList.Opened) -> None:
        self.open_session(str(event.row["id"]))

    def open_session(self, sid: str) -> None:
        """Decrypt and show a session: the read is audited as ``load``, as ``show`` does."""
        try:
            doc = orjson.loads(self.vault.load_json(sid))
            checkpoints = [f"#{cp.number} {cp.name}" for cp in self.vault.checkpoints(sid)]
        except SessionSealError as exc:
            self.fail(exc)
            return
        self.opened = sid
        self.transcript.show(Entries(doc, checkpoints))
        self.transcript.focus()

    def action_switch_pane(self) -> None:
        (self.sessions if self.transcript.has_focus else self.transcript).focus()

    def fail(self, exc: Exception) -> None:
        """An error as the CLI says it, one line, in a notification."""
        message = str(exc) if isinstance(exc, SessionSealError) else f"internal error ({type(exc).__name__})"
        self.notify(one_line(message, 300), title="error", severity="error", markup=False)

    def done(self, message: str) -> None:
        self.notify(one_line(message, 300), markup=False)

    def _selected(self) -> dict[str, Any] | None:
        row = self.sessions.current
        if row is None:
            self.notify("no session selected", severity="warning")
        return row

    def _act(self, fn: Callable[[], str | None], *, keep: str | None = None, reopen: bool = True) -> None:
        """Run an action on the vault; say how it went; show the list (and transcript) anew."""
        try:
            message = fn()
        except SessionSealError as exc:
            self.fail(exc)
            return
        if message:
            self.done(message)
        self.reload(keep=keep)
        # The open transcript is read again (its header changed) only when it is the one acted on.
        if reopen and self.opened is not None and self.opened == keep and keep in {r["id"] for r in self.sessions.rows}:
            self.open_session(self.opened)
            self.sessions.focus()

    # -- search and filters ----------------------------------------------------------------------

    def action_search(self) -> None:
        fields = [Field("text", "Search titles, tags, messages and tool output (empty: no search)", value="")]
        self.push_screen(Ask("Search", fields), self._searched)

    def _searched(self, answer: dict[str, Any] | None) -> None:
        if answer is not None:
            self.search_text = str(answer["text"] or "").strip()
            self._act(lambda: None, reopen=False)

    def action_filter(self) -> None:
        hint = "tag:T status:S workspace:DIR model:M since:7d until:WHEN min-cost:1 max-cost:5 sort:cost pinned all"
        self.push_screen(
            Ask("Filter (empty: the command's filters)", [Field("words", hint, value=self.filter_text)]), self._filtered
        )

    def _filtered(self, answer: dict[str, Any] | None) -> None:
        if answer is None:
            return
        words = str(answer["words"] or "").strip()
        try:
            self.query_now = parse_filter(words, self.base_query)
        except SessionSealError as exc:
            self.fail(exc)
            return
        self.filter_text = words
        self._act(lambda: None, reopen=False)

    # -- actions on the selected session ------------------------------------------------------------

    def action_tag(self) -> None:
        row = self._selected()
        if row is not None:
            self.push_screen(
                Ask("Tag changes", [Field("changes", "+TAG -TAG TAG", value="")]), lambda a: self._tagged(row, a)
            )

    def _tagged(self, row: dict[str, Any], answer: dict[str, Any] | None) -> None:
        words = str((answer or {}).get("changes") or "").split()
        if not words:
            return
        add = [w[1:] if w.startswith("+") else w for w in words if not w.startswith("-")]
        remove = [w[1:] for w in words if w.startswith("-")]
        self._act(
            lambda: f"tags: {' '.join(self.vault.tag(row['id'], add=add, remove=remove)) or '(none)'}", keep=row["id"]
        )

    def action_rename(self) -> None:
        row = self._selected()
        if row is None:
            return
        # A title with controls is not put in the field (an input shows what it holds raw).
        title = str(row.get("title") or "")
        fields = [Field("title", "Title", value=title if title.isprintable() else "")]
        self.push_screen(Ask("Rename", fields), lambda a: self._renamed(row, a))

    def _renamed(self, row: dict[str, Any], answer: dict[str, Any] | None) -> None:
        if answer is None or not str(answer["title"] or "").strip():
            return
        title = str(answer["title"])
        self._act(
            lambda: "Renamed" if self.vault.rename(row["id"], title) else "The title was already that", keep=row["id"]
        )

    def action_pin(self) -> None:
        row = self._selected()
        if row is not None:
            if row.get("pinned"):
                self._act(lambda: "Unpinned" if self.vault.unpin(row["id"]) else None, keep=row["id"])
            else:
                self._act(lambda: "Pinned" if self.vault.pin(row["id"]) else None, keep=row["id"])

    def action_archive(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.get("status") == "archived":
            self._act(lambda: "Unarchived" if self.vault.unarchive(row["id"]) else None, keep=row["id"])
        else:
            # Archived sessions leave the default list; say so, not only make the row vanish.
            self._act(
                lambda: (
                    "Archived (hidden unless the filter has 'all' or 'archived')"
                    if self.vault.archive(row["id"])
                    else None
                ),
                keep=row["id"],
            )

    def action_checkpoint(self) -> None:
        row = self._selected()
        if row is not None:
            fields = [Field("name", "Checkpoint name (empty: checkpoint-N)")]
            self.push_screen(Ask("Checkpoint", fields), lambda a: self._checkpointed(row, a))

    def _checkpointed(self, row: dict[str, Any], answer: dict[str, Any] | None) -> None:
        if answer is None:
            return
        name = str(answer["name"] or "").strip() or None
        self._act(lambda: f"Checkpoint #{self.vault.checkpoint(row['id'], name).number} created", keep=row["id"])

    def action_fork(self) -> None:
        row = self._selected()
        if row is not None:
            fields = [Field("title", "Title of the new session (empty: the same, marked '(fork)')")]
            self.push_screen(Ask("Fork", fields), lambda a: self._forked(row, a))

    def _forked(self, row: dict[str, Any], answer: dict[str, Any] | None) -> None:
        if answer is None:
            return
        title = str(answer["title"] or "").strip() or None
        new: list[str] = []

        def fork() -> str:
            new.append(str(self.vault.fork(row["id"], title=title)))
            return f"Forked as {new[0]}"

        self._act(fork, reopen=False)
        if new:
            self.sessions.set_rows(self.sessions.rows, keep=new[0])

    def action_export(self) -> None:
        row = self._selected()
        if row is None:
            return
        fields = [
            Field(
                "format",
                "Format (bundle: encrypted; the others are plaintext)",
                "choice",
                "bundle",
                ("bundle", "json", "yaml", "markdown"),
            ),
            Field("out", "Write to a new file (empty: ID.ssb, .json, .yaml or .md here, by format)"),
            Field("passphrase", "Bundle passphrase", "password"),
            Field("again", "The passphrase again", "password"),
            Field(
                "plaintext", "Write plaintext (json, yaml, markdown): readable by anyone who can read the file", "check"
            ),
        ]
        self.push_screen(Ask("Export", fields, ok="Export"), lambda a: self._exported(row, a))

    def _exported(self, row: dict[str, Any], answer: dict[str, Any] | None) -> None:
        if answer is None:
            return
        fmt, out = str(answer["format"]), os.path.expanduser(str(answer["out"] or "").strip())
        out = out or f"{row['id']}{_EXPORT_SUFFIX[fmt]}"
        passphrase = None
        if fmt == "bundle":
            if not answer["passphrase"] or answer["passphrase"] != answer["again"]:
                self.fail(InvalidInput("the bundle passphrases are empty or differ; nothing was written"))
                return
            passphrase = str(answer["passphrase"])

        def export() -> str:
            r = self.vault.export(
                [row["id"]], format=fmt, passphrase=passphrase, plaintext=bool(answer["plaintext"]), out=out
            )
            return f"Exported {len(r.session_ids)} session(s) as {fmt} to {r.path}"

        self._act(export, keep=row["id"], reopen=False)

    def resume_plan(self, row: dict[str, Any]) -> tuple[str, list[str], str] | None:
        """The agent, the command and the directory a resume of *row* would run (a dry run:
        checked and audited as ``resume``, nothing written or run), or None with a notice."""
        from sessionseal import resume_session

        into = next((AGENT_OF_TAG[t] for t in row.get("tags") or [] if t in AGENT_OF_TAG), None)
        if into is None:
            self.fail(
                InvalidInput(
                    "this session came from no agent sessionseal can resume it in "
                    "(Claude Code, Codex, Gemini CLI); 'sessionseal resume ID' prints it"
                )
            )
            return None
        try:
            plan = resume_session(self.vault, row["id"], into=into, dry_run=True, agent_command=self.agent_command)
        except SessionSealError as exc:
            self.fail(exc)
            return None
        return into, list(plan.command), plan.cwd

    def action_resume(self) -> None:
        row = self._selected()
        if row is None:
            return
        plan = self.resume_plan(row)
        if plan is None:
            return
        into, command, cwd = plan
        question = Text.assemble(
            f"Resume in {into}? It runs (the terminal is its until it exits):\n",
            (one_line(f"cd {shlex.quote(cwd)} && {shlex.join(command)}", 400), "bold"),
            overflow="fold",
        )
        self.push_screen(Confirm(question, yes="Resume"), lambda yes: self._resumed(row, into, cwd, yes))

    def _resumed(self, row: dict[str, Any], into: str, cwd: str, yes: bool | None) -> None:
        if not yes:
            return
        from sessionseal import resume_session

        run = self._resume or resume_session
        try:
            with self.suspend():
                result = run(self.vault, row["id"], into=into, cwd=cwd, agent_command=self.agent_command)
        except SuspendNotSupported:
            self.fail(
                InvalidInput(
                    f"this terminal cannot hand itself to the agent; run 'sessionseal resume {row['id']} --into {into}'"
                )
            )
            return
        except SessionSealError as exc:
            self.fail(exc)
            return
        self.done(f"{into} exited with status {result.agent_status}; what it added is sealed back")
        self._act(lambda: None, keep=row["id"])

    def action_delete(self) -> None:
        row = self._selected()
        if row is None:
            return
        title = one_line(str(row.get("title") or "(untitled)"), 60)
        question = Text.assemble(
            "Delete ",
            (title, "bold"),
            f" ({row['id']})?\n",
            "Its key is destroyed and its file overwritten: this cannot be undone.",
        )
        self.push_screen(Confirm(question, yes="Delete"), lambda yes: self._deleted(row, yes))

    def _deleted(self, row: dict[str, Any], yes: bool | None) -> None:
        if not yes:
            self.done("Nothing was deleted")
            return
        if self.opened == row["id"]:
            self.opened = None
            self.transcript.show([])

        def delete() -> str:
            self.vault.delete(row["id"])
            return f"Deleted {row['id']}; its key is destroyed and its file overwritten"

        self._act(delete, reopen=False)
