"""A pull SIGKILLed right after it wrote a pulled checkpoint, before its cursor moved past the
entry (issue 26; docs/spec/remote-v1.md, "Checkpoints"), on a real S3 server (``rclone serve
s3`` on 127.0.0.1).

The next pull meets the entry again and finds the checkpoint by its id: the vault ends with it
once, as after an uninterrupted pull, and a pull after that applies nothing.  The kill point is
chosen by wrapping the checkpoint write in a child process, never by timing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault, _device_enroll
from tests._infra import killpoint
from tests._infra.s3server import S3Server

pytestmark = pytest.mark.s3

PASSPHRASE = "sync checkpoint kill test passphrase"

CHILD = textwrap.dedent(
    """
    import os, sys
    from tests._infra.killpoint import kill_after
    from sessionseal import Vault
    from sessionseal._vault import _ckpts

    kill_after(_ckpts.Checkpoints, "write_locked", 1)
    with Vault.open(sys.argv[1], passphrase=os.environ["PASS"]) as v:
        v.remotes.pull()
    sys.exit(3)  # not killed: the point was never reached
    """
)


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE)


@contextlib.contextmanager
def _two(tmp_path: Path, server_env: S3Server, prefix: str) -> Iterator[tuple[Vault, Vault]]:
    """Devices A and B (passphrase vaults at scrypt's floor) with the remote "cloud" at *prefix*."""
    with (
        Vault.init(tmp_path / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a,
        Vault.init(tmp_path / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as b,
    ):
        for v in (a, b):
            v.remotes.add("cloud", f"s3://{server_env.bucket}/{prefix}", endpoint=server_env.endpoint)
        yield a, b


def _enrol(a: Vault, b: Vault) -> None:
    step = _device_enroll.request(b)
    device = b.remotes.devices.identity("cloud").device_id
    _device_enroll.accept(a, None, device.hex, step.pairing_code or "")
    _device_enroll.finish(b)


def _killed_pull(b_path: Path, server_env: S3Server) -> None:
    """B's pull in a child process, killed after its first checkpoint write."""
    env = {**os.environ, **server_env.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(b_path)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, "the child was not killed after the checkpoint write"


def test_a_pull_killed_after_writing_a_checkpoint_resumes_to_one(tmp_path: Path, server_env: S3Server) -> None:
    b_path = tmp_path / "b"
    with _two(tmp_path, server_env, "ckptkill") as (a, b):
        sid = a.save({"title": "work", "messages": [{"role": "user", "content": "a turn"}]})
        a.checkpoint(sid, "restore point")
        assert a.remotes.push().checkpoints == 1
        _enrol(a, b)

    _killed_pull(b_path, server_env)

    with _open(b_path) as b:
        assert [c.name for c in b.checkpoints(sid)] == ["restore point"]  # written before the kill
        resumed = b.remotes.pull()
        # That entry again (and A's enrolment of B after it), found written: nothing added.
        assert (resumed.entries, resumed.checkpoints, resumed.put) == (2, 1, 0)
        [cp] = b.checkpoints(sid)
        assert (cp.number, cp.name, cp.reason) == (1, "restore point", "manual")
        again = b.remotes.pull()
        assert (again.entries, again.checkpoints) == (0, 0)
        assert len(b.checkpoints(uuid.UUID(str(sid)))) == 1


def test_a_pull_killed_while_applying_a_rebases_checkpoints_resumes_to_one_each(
    tmp_path: Path, server_env: S3Server
) -> None:
    """A device enrolled after a delete reads A's log from its rebase, which restates A's two
    checkpoints (docs/spec/remote-v1.md, "Rebase and retirement"); killed after the first
    checkpoint write, the next pull applies the rebase again and ends with each once."""
    b_path = tmp_path / "b"
    with _two(tmp_path, server_env, "ckptrebasekill") as (a, b):
        sid = a.save({"title": "work", "messages": [{"role": "user", "content": "a turn"}]})
        doomed = a.save({"title": "doomed", "messages": [{"role": "user", "content": "gone"}]})
        a.checkpoint(sid, "first")
        a.checkpoint(sid, "second")
        a.remotes.push()
        a.delete(doomed)
        assert a.remotes.push().rebased == 1
        _enrol(a, b)

    _killed_pull(b_path, server_env)

    with _open(b_path) as b:
        assert len(b.checkpoints(sid)) == 1  # the first written before the kill
        b.remotes.pull()
        assert sorted(c.name for c in b.checkpoints(sid)) == ["first", "second"]
        assert b.remotes.pull().checkpoints == 0
        assert len(b.checkpoints(sid)) == 2
        assert [s.title for s in b.list()] == ["work"]
