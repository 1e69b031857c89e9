"""A scenario built once per test module and handed to each test as a fresh copy (the sync kill
tests: tests/integration/test_sync_pull_kill.py and its neighbours).

Those tests build the same state before every kill point (vaults initialised, sessions saved,
pushed, pulled), then kill a child at one step.  Building it is most of a test's time, and the
state is the same each time: so a module builds it once (:func:`prepared`, on a real ``rclone
serve s3`` of its own, :func:`module_server`), keeps the remote's objects and the vaults'
directories, and each test starts from a copy: its vaults copied with ``shutil.copytree`` (the
same copy the tests already make of their reference vault) and the remote put back to exactly
the kept objects *through the server* (:meth:`Prepared.fresh`), so the server's own listing
cache stays true.  Every test still starts from one known state, in any order.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._infra.s3server import S3Server, start_s3_server

__all__ = ["Buckets", "Prepared", "module_server", "prepared", "rclone_buckets", "s3_server"]


@contextmanager
def module_server(factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """``rclone serve s3`` on 127.0.0.1 for a module's tests, stopped after the last."""
    server = start_s3_server(factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


class Buckets:
    """A fresh, empty bucket per test on one server of the module (as the session's moto server
    gives each test, tests/_infra/s3server.py): starting ``rclone serve s3`` for every test
    costs a process start and a wait until it answers; a bucket is a directory."""

    def __init__(self, server: S3Server) -> None:
        self._server = server
        self._made = 0

    def bucket(self) -> S3Server:
        self._made += 1
        name = f"{self._server.bucket}-{self._made}"
        self._server.client.create_bucket(Bucket=name)
        fresh = dataclasses.replace(
            self._server, bucket=name, extra_env=dict(self._server.extra_env)
        )  # a test may edit its own
        assert fresh.objects() == {}
        return fresh


@dataclass(frozen=True)
class Prepared:
    """A built scenario: its vault directories (by name) and the remote's objects under
    *prefix*, as they were when it was built."""

    server: S3Server
    prefix: str
    template: Path
    names: tuple[str, ...]
    objects: dict[str, bytes]

    def fresh(self, dest: Path) -> dict[str, Path]:
        """Put the remote back as it was built and copy the vaults into *dest*: name -> path."""
        now = self.server.objects(self.prefix)
        for key in now:
            if key not in self.objects:
                self.server.remove(key)
        for key, data in self.objects.items():
            if key not in now or self.server.read(key) != data:
                self.server.write(key, data)
        assert self.server.objects(self.prefix) == {k: len(v) for k, v in sorted(self.objects.items())}
        out = {}
        for name in self.names:
            out[name] = dest / name
            shutil.copytree(self.template / name, out[name], symlinks=True)
        return out


def prepared(
    server: S3Server, factory: pytest.TempPathFactory, prefix: str, build: Callable[[Path], tuple[str, ...]]
) -> Prepared:
    """Run *build* once in a directory of its own (with the server's credentials in the
    environment); it makes the vaults there and returns their names.  The remote's objects
    under *prefix* are kept with them."""
    prefix = prefix.rstrip("/") + "/"  # "kill/" is not "kill-batch/"
    template = factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.env().items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        names = build(template)
    objects = {key: server.read(key) for key in server.objects(prefix)}
    return Prepared(server, prefix, template, names, objects)


@pytest.fixture(scope="module")
def rclone_buckets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buckets]:
    with module_server(tmp_path_factory) as server:
        yield Buckets(server)


@pytest.fixture
def s3_server(s3_backend: str, request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """*s3_backend*'s server with an empty bucket of the test's own: rclone's is the module's
    server (one start per module, not per test), moto's the session's (tests/_infra/s3server.py)."""
    if s3_backend == "rclone":
        yield request.getfixturevalue("rclone_buckets").bucket()
        return
    server = request.getfixturevalue("moto_process").bucket()
    try:
        yield server
    finally:
        if server.process.poll() is None:  # emptied: moto keeps objects in memory all session
            for key in server.objects():
                server.remove(key)
