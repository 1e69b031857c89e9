"""``device enroll --accept`` and ``device revoke`` SIGKILLed at chosen steps (issue 26;
docs/sync.md, "Devices"): they commit through the push's outbox, so the next push sends what
the killed one left, under the same names with the same bytes, and the enrolment then finishes
(or the revocation's epoch is announced) on the real S3 server (``rclone serve s3``).

As in test_sync_kill.py, the kill points are the n-th call of a step in a child process, never
a timing: the child kills itself with SIGKILL right after the step returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault, _device_enroll, _remotekeys, list_devices
from tests._infra.s3server import S3Server
from tests._infra.synclog import server_files
from tests._infra.syncscenario import rclone_buckets, s3_server

__all__ = ["rclone_buckets", "s3_server"]  # the fixtures: one rclone server per module, a bucket per test

PASSPHRASE = "enroll kill test passphrase"
PREFIX = "kill"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from sessionseal import Vault, _device_enroll, _s3
    from sessionseal._vault import _sync

    path, what, arg, code, where, n = sys.argv[1:7]
    calls = 0
    owner, name = {"put": (_s3.S3Store, "put"), "cursor": (_sync, "write_cursor")}[where]
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        global calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == int(n):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        if what == "accept":
            _device_enroll.accept(v, None, arg, code)
        else:
            _device_enroll.revoke(v, None, arg)
    sys.exit(3)  # not killed: the point was never reached
    """
)


@pytest.fixture
def pair(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, S3Server]:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    paths = tmp_path / "a", tmp_path / "b"
    for path in paths:
        with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
            v.remotes.add("cloud", f"s3://{s3_server.bucket}/{PREFIX}", endpoint=s3_server.endpoint)
    with Vault.open(paths[0], passphrase=PASSPHRASE) as a:
        a.save({"title": "t", "messages": [{"role": "user", "content": "hi"}]})
        a.remotes.push()
    return paths[0], paths[1], s3_server


def _kill(path: Path, server: S3Server, *args: str) -> None:
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), *args], env=env, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {args}"


# An accept's commit: one cursor replace with its outbox (the enrolment object, the entry, the
# head: PUTs 1-3), then the replace that clears it.
@pytest.mark.parametrize(("where", "n", "resent"), [("cursor", 1, 3), ("put", 1, 3), ("put", 3, 3)])
def test_an_accept_killed_at_a_step_is_finished_by_the_next_push(
    pair: tuple[Path, Path, S3Server], where: str, n: int, resent: int
) -> None:
    a_path, b_path, server = pair
    with Vault.open(b_path, passphrase=PASSPHRASE) as b:
        step = _device_enroll.request(b)
        device = b.remotes.devices.identity("cloud").device_id
    _kill(a_path, server, "accept", device.hex, step.pairing_code or "", where, str(n))
    with Vault.open(a_path, passphrase=PASSPHRASE) as a:
        assert a.remotes.push().resent == resent
        files = server_files(server)
        assert a.remotes.push().bytes == 0 and server_files(server) == files
    with Vault.open(b_path, passphrase=PASSPHRASE) as b:
        assert _device_enroll.finish(b).epoch == 1
        b.save({"title": "b", "messages": [{"role": "user", "content": "from b"}]})
        assert b.remotes.push().put == 1
    with Vault.open(a_path, passphrase=PASSPHRASE) as a:
        assert {e.status for e in list_devices(a).devices} == {"enrolled"}


def test_a_revocation_killed_before_it_was_sent_is_announced_by_the_next_push(
    pair: tuple[Path, Path, S3Server],
) -> None:
    a_path, b_path, server = pair
    with Vault.open(b_path, passphrase=PASSPHRASE) as b:
        step = _device_enroll.request(b)
        device = b.remotes.devices.identity("cloud").device_id
    with Vault.open(a_path, passphrase=PASSPHRASE) as a:
        _device_enroll.accept(a, None, device.hex, step.pairing_code or "")
    with Vault.open(b_path, passphrase=PASSPHRASE) as b:
        _device_enroll.finish(b)
    _kill(a_path, server, "revoke", device.hex, "-", "cursor", "1")  # recorded in the outbox, nothing sent
    with Vault.open(a_path, passphrase=PASSPHRASE) as a:
        me = a.remotes.devices.identity("cloud").device_id
        assert max(a.remotes.devices.epoch_keys("cloud")) == 2
        assert a.remotes.push().resent == 4  # the key object, the epoch and revoke entries, the head
        keys = server.root / server.bucket / PREFIX / "d" / me.hex / "keys" / f"{2:08x}"
        assert _remotekeys.parse_keys_object(keys.read_bytes()).for_device(device) is None
        status = {e.device: e.status for e in list_devices(a).devices}
        assert status == {me: "enrolled", device: "revoked"}
