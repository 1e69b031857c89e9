"""A server that misbehaves (issue 26, "Tests"; docs/design.md, "Detecting a log cut, edited,
reordered or rolled back"), against both real servers (``rclone serve s3`` and moto), each device a vault of its own.

The bucket is the adversary: through the server's own API (:meth:`S3Server.write`,
:meth:`S3Server.remove`), never through sessionseal's client, it drops an entry in the middle,
drops the tail, replays old entries under newer names, swaps two entries, rolls a whole device
prefix back to an older copy of itself after the reader applied from it, and serves a content
object with other bytes.  For each, ``sessionseal sync --pull`` on the reading device exits 19
with one line naming the writing device, and the reader's vault is left as it was: the same
sessions, byte for byte, and ``verify`` clean.  Once the bucket is put back, the same pull
succeeds and converges, so nothing of the pull's own state was damaged either.

What a bucket can do without being detected is in the design's table too: withholding the
newest entries of a device (an entry still "in flight": the replay of an old entry as the last
one is that), and rolling a prefix back before a reader ever saw the newer entries, which the
witness vectors of other devices' heads will catch (marked below until they are written).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import Vault
from sessionseal.cli import cli
from sessionseal.models import Session
from tests._infra.s3server import S3Server, both_servers
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

PREFIX = "hostile"

pytestmark = [pytest.mark.s3, both_servers]


def _session(title: str) -> Session:
    return Session.model_validate({"title": title, "messages": [{"role": "user", "content": f"{title} " * 30}]})


@dataclass
class Devices:
    server: S3Server
    a: Vault  # the writer, open in this process
    b: Path  # the reader, opened by each command
    a_hex: str
    monkeypatch: pytest.MonkeyPatch

    @property
    def prefix(self) -> str:
        return f"{PREFIX}/d/{self.a_hex}/"

    def log(self, seq: int) -> str:
        return f"{self.prefix}log/{seq:016x}"

    def head(self, seq: int) -> str:
        return f"{self.prefix}head/{seq:016x}"

    def copy(self) -> dict[str, bytes]:
        """The writer's whole prefix as the bucket holds it now."""
        return {k: self.server.read(k) for k in self.server.objects(self.prefix)}

    def put_back(self, copy: dict[str, bytes]) -> None:
        """Make the writer's prefix exactly *copy* again (through the server)."""
        now = self.server.objects(self.prefix)
        for key in now:
            if key not in copy:
                self.server.remove(key)
        for key, data in copy.items():
            if key not in now or self.server.read(key) != data:
                self.server.write(key, data)

    def pull(self) -> tuple[int, str]:
        """``sessionseal sync --pull`` on the reader: its exit code and stderr."""
        self.monkeypatch.setenv("SESSIONSEAL_VAULT", str(self.b))
        ran = CliRunner().invoke(cli, ["sync", "--pull"], catch_exceptions=False)
        return ran.exit_code, ran.stderr

    def reader_state(self) -> tuple[dict[str, bytes], list[object]]:
        with Vault.open(self.b) as v:
            return {str(s.id): v.load_json(s.id) for s in v.list()}, list(v.verify().problems)


@pytest.fixture
def devices(
    memory_keyring: object, server_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Devices]:
    """The writer pushed four times (entries 1-2, 3, 4, 5: epoch and a put, two puts, an
    append), each push with its signed head; the reader (given the epoch key, as enrolment
    does) pulled all of it."""
    url = f"s3://{server_env.bucket}/{PREFIX}"
    a = Vault.init(tmp_path / "a")
    try:
        a.remotes.add("cloud", url, endpoint=server_env.endpoint)
        first = a.save(_session("zero"))
        a.remotes.push()
        for title in ("one", "two"):
            a.save(_session(title))
            a.remotes.push()
        a.append(first, [{"role": "assistant", "content": "an appended turn"}])
        assert a.remotes.push().seq == 5
        ident = a.remotes.devices.identity("cloud")
        with Vault.init(tmp_path / "b") as b:
            b.remotes.add("cloud", url, endpoint=server_env.endpoint)
            b.remotes.devices.add_epoch_key(
                "cloud", 1, a.remotes.devices.epoch_key("cloud", 1), remote_id=ident.remote_id
            )
        found = Devices(server_env, a, tmp_path / "b", ident.device_id.hex, monkeypatch)
        code, err = found.pull()
        assert code == 0, err
        yield found
    finally:
        a.close()


def _refused(d: Devices, says: str) -> None:
    """The pull exits 19 in one line naming the writer and *says*; the reader is unchanged."""
    before = d.reader_state()
    code, err = d.pull()
    assert code == 19, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert d.a_hex in err and says in err, err
    assert d.reader_state() == before


def test_a_bucket_that_drops_replays_reorders_or_rolls_back_entries_is_refused_and_nothing_is_damaged(
    devices: Devices,
) -> None:
    d = devices
    sessions, problems = d.reader_state()
    assert len(sessions) == 3 and problems == []
    good = d.copy()
    log = {seq: good[d.log(seq)] for seq in range(1, 6)}
    older = {k: v for k, v in good.items() if not k.startswith((d.prefix + "log/", d.prefix + "head/"))}
    older.update({d.log(s): log[s] for s in (1, 2, 3)} | {d.head(s): good[d.head(s)] for s in (2, 3)})
    # What the bucket does to the writer's prefix: key -> the bytes it now serves, or None: gone.
    cases: list[tuple[str, dict[str, bytes | None], str]] = [
        ("an entry dropped in the middle", {d.log(3): None}, "has a gap"),
        ("the tail dropped, its head kept", {d.log(5): None}, "below entry 5"),
        (
            "the tail and its head dropped",
            {d.log(5): None, d.head(5): None},
            "no longer holds the entry this vault applied last",
        ),
        (
            "old entries replayed under newer names",
            {d.log(6): log[2], d.log(7): log[3]},
            "entry 6 fails authentication",
        ),
        ("an old entry replayed over a newer one", {d.log(4): log[3]}, "entry 4 fails authentication"),
        ("two entries swapped", {d.log(3): log[4], d.log(4): log[3]}, "entry 3 fails authentication"),
    ]
    for what, damage, says in cases:
        d.put_back({k: v for k, v in (good | damage).items() if v is not None})
        _refused(d, says)
        d.put_back(good)
        assert d.pull()[0] == 0, what
    # The whole prefix put back to its copy after entry 3, heads and all: consistent in itself,
    # but below what this reader applied (its pull cursor's entry 5).
    d.put_back(older)
    _refused(d, "no longer holds the entry this vault applied last")
    d.put_back(good)
    assert d.pull()[0] == 0
    assert d.reader_state() == (sessions, [])


def test_a_content_object_served_with_other_bytes_is_refused_and_nothing_is_applied(devices: Devices) -> None:
    d = devices
    before, _ = d.reader_state()
    sent = set(d.server.objects(d.prefix + "o/"))
    new = d.a.save(_session("three"))
    assert d.a.remotes.push().put == 1
    good = d.copy()
    [target] = [k for k in good if k.startswith(d.prefix + "o/") and k not in sent]  # the new session's
    other = min(sent)
    flipped = good[target][:-1] + bytes([good[target][-1] ^ 1])
    for served in [good[other], flipped]:  # another object of the same device; one bit changed
        d.server.write(target, served)
        _refused(d, "content object")
        d.put_back(good)
    assert d.pull()[0] == 0
    after, problems = d.reader_state()
    assert problems == [] and set(after) == {*before, str(new)}
    assert after[str(new)] == d.a.load_json(new)


def test_a_prefix_rolled_back_before_a_reader_saw_it_is_caught_by_another_devices_witness(
    devices: Devices, tmp_path: Path
) -> None:
    d = devices
    # The reader, having applied the writer's entries 1-5, pushes: its head witnesses entry 5.
    with Vault.open(d.b) as b:
        b.save(_session("from the reader"))
        b.remotes.push()
    good = d.copy()
    keep = {k: v for k, v in good.items() if not k.startswith((d.prefix + "log/", d.prefix + "head/"))}
    keep.update({k: v for k, v in good.items() if k in {d.log(1), d.log(2), d.log(3), d.head(2), d.head(3)}})
    d.put_back(keep)
    # A third device that never read the writer's log: only the reader's witness can tell it.
    third = tmp_path / "c"
    ident = d.a.remotes.devices.identity("cloud")
    with Vault.init(third) as c:
        c.remotes.add("cloud", f"s3://{d.server.bucket}/{PREFIX}", endpoint=d.server.endpoint)
        c.remotes.devices.add_epoch_key(
            "cloud", 1, d.a.remotes.devices.epoch_key("cloud", 1), remote_id=ident.remote_id
        )
    d.b = third
    _refused(d, "below entry 5")
