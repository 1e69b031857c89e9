"""``sessionseal browse``: a terminal browser for the vault (docs/browse.md).

Textual is an extra (``pip install 'sessionseal[tui]'``) imported here alone, inside the
command: the base install, ``--help`` and ``list --json`` never load it.  The vault is opened
before the app starts, as by every command: the passphrase prompt, a locked keychain (exit 5)
or a wrong passphrase (exit 12) are the CLI's own lines and exit codes, on a terminal not yet
taken over by the app.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import click

from ._common import EXIT_INTERNAL, Context, OneLineUsageError, fail, handle_errors
from ._filters import list_filters, query_of
from ._mcp_cmds import EXIT_NO_EXTRA

__all__ = ["browse", "scrub_textual_env"]

#: Textual's settings that only change its look; every other TEXTUAL* variable is dropped
#: before Textual is imported: TEXTUAL_LOG writes a log file, TEXTUAL_SCREENSHOT an SVG of the
#: screen (decrypted text on disk), TEXTUAL=devtools sends the screen to a devtools server, and
#: TEXTUAL_PRESS presses keys (say, d and y) on start.
_TEXTUAL_LOOKS: Final = frozenset(
    {
        "TEXTUAL_THEME",
        "TEXTUAL_ANIMATIONS",
        "TEXTUAL_COLOR_SYSTEM",
        "TEXTUAL_FPS",
        "TEXTUAL_SMOOTH_SCROLL",
        "TEXTUAL_DIM_FACTOR",
        "TEXTUAL_DISABLE_KITTY_KEY",
    }
)


def scrub_textual_env(environ: MutableMapping[str, str]) -> list[str]:
    """Remove Textual's variables that write, send or act (above); return their names."""
    dropped = [k for k in environ if k.startswith("TEXTUAL") and k not in _TEXTUAL_LOOKS]
    for k in dropped:
        del environ[k]
    return dropped


@click.command()
@list_filters
@click.option(
    "--agent-command",
    "agent_command",
    metavar="CMD",
    envvar="SESSIONSEAL_RESUME_AGENT",
    help="For resume: the command that stands for the agent (a wrapper; tests) [env SESSIONSEAL_RESUME_AGENT].",
)
@click.pass_obj
@handle_errors
def browse(obj: Context, /, which: str | None, here: bool, agent_command: str | None, **filters: Any) -> None:
    """Browse the vault in the terminal: the sessions, a transcript, and actions on them.

    Needs the tui extra (pip install 'sessionseal[tui]').  The filters of 'list' choose the
    sessions it starts with (f in the app changes them).  Decrypted text stays in memory.
    """
    scrub_textual_env(os.environ)
    try:
        import textual  # noqa: F401 - only whether it is there
    except ImportError:
        fail("browse needs Textual: pip install 'sessionseal[tui]'", EXIT_NO_EXTRA)
    query = query_of(here, which, filters)
    # The first listing needs the key: the prompt, a locked keychain or a wrong passphrase are
    # met here, as in 'list', before the app takes the terminal.
    first = obj.vault().list_json(query)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise OneLineUsageError("browse needs a terminal (stdin and stdout); use 'list' and 'show' in scripts")
    from ._browse_app import BrowseApp

    agent = shlex.split(agent_command) if agent_command else None
    app = BrowseApp(obj.vault(), query, agent_command=agent, first=first)
    app.run()
    if app.crash is not None:
        fail(
            f"internal error ({app.crash}); please report it. "
            "Run with SESSIONSEAL_DEBUG=1 for a traceback (it may show session content)",
            EXIT_INTERNAL,
        )
