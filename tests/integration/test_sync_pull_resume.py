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

from sessionseal import PassphraseProvider, Vault
from tests._infra.s3server import S3Server
from tests._infra.syncscenario import rclone_buckets, s3_server
from tests.integration.test_sync_pull_kill import CHILD, IDS, PASSPHRASE, Scenario, _all, appends, setup

pytestmark = pytest.mark.s3
__all__ = ["appends", "rclone_buckets", "s3_server", "setup"]  # the fixtures, imported for the tests below

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
    setup: tuple[Path, Scenario], n: int, index: int, what: str
) -> None:
    path, scenario = setup
    server = scenario.built.server
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
    expected = scenario.pulled
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
    setup: tuple[Path, Scenario],
) -> None:
    # Killed after recording the rename's intent (and its winning clock), before the write: the
    # resumed pull must write it, though the clock it recorded is its own.
    path, scenario = setup
    server = scenario.built.server
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), "state", "5"], env=env, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        assert v.remotes.pull().resumed
    assert _all(path) == scenario.pulled


#: Another process rewrites the session whole (a save of it with its id), as an import would.
REWRITE = (
    "import os, sys\n"
    "from sessionseal import Vault\n"
    "with Vault.open(sys.argv[1], passphrase=os.environ['PASS']) as v:\n"
    "    v.save({'id': sys.argv[2], 'title': 'rewritten here',\n"
    "            'messages': [{'role': 'user', 'content': 'a local rewrite, written after the kill'}]})\n"
)


@pytest.fixture
def rewritten(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, S3Server]:
    """Device B, which pulled A's session, and A's rewrite of it (a ``session.put`` of a session
    B has, unchanged there) waiting for B."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.bucket}/pullresume-put"
    with (
        Vault.init(tmp_path / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a,
        Vault.init(tmp_path / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as b,
    ):
        for v in (a, b):
            v.remotes.add("cloud", url, endpoint=s3_server.endpoint)
        sid = a.save({"title": "first", "messages": [{"role": "user", "content": "the first version"}]})
        a.remotes.push()
        devices = a.remotes.devices
        b.remotes.devices.add_epoch_key(
            "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
        )
        assert b.remotes.pull().put == 1
        a.save({"id": str(sid), "title": "rewritten on a", "messages": [{"role": "user", "content": "a's rewrite"}]})
        assert a.remotes.push().put == 1
    return tmp_path / "b", str(sid), s3_server


def test_a_rewrite_by_another_process_is_not_taken_for_the_pulls_save(
    rewritten: tuple[Path, str, S3Server],
) -> None:
    # Killed right after recording the intent to save A's rewrite (the pull cursor's first
    # replace), before the save; then another process rewrites the session here: its generation
    # moves as the pull's save would have moved it, but its BODY is not the pull's.
    path, sid, server = rewritten
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), "state", "1"], env=env, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL
    local = subprocess.run([sys.executable, "-c", REWRITE, str(path), sid], env=env, check=False, timeout=300)
    assert local.returncode == 0, local.stderr
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert (resumed.resumed, resumed.forked, resumed.put) == (True, 1, 0)
        assert v.remotes.pull().counts()["applied"] == 0
    after = _all(path)
    assert "a local rewrite" in _texts(after[sid])  # the local rewrite stays
    forks = [d for d in after.values() if (d.get("links") or {}).get("forked_from") == sid]
    assert [f["title"] for f in forks] == ["rewritten on a (fork)"] and "a's rewrite" in _texts(forks[0])
    with Vault.open(path, passphrase=PASSPHRASE) as v:  # the local rewrite is still B's to push
        assert v.remotes.push().put == 1  # (the fork holds what A pushed: marked as pushed)
