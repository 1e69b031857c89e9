"""Where Claude Code, Codex and Gemini CLI keep their transcripts, and finding them (docs/importing.md)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["claude_projects_dir", "codex_sessions_dir", "find_transcripts", "gemini_dir"]


def claude_projects_dir() -> Path:
    """``$CLAUDE_CONFIG_DIR/projects``, else ``~/.claude/projects``."""
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base) if base else Path.home() / ".claude") / "projects"


def codex_sessions_dir() -> Path:
    """``$CODEX_HOME/sessions``, else ``~/.codex/sessions``."""
    base = os.environ.get("CODEX_HOME")
    return (Path(base) if base else Path.home() / ".codex") / "sessions"


def gemini_dir() -> Path:
    """``$GEMINI_CLI_HOME/.gemini``, else ``~/.gemini``: Gemini CLI takes the variable as the
    home directory (``google-gemini/gemini-cli: packages/core/src/utils/paths.ts``)."""
    base = os.environ.get("GEMINI_CLI_HOME")
    return (Path(base) if base else Path.home()) / ".gemini"


def find_transcripts(
    *,
    claude: bool | str | os.PathLike[str] = False,
    codex: bool | str | os.PathLike[str] = False,
    gemini: bool | str | os.PathLike[str] = False,
) -> list[Path]:
    """Transcript files to import: Claude Code main sessions (their sub-agent files are read
    with them), Codex rollouts (``.jsonl`` and ``.jsonl.zst``) and Gemini CLI sessions
    (``chats/session-*.json`` and ``.jsonl``), oldest path first.

    Each argument is False (not searched), True (the tool's default directory) or a directory.
    A directory that does not exist yields nothing.
    """
    from . import _transcripts

    found: list[Path] = []
    if claude is not False:
        root = claude_projects_dir() if claude is True else Path(claude)
        if root.is_dir():
            found += _transcripts.find_claude(root)
    if codex is not False:
        root = codex_sessions_dir() if codex is True else Path(codex)
        if root.is_dir():
            found += _transcripts.find_codex(root)
    if gemini is not False:
        root = gemini_dir() / "tmp" if gemini is True else Path(gemini)
        if root.is_dir():
            found += _transcripts.find_gemini(root)
    return found


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
find_transcripts.__module__ = "sessionseal"
