"""A pull that takes up a new epoch, SIGKILLed at chosen steps (issue 26; docs/sync.md,
"Devices"): the next pull resumes and leaves exactly the vault an uninterrupted pull leaves,
holding the new epoch's key, and the push after it seals under that epoch and sends nothing
pulled back.

A revokes C (a new epoch 2 that B must take up), then pushes two sessions under it; B pulls.
The kill points are chosen by wrapping a step in a child process (the n-th key kept, pull-cursor
replace or save), never by timing: the child kills itself with SIGKILL right after the step
returned, as a crash would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sessionseal import PassphraseProvider, Vault, _device_enroll
from tests._infra import killpoint, syncscenario
from tests._infra.s3server import S3Server

pytestmark = pytest.mark.s3

PASSPHRASE = "epoch pickup kill test passphrase"
PREFIX = "pickupkill"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from tests._infra.killpoint import kill_after
    from sessionseal import Vault
    from sessionseal._vault import _devices, _store, _syncapply

    path, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    owner, name = {"keys": (_devices.Devices, "add_epoch_key"), "save": (_store.SessionStore, "save"),
                   "state": (_syncapply, "write_state")}[where]
    kill_after(owner, name, n)
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        v.remotes.pull()
    sys.exit(3)  # not killed: the point was never reached
    """
)


def _all(path: Path) -> dict[str, Any]:
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        return {str(s.id): orjson.loads(v.load_json(s.id)) for s in v.list(archived=None)}


def _enrol(enroller: Vault, new: Vault) -> None:
    step = _device_enroll.request(new)
    device = new.remotes.devices.identity("cloud").device_id.hex
    _device_enroll.accept(enroller, None, device, step.pairing_code or "")
    _device_enroll.finish(new)


@pytest.fixture(scope="module")
def module_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One ``rclone serve s3`` for the module: each test puts back the remote it starts from."""
    with syncscenario.module_server(tmp_path_factory) as server:
        yield server


def _build(server: S3Server, root: Path) -> tuple[str, ...]:
    url = f"s3://{server.bucket}/{PREFIX}"
    paths = [root / n for n in ("a", "b", "c")]
    vaults = [Vault.init(p, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) for p in paths]
    a, b, c = vaults
    try:
        for v in vaults:
            v.remotes.add("cloud", url, endpoint=server.endpoint)
        a.save({"title": "before", "messages": [{"role": "user", "content": "before"}]})
        a.remotes.push()
        _enrol(a, b)
        _enrol(a, c)
        b.remotes.pull()
        _device_enroll.revoke(a, None, c.remotes.devices.identity("cloud").device_id.hex)
        for title in ("after 1", "after 2"):
            a.save({"title": title, "messages": [{"role": "user", "content": title}]})
        assert a.remotes.push().epoch == 2
    finally:
        for v in vaults:
            v.close()
    reference = root / "reference"
    shutil.copytree(root / "b", reference)
    with Vault.open(reference, passphrase=PASSPHRASE) as v:
        result = v.remotes.pull()
        assert (result.check.taken, result.put) == (1, 2)
    return "b", "reference"


@pytest.fixture(scope="module")
def built(module_s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> syncscenario.Prepared:
    return syncscenario.prepared(module_s3, tmp_path_factory, PREFIX, lambda root: _build(module_s3, root))


@pytest.fixture
def setup(built: syncscenario.Prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, S3Server]:
    """A copy of :func:`_build`'s vaults (B, and a reference that pulled uninterrupted), the
    remote put back as it built it."""
    for name, value in built.server.env().items():
        monkeypatch.setenv(name, value)
    paths = built.fresh(tmp_path)
    return paths["b"], paths["reference"], built.server


POINTS = [
    ("keys", 1),  # the new epoch's key kept, nothing applied
    ("state", 1),  # the first write's intent recorded, under the new epoch
    ("save", 1),  # the first session saved, nothing recorded after it
    ("state", 3),  # the first session recorded as applied
]


@pytest.mark.parametrize(("where", "n"), POINTS, ids=[f"{p[0]}-{p[1]}" for p in POINTS])
def test_a_pull_taking_up_an_epoch_killed_at_a_step_resumes_to_the_same_vault(
    setup: tuple[Path, Path, S3Server], where: str, n: int
) -> None:
    path, reference, server = setup
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), where, str(n)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        v.remotes.pull()
        assert set(v.remotes.devices.epoch_keys("cloud")) == {1, 2}
        assert v.remotes.pull().counts()["applied"] == 0
    assert _all(path) == _all(reference)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        pushed = v.remotes.push()  # under the new epoch; nothing pulled is sent back
    assert (pushed.epoch, pushed.put, pushed.appended, pushed.meta) == (2, 0, 0, 0)
