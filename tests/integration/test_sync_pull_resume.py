"""A pull SIGKILLed after recording the write it was about to do, then a local write to that
same session by another process before the pull resumes (issue 26; docs/sync.md, "Pull";
docs/spec/remote-v1.md, "The pull cursor"): the session's version moved, but not by the pull's
write, and the resumed pull must not take that write as done.  The other device's change is
kept (a linked fork for a diverged append, the rename applied), and so is the local one.

The setup and the kill points are test_sync_pull_kill.py's: the child kills itself right after
the n-th replace of the pull cursor, never by timing; the local write is a real process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from sessionseal import Vault
from tests._infra.s3server import S3Server
from tests.integration.test_sync_pull_kill import CHILD, IDS, PASSPHRASE, _all, setup

pytestmark = pytest.mark.s3
__all__ = ["setup"]  # the fixture, imported for the tests below

#: Another process appends a local turn to the session, as a capture hook would.
LOCAL = (
    "import os, sys\n"
    "from sessionseal import Vault\n"
    "with Vault.open(sys.argv[1], passphrase=os.environ['PASS']) as v:\n"
    "    v.append(sys.argv[2], [{'role': 'user', 'content': 'a local turn, written after the kill'}])\n"
)


def _texts(doc: dict[str, object]) -> str:
    """Every message's content, as one JSON text to look into."""
    return orjson.dumps(doc.get("messages", [])).decode()


@pytest.mark.parametrize(
    ("n", "index", "what"),
    [
        (3, 0, "append"),  # the pull cursor's 3rd replace: the intent to append A's turn to session 0
        (5, 1, "rename"),  # its 5th: the intent to rename session 1
    ],
)
def test_a_local_write_between_the_kill_and_the_resume_is_not_taken_for_the_pulls(
    setup: tuple[Path, Path, S3Server], n: int, index: int, what: str
) -> None:
    path, reference, server = setup
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), "state", str(n)], env=env, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL
    sid = str(uuid.UUID(int=IDS[index]))
    local = subprocess.run([sys.executable, "-c", LOCAL, str(path), sid], env=env, check=False, timeout=300)
    assert local.returncode == 0, local.stderr
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert resumed.resumed
        assert v.remotes.pull().counts()["applied"] == 0
    after = _all(path)
    expected = _all(reference)
    mine = after[sid]
    assert "a local turn, written after the kill" in _texts(mine)  # the local write is kept
    if what == "append":
        # A's turn is kept too: the lines diverged, so it is a fork linked to the session.
        forks = [d for d in after.values() if (d.get("links") or {}).get("forked_from") == sid]
        assert [f for f in forks if "a's turn" in _texts(f)], "the other device's turn was dropped"
        assert "a's turn" not in _texts(mine)
    else:
        assert mine["title"] == expected[sid]["title"] == "renamed on a"
    # Every other session is as after an uninterrupted pull.
    for other, doc in expected.items():
        if other != sid and other in after:
            assert orjson.dumps(after[other], option=orjson.OPT_SORT_KEYS) == orjson.dumps(
                doc, option=orjson.OPT_SORT_KEYS
            )


def test_a_rename_whose_intent_was_recorded_but_not_written_is_written_on_resume(
    setup: tuple[Path, Path, S3Server],
) -> None:
    # Killed after recording the rename's intent (and its winning clock), before the write: the
    # resumed pull must write it, though the clock it recorded is its own.
    path, reference, server = setup
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), "state", "5"], env=env, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        assert v.remotes.pull().resumed
    assert _all(path) == _all(reference)
