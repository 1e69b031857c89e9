"""The two panes of ``browse``: a virtual session list and a lazily rendered transcript.

Both draw through Textual's line API (``render_line``): only the lines on screen are made.
The list keeps its rows as the dicts of ``list --json`` and formats a row when it is shown,
so 10,000 sessions cost one JSON parse; the transcript renders its entries in order only as
far as the view has been scrolled, a long text a piece at a time (``_browse_view.pieces``).
Nothing here writes anywhere: decrypted text lives in these objects until the app exits.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ._browse_view import COLUMNS, Entries, Entry, entry_text, one_line, row_cells

__all__ = ["SessionList", "TranscriptView", "header_text"]


#: The columns that give way, in this order, to keep the title readable on a narrow terminal.
_SHRINK = ("workspace", "tags", "model", "status")


def _widths(total: int) -> list[int]:
    widths = dict(COLUMNS)
    want = max(24, total * 3 // 10)
    need = want - (total - (sum(widths.values()) + len(COLUMNS) - 1))
    for floor in (10, 6):
        for name in _SHRINK:
            take = max(min(need, widths[name] - floor), 0)
            widths[name] -= take
            need -= take
    spare = total - (sum(widths.values()) + len(COLUMNS) - 1)
    return [w or max(spare, 12) for w in widths.values()]


def _cell(name: str, value: str, width: int) -> str:
    """A cell on one line, its escapes visible; a workspace keeps its end (the project's name)."""
    if name != "workspace":
        return one_line(value, width)
    text = one_line(value, 10_000)
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def header_text(width: int) -> Text:
    """The list's column names, laid out as its rows."""
    return Text(" ".join(f"{name:<{w}}"[:w] for (name, _), w in zip(COLUMNS, _widths(width), strict=True)))


class SessionList(ScrollView, can_focus=True):
    """The sessions, one line each, with a cursor; only the visible rows are formatted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "open", "Open"),
    ]

    class Opened(Message):
        """Enter on a row: open its transcript."""

        def __init__(self, row: dict[str, Any]) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[dict[str, Any]] = []
        self.cursor = 0

    def set_rows(self, rows: list[dict[str, Any]], *, keep: str | None = None) -> None:
        """Show *rows*; the cursor goes to the row of id *keep* if there is one, else stays."""
        self.rows = rows
        if keep is not None:
            self.cursor = next((i for i, r in enumerate(rows) if r.get("id") == keep), self.cursor)
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        self.virtual_size = Size(self.size.width, len(rows))
        self._follow()
        self.refresh()

    @property
    def current(self) -> dict[str, Any] | None:
        return self.rows[self.cursor] if self.rows else None

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self.rows):
            return Strip.blank(width)
        cells = [
            f"{_cell(name, c, w):<{w}}"
            for (name, _), c, w in zip(COLUMNS, row_cells(self.rows[index]), _widths(width), strict=True)
        ]
        style = Style(reverse=True) if index == self.cursor and self.has_focus else None
        if index == self.cursor and not self.has_focus:
            style = Style(bold=True, underline=True)
        # One Segment of plain text: stored text is never markup here, its escapes already visible.
        return Strip([Segment(" ".join(cells), style)]).crop_extend(0, width, style)

    def _follow(self) -> None:
        height = max(self.scrollable_content_region.height, 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def _go(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._follow()
        self.refresh()

    def action_move(self, step: int) -> None:
        self._go(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._go(self.cursor + step * max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self._go(0)

    def action_last(self) -> None:
        self._go(len(self.rows) - 1)

    def action_open(self) -> None:
        if self.rows:
            self.post_message(self.Opened(self.rows[self.cursor]))

    def on_click(self, event: events.Click) -> None:
        """A click selects the row; a double click opens it."""
        self._go(self.scroll_offset.y + event.y)
        if event.chain >= 2:
            self.action_open()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


class TranscriptView(ScrollView, can_focus=True):
    """A transcript: entries rendered to lines only as far as the view has gone."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,enter", "toggle_fold", "Fold/unfold"),
        Binding("n", "next_fold(1)", "Next fold"),
        Binding("b", "next_fold(-1)", "Prev fold", show=False),
        Binding("x", "unfold_all", "Unfold all"),
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "end", "End", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries = Entries()
        self.cursor = -1
        self._lines: list[Strip] = []
        self._owner: list[int] = []  # the entry of each line
        self._start: dict[int, int] = {}  # first line of each entry rendered
        self._next = 0  # the next entry to render
        self._pending: Iterator[Text] | None = None  # the pieces left of entry _next - 1
        self._width = 0

    # -- content ------------------------------------------------------------------------------

    def show(self, entries: Entries | list[Entry]) -> None:
        """Show a new transcript from its top; the old one's lines are dropped."""
        self.entries = entries if isinstance(entries, Entries) else Entries.of(entries)
        self.cursor = -1  # space takes the first fold on screen; n the next one
        self._reset(0)
        self.scroll_to(y=0, animate=False)

    @property
    def rendered_lines(self) -> int:
        """How many lines have been rendered so far (the laziness the tests check)."""
        return len(self._lines)

    def text(self) -> str:
        """The lines rendered so far, as plain text (for tests and for the tmux check)."""
        return "\n".join(s.text for s in self._lines)

    def _reset(self, entry: int) -> None:
        line = self._start.get(entry, len(self._lines))
        del self._lines[line:]
        del self._owner[line:]
        self._start = {e: n for e, n in self._start.items() if e < entry}
        self._next, self._pending = min(entry, self._next), None
        self._extend(self.scroll_offset.y + self.size.height * 2)
        self.refresh()

    def _extend(self, upto: int) -> None:
        width = max(self.scrollable_content_region.width, 20)
        if width != self._width and self._lines:
            self._width = width
            self._lines, self._owner, self._start, self._next, self._pending = [], [], {}, 0, None
        self._width = width
        console = self.app.console
        options = console.options.update(width=width, height=None)
        while len(self._lines) < upto:
            if self._pending is None:
                if not self.entries.has(self._next):
                    break
                index = self._next
                self._start[index] = len(self._lines)
                self._pending = iter(entry_text(self.entries[index], cursor=index == self.cursor))
                self._next += 1
            piece = next(self._pending, None)
            if piece is None:
                self._pending = None
                continue
            piece.overflow = "fold"
            for line in console.render_lines(piece, options, pad=False, new_lines=False):
                self._lines.append(Strip(line))
                self._owner.append(self._next - 1)
        done = self._pending is None and not self.entries.has(self._next)
        self.virtual_size = Size(width, len(self._lines) + (0 if done else self.size.height))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self._lines):
            self._extend(index + self.size.height)
        if index >= len(self._lines):
            return Strip.blank(width)
        return self._lines[index].crop_extend(0, width, None)

    def on_resize(self) -> None:
        self._reset(0)

    def action_end(self) -> None:
        """The end: everything above it is rendered first (for a 10 MB session, a second or so)."""
        self._extend(sys.maxsize)
        self.scroll_end(animate=False, immediate=True)

    # -- folding ------------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        """A click on a fold's first line folds or unfolds it."""
        line = self.scroll_offset.y + event.y
        if line < len(self._owner) and self._start.get(self._owner[line]) == line:
            entry = self._owner[line]
            if self.entries[entry].foldable:
                self.cursor = entry
                self.entries[entry].folded = not self.entries[entry].folded
                self._reset(entry)

    def _visible_entries(self) -> range:
        top = self.scroll_offset.y
        self._extend(top + self.size.height)
        if not self._owner:
            return range(0)
        first = self._owner[min(top, len(self._owner) - 1)]
        last = self._owner[min(top + self.size.height, len(self._owner)) - 1]
        return range(first, last + 1)

    def _scroll_to_entry(self, entry: int) -> None:
        while entry not in self._start and self._next <= entry:
            self._extend(len(self._lines) + self.size.height)
        line = self._start.get(entry, 0)
        top = self.scroll_offset.y
        if not top <= line < top + self.size.height:
            self.scroll_to(y=max(line - 2, 0), animate=False)

    def action_toggle_fold(self) -> None:
        visible = self._visible_entries()
        if self.cursor not in visible:
            self.cursor = next((i for i in visible if self.entries[i].foldable), self.cursor)
        if self.entries.has(self.cursor) and self.entries[self.cursor].foldable:
            self.entries[self.cursor].folded = not self.entries[self.cursor].folded
            self._reset(self.cursor)

    def _fold_from(self, i: int, step: int) -> int:
        """The first foldable entry from *i* on (or back), or -1."""
        while self.entries.has(i) and not self.entries[i].foldable:
            i += step
        return i if self.entries.has(i) else -1

    def action_next_fold(self, step: int) -> None:
        i = self._fold_from(self.cursor + step, step)
        if i >= 0:
            old, self.cursor = self.cursor, i
            self._reset(min(old, i) if old >= 0 else i)
            self._scroll_to_entry(i)

    def action_unfold_all(self) -> None:
        everything = self.entries.all()
        fold = all(not e.folded for e in everything if e.foldable)
        for e in everything:
            if e.foldable:
                e.folded = fold
        self._reset(0)
