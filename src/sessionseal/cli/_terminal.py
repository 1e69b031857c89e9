"""Terminal safety: stored text shown to a person cannot drive their terminal (issue 18).

Session text comes from agents, tools and imported files.  Printed raw at a terminal, an escape
sequence in it acts: OSC 52 writes the clipboard, OSC 8 plants links, ``ESC [2J`` and
``ESC [1A ESC [2K`` erase what a reviewer was reading, a lone CR overwrites a line, a C1 CSI
(U+009B) does the same in one character, and bidi overrides (Trojan Source) reorder what is
seen.  So, at a terminal, every such character is shown as an escape a reviewer recognises
(``\\x1b``, ``\\r``, ``\\x9b``, ``\\u202e``), in reverse video where rich draws the output:

* C0 controls but newline and tab, DEL, and C1 controls (U+0080 to U+009F);
* invisible format characters (Unicode category Cf: bidi embeddings, overrides and isolates,
  zero-width space, word joiner, BOM, tag characters, soft hyphen...), but for the zero-width
  joiner and non-joiner that emoji and several scripts need;
* line and paragraph separators (U+2028, U+2029) and lone surrogates.

A CR that ends a line (CRLF) is a line end.  "At a terminal" is what rich decides: stdout is a
TTY, or ``TTY_COMPATIBLE=1`` / ``FORCE_COLOR`` say it is one (the way to keep this rendering
through ``less -R``).  Piped or redirected, human output is the text as stored, for the tool that
reads it.  ``--json`` is always the exact data: piped, the bytes as stored; at a terminal, the
same JSON value with these characters as ``\\u`` escapes (JSON escapes C0 controls itself).
Messages on stderr are one line each, always escaped, terminal or not.
"""

from __future__ import annotations

import os
import re
import sys
from typing import IO, TYPE_CHECKING, Any, Final

import click

from .._textsafe import CONTROLS as _CONTROLS
from .._textsafe import FORMAT as _FORMAT
from .._textsafe import UNSAFE as _UNSAFE
from .._textsafe import code as _code

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["at_terminal", "json_text", "say", "shown", "styled", "visible"]

_UNSAFE_LINE: Final = re.compile(f"[\n{_CONTROLS}{_FORMAT}]")
#: What JSON text may still hold raw: its encoders escape C0 controls, not these.
_UNSAFE_JSON: Final = re.compile(f"[\x7f-\x9f{_FORMAT}]")


def at_terminal(stream: IO[Any] | None = None) -> bool:
    """Whether *stream* (stdout) is a terminal, as rich decides it."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return bool((stream or sys.stdout).isatty())
    except (AttributeError, ValueError):
        return False


def _sub(match: re.Match[str]) -> str:
    ch = match.group()
    return "\n" if ch == "\r\n" else _code(ch)


def visible(text: str, *, one_line: bool = False) -> str:
    """*text* with every character of the module's list as a visible escape (and, with
    *one_line*, newlines too)."""
    if one_line:
        return _UNSAFE_LINE.sub(lambda m: _code(m.group()), text)
    return _UNSAFE.sub(_sub, text)


def shown(text: str) -> str:
    """*text* for stdout: :func:`visible` at a terminal, as it is otherwise."""
    return visible(text) if at_terminal() else text


def say(message: str) -> None:
    """One line on stderr, escaped whatever stderr is (it is for a person, or their log)."""
    click.echo(visible(message, one_line=True), err=True)


def _json_escape(match: re.Match[str]) -> str:
    n = ord(match.group())
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


def json_text(text: str) -> str:
    """JSON text for stdout: at a terminal, the characters of the module's list as JSON ``\\u``
    escapes (the same JSON value: they can only stand inside strings); as it is otherwise."""
    return _UNSAFE_JSON.sub(_json_escape, text) if at_terminal() else text


def styled(value: str, style: str = "", *, terminal: bool) -> Text:
    """*value* as a rich Text, never parsed as markup (``[bold]`` or ``[link=...]`` in a title
    is text) nor as emoji codes; at a terminal, the characters of the module's list are
    escapes in reverse video."""
    from rich.text import Text

    out = Text(style=style)
    if not terminal:
        out.append(value)
        return out
    pos = 0
    for m in _UNSAFE.finditer(value):
        out.append(value[pos : m.start()])
        ch = m.group()
        if ch == "\r\n":
            out.append("\n")
        else:
            out.append(_code(ch), style="reverse")
        pos = m.end()
    out.append(value[pos:])
    return out
