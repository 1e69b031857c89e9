"""``sessionseal browse`` under a real terminal: tmux (docs/browse.md).

The pilot tests (tests/unit/test_browse.py) drive the app headless; this one runs the real
command in a detached tmux session of a fixed size, on a private server socket (``-L``), sends
keys as a person types them and reads the screen with ``capture-pane``: the list, then an opened
transcript, then quit.  The test kills its tmux server whatever happens.  Required in CI
(SESSIONSEAL_REQUIRE_TUI=1, with tmux installed by .ci/run); skipped elsewhere without tmux or
Textual.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault

pytestmark = pytest.mark.tui

REQUIRED = bool(os.environ.get("SESSIONSEAL_REQUIRE_TUI"))
SRC = Path(__file__).resolve().parents[2] / "src"
PASSPHRASE = "tmux browse passphrase"  # a throwaway vault in a temp dir
#: How long the screen may take to show what a step expects: generous, since the test must
#: not depend on the machine's speed; a working app shows it in well under a second.
PATIENCE = 60.0


def _tools() -> None:
    if REQUIRED:
        importlib.import_module("textual")
        assert shutil.which("tmux"), "tmux is required in CI (.ci/run installs it)"
        return
    pytest.importorskip("textual")
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")


class Tmux:
    """A tmux server of this test's own (a private socket name), and its one session."""

    def __init__(self) -> None:
        self.socket = f"sessionseal-test-{uuid.uuid4().hex[:12]}"

    def __call__(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, check=True)
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "browse")

    def wait_for(self, ok: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + PATIENCE
        seen = ""
        while time.monotonic() < deadline:
            seen = self.screen()
            if ok(seen):
                return seen
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed {what}; it showed:\n{seen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    _tools()
    t = Tmux()
    try:
        yield t
    finally:
        t.kill()


def test_browse_lists_opens_a_transcript_and_quits_in_a_real_terminal(tmux: Tmux, tmp_path: Path) -> None:
    vault_path = tmp_path / "vault"
    with Vault.init(vault_path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        v.save({"title": "older session", "messages": [{"role": "user", "content": "nothing here"}]})
        v.save(
            {
                "title": "tmux check \x1b[2J",
                "tags": ["seen"],
                "messages": [
                    {"role": "user", "content": "Periwinkle lighthouse question"},
                    {"role": "assistant", "content": [{"type": "tool_call", "name": "bash", "arguments": "ls"}]},
                ],
            }
        )
    done = tmp_path / "exit-status"
    # COLUMNS and LINES (set by whatever runs the tests) would override the pane's size.
    command = f"env -u COLUMNS -u LINES {sys.executable} -m sessionseal --vault {vault_path} browse; echo $? > {done}; sleep 30"
    env = {"SESSIONSEAL_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(SRC), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    tmux(
        "new-session", "-d", "-s", "browse", "-x", "120", "-y", "36",
        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
        command,
    )  # fmt: skip
    # The stored ESC is shown as an escape, not sent to the terminal (which would clear it).
    screen = tmux.wait_for(lambda s: "2 session(s)" in s and "tmux check \\x1b[2J" in s, "the list")
    assert "older session" in screen
    assert "title" in screen and "workspace" in screen and "cost" in screen
    tmux("send-keys", "-t", "browse", "Enter")
    screen = tmux.wait_for(lambda s: "Periwinkle lighthouse question" in s, "the opened transcript")
    assert "▸ -> bash" in screen  # the tool call folded
    tmux("send-keys", "-t", "browse", "Tab", "q")
    deadline = time.monotonic() + PATIENCE
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done.read_text().strip() == "0"


def test_resume_hands_the_terminal_to_the_agent_and_takes_it_back(tmux: Tmux, tmp_path: Path) -> None:
    from tests.unit.test_browse import CLAUDE_SID, FAKE, claude_transcript

    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".claude").mkdir(parents=True)
    work.mkdir()
    (home / ".claude" / ".credentials.json").write_text('{"claudeAiOauth": {"accessToken": "sk-ant-oat01-fake"}}')
    (home / ".claude" / "settings.json").write_text("{}")
    vault_path = tmp_path / "vault"
    with Vault.init(vault_path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        [outcome] = v.import_transcripts([claude_transcript(tmp_path / "claude-in")])
        sid = outcome.session_id
        assert sid is not None
    done, report = tmp_path / "exit-status", tmp_path / "report.json"
    command = (
        f"env -u COLUMNS -u LINES -u CLAUDE_CONFIG_DIR {sys.executable} -m sessionseal --vault {vault_path} browse "
        f"--agent-command '{sys.executable} {FAKE}'; echo $? > {done}; sleep 30"
    )
    env = {
        "SESSIONSEAL_PASSPHRASE": PASSPHRASE,
        "PYTHONPATH": str(SRC),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "FAKE_REPORT": str(report),
        "FAKE_PHRASE": "Marmalade semaphore 2290",
    }
    tmux(
        "new-session", "-d", "-s", "browse", "-x", "120", "-y", "36", "-c", str(work),
        *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
        command,
    )  # fmt: skip
    tmux.wait_for(lambda s: "1 session(s)" in s, "the list")
    tmux("send-keys", "-t", "browse", "R")
    screen = tmux.wait_for(lambda s: "Resume in claude" in s, "the resume question")
    assert "--resume" in screen and CLAUDE_SID[:8] in screen, screen  # the command, wrapped in the dialog
    tmux("send-keys", "-t", "browse", "y")
    # The agent ran with the terminal, exited; the app came back and says so.
    screen = tmux.wait_for(lambda s: "exited with status 0" in s, "the app back after the agent")
    assert report.exists()
    tmux("send-keys", "-t", "browse", "q")
    deadline = time.monotonic() + PATIENCE
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done.read_text().strip() == "0"
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        texts = [b.text for m in v.load(sid).messages for b in m.content if hasattr(b, "text")]
    assert any("Marmalade semaphore 2290" in t for t in texts)  # what the agent added, sealed back
    assert not any((vault_path / "run").iterdir()) if (vault_path / "run").exists() else True
