"""Claude Code, Codex CLI and Gemini CLI transcripts, parsed into sessionseal session documents.

Claude Code and Codex keep each session as a JSON-lines file that they append to while the
agent runs (docs/importing.md says where); Gemini CLI rewrites one JSON document, or (newer
releases) appends JSON lines (``_gemini`` says how).  Neither format is documented as stable, so this package is
written to lose nothing and to fail on nothing:

* every line is one record; a line that is not a JSON object is skipped with a warning that
  names its number, never its content (a transcript is full of secrets until the vault has
  sanitized it);
* records this package does not map are kept verbatim as ``raw_events`` and counted in
  :attr:`Transcript.unknown`, so what a newer tool writes survives an import;
* a last line without its newline is still being written, unless it decodes as a JSON object
  (no proper prefix of an object is one): such a line is read and counted in
  :attr:`Transcript.consumed`; any other is neither parsed nor counted, so the next import
  reads it whole.  Either way the file is not removed until it ends with a newline
  (:func:`removable`).

It is pure: bytes in, dicts out (the vault validates, sanitizes and stores them).  Secrets
are passed through verbatim: redacting here would hide them from the sanitizer's count and
rules, which are the one place that decides what a secret is.

The package, by concern (each imports only the ones above it; none imports another's private
names):

* ``_values``: the JSON lines of a file and the value helpers both readers share;
* ``_document``: the record model, :class:`Transcript` and the document both formats map to;
* ``_claude``: Claude Code session files and their sub-agents;
* ``_codex``: Codex rollouts (``.jsonl`` and ``.jsonl.zst``), envelope and legacy formats;
* ``_gemini``: Gemini CLI sessions (``.json`` documents and ``.jsonl``), and their growth test;
* ``_files``: finding and reading files (discovery, the read that gives the stamp, format sniffing,
  a Claude Code session's side files: sub-agents and tool-results);
* ``_removal``: whether an imported original may be removed (:func:`removable`).
"""

from __future__ import annotations

from ._claude import claude_message, parse_claude
from ._codex import parse_codex
from ._document import CLAUDE as CLAUDE
from ._document import CODEX as CODEX
from ._document import GEMINI as GEMINI
from ._document import Transcript
from ._files import (
    claude_side_files,
    find_claude,
    find_codex,
    find_gemini,
    gemini_superseded,
    identify,
    read_transcript,
    side_files_changed,
)
from ._gemini import grew_in_place, parse_gemini
from ._removal import KEPT_CHANGED as KEPT_CHANGED
from ._removal import KEPT_INCOMPLETE as KEPT_INCOMPLETE
from ._removal import KEPT_RECENT as KEPT_RECENT
from ._removal import KEPT_UNSAFE as KEPT_UNSAFE
from ._removal import KEPT_WRITERS_UNKNOWN as KEPT_WRITERS_UNKNOWN
from ._removal import KEPT_WRITING as KEPT_WRITING
from ._removal import QUIET_PERIOD, removable

__all__ = [
    "QUIET_PERIOD",
    "Transcript",
    "claude_message",
    "claude_side_files",
    "find_claude",
    "find_codex",
    "find_gemini",
    "gemini_superseded",
    "grew_in_place",
    "identify",
    "parse_claude",
    "parse_codex",
    "parse_gemini",
    "read_transcript",
    "removable",
    "side_files_changed",
]
