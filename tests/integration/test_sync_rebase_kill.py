"""A push SIGKILLed while it writes its ``rebase`` entry (issue 26; docs/spec/remote-v1.md,
"Rebase and retirement"), on a real S3 server (``rclone serve s3`` on 127.0.0.1): the next push
sends the committed rebase from the outbox, writes no second one, and the log holds exactly one
``rebase`` naming the live session, whose object is on the server and opens under the new epoch.

The kill point is chosen by wrapping a step in a child process, never by timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault, _remotelog
from tests._infra import killpoint
from tests._infra.s3server import S3Server

pytestmark = pytest.mark.s3

PASSPHRASE = "sync rebase kill test passphrase"

CHILD = textwrap.dedent(
    """
    import os, sys
    from tests._infra.killpoint import kill_when
    from sessionseal import Vault
    from sessionseal._vault import _sync

    # The rebase's commit: the cursor records epoch 2 as rebased, its entry still in the outbox.
    kill_when(_sync, "write_cursor", lambda d, cursor, *a: cursor.rebased == 2 and bool(cursor.outbox))
    path = sys.argv[1]
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        v.remotes.push()
    sys.exit(3)  # not killed: the point was never reached
    """
)


def test_a_push_killed_with_its_rebase_committed_sends_it_at_the_next_push(
    tmp_path: Path, server_env: S3Server
) -> None:
    path = tmp_path / "a"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a:
        a.remotes.add("cloud", f"s3://{server_env.bucket}/rebasekill", endpoint=server_env.endpoint)
        doomed = a.save({"title": "doomed", "messages": [{"role": "user", "content": "x"}]})
        kept = a.save({"title": "kept", "messages": [{"role": "user", "content": "y"}]})
        a.remotes.push()
        a.delete(doomed)
    # Killed at the rebase's commit, named by what the cursor holds, not by the number of its
    # writes before it: the push saves the cursor once more when the checkpoints directory's
    # timestamps have settled since the last push, which depends on the machine's speed.
    env = {**os.environ, **server_env.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL
    with Vault.open(path, passphrase=PASSPHRASE) as a:
        again = a.remotes.push()
        assert again.resent >= 2 and again.rebased == 0  # the rebase and its head, sent again
        device = a.remotes.devices.identity("cloud").device_id
        rid = a.remotes.devices.identity("cloud").remote_id
        assert rid is not None
        base = server_env.root / server_env.bucket / "rebasekill" / "d" / device.hex
        objects = {int(p.name, 16): p.read_bytes() for p in (base / "log").iterdir()}
        held = a.remotes.devices.epoch_keys("cloud")
        log = _remotelog.read_log(objects, held, rid, device).entries
        assert [o.entry["kind"] for o in log][-3:] == ["epoch", "tombstone", "rebase"]
        [rebase] = [o for o in log if o.entry["kind"] == "rebase"]
        assert rebase.epoch == 2 and [r["session"] for r in rebase.entry["sessions"]] == [str(kept)]
        name = rebase.entry["sessions"][0]["object"]
        _remotelog.open_object(name, (base / "o" / name).read_bytes(), {2: held[2]}, rid, device)
        assert (base / "head" / f"{rebase.seq:016x}").is_file()
