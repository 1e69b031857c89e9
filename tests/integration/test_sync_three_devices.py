"""Three devices on one remote (issue 26, "Tests"; docs/sync.md), against both real servers
(``rclone serve s3`` and moto): separate vaults and key stores, the second and third enrolled
through ``sessionseal device enroll`` (request, ``--accept`` with the pairing code on a device
already enrolled, ``--finish``), then several rounds in which every device changes its vault and
all three run ``sessionseal sync --pull`` and ``sync --push`` as real processes at the same time.
Each device's commands are forked from a command server of its own (tests/_infra/forkcli.py, CliServers):
separate processes that overlap, without an interpreter start-up each.

Nothing is timed and nothing rests on which process gets there first: after the rounds, every
device pulls once more and all of them hold every session made anywhere; the session two
devices appended to in every round ends, on each device, as its own line plus linked forks
(``links.forked_from``) that together hold every turn either device appended; a further pull
applies nothing; and every vault verifies.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.models import Session
from tests._infra.forkcli import CliServers
from tests._infra.s3server import S3Server, both_servers
from tests.integration._cli import Ran

pytestmark = [pytest.mark.s3, pytest.mark.slow, both_servers]

PASSPHRASE = "three devices test passphrase"
PREFIX = "three"
#: Rounds of concurrent syncs per server. moto runs one: it is there for the conditional-write
#: path, which one round of three concurrent pushers exercises; rclone (no conditional writes,
#: so correctness rests on the layout alone) runs two. CI time, not coverage, sets the split.
ROUNDS = {"rclone": 2, "moto": 1}
#: A hang guard only: a command on a loaded machine takes seconds.
TIMEOUT = 300


@dataclass
class Device:
    name: str
    path: Path
    env: dict[str, str]
    servers: CliServers
    made: set[str] = field(default_factory=set)  # ids of the sessions this device created

    def run(self, *args: str) -> Ran:
        return self.servers.run(self.name, *args, env=self.env, timeout=TIMEOUT)

    def ok(self, *args: str) -> dict[str, Any]:
        ran = self.run(*args, "--json")
        assert ran.code == 0, f"{self.name} {' '.join(args)}: {ran.err}"
        doc: dict[str, Any] = json.loads(ran.out)
        return doc

    def vault(self) -> Vault:
        return Vault.open(self.path, passphrase=PASSPHRASE)


def _session(title: str) -> Session:
    return Session.model_validate({"title": title, "messages": [{"role": "user", "content": f"{title}: start"}]})


@pytest.fixture(scope="module")
def servers() -> Iterator[CliServers]:
    """A command server per device, shared by the module's tests (a server keeps no state)."""
    cli = CliServers("a", "b", "c")
    yield cli
    cli.close()


@pytest.fixture
def three(server_env: S3Server, tmp_path: Path, servers: CliServers) -> tuple[Device, Device, Device]:
    s3_server = server_env  # remote add checks the remote from this process too
    devices = []
    url = f"s3://{s3_server.bucket}/{PREFIX}"
    for name in ("a", "b", "c"):
        path = tmp_path / name
        with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
            v.remotes.add("cloud", url, endpoint=s3_server.endpoint)
        env = {
            "SESSIONSEAL_VAULT": str(path),
            "SESSIONSEAL_PASSPHRASE": PASSPHRASE,
            "HOME": str(tmp_path / f"home-{name}"),
            **s3_server.env(),
        }
        devices.append(Device(name, path, env, servers))
    a, b, c = devices
    return a, b, c


def _enrol(new: Device, by: Device) -> None:
    """``device enroll`` on *new*, ``--accept`` with its code on *by*, ``--finish`` on *new*."""
    asked = new.ok("device", "enroll")
    assert asked["pairing_code"] and not asked["enrolled"]
    by.ok("device", "enroll", "--accept", asked["device"], "--code", asked["pairing_code"])
    done = new.ok("device", "enroll", "--finish")
    assert done["enrolled"] and done["epoch"] == 1


def _sync_all_at_once(devices: tuple[Device, ...]) -> list[tuple[str, Ran, Ran]]:
    """Every device runs ``sync --pull`` then ``sync --push``, all devices at the same time."""
    results: list[tuple[str, Ran, Ran]] = []
    errors: list[BaseException] = []

    def one(d: Device) -> None:
        try:
            pulled = d.run("sync", "--pull", "--json")
            pushed = d.run("sync", "--push", "--json")
            results.append((d.name, pulled, pushed))
        except BaseException as exc:  # a hang guard's timeout: reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def _texts(doc: dict[str, Any]) -> list[str]:
    """Each message's text (a stored message's content is a list of parts)."""
    return ["".join(p.get("text", "") for p in m["content"]) for m in doc["messages"]]


def test_three_devices_sync_concurrently_and_converge_with_forks_and_nothing_lost(
    three: tuple[Device, Device, Device], server_env: S3Server
) -> None:
    a, b, c = three
    rounds = ROUNDS[server_env.kind]
    with a.vault() as v:
        shared = str(v.save(_session("shared")))
        a.made.add(shared)
    first = a.ok("sync", "--push")
    assert first["first"] and first["put"] == 1
    _enrol(b, a)
    _enrol(c, b)  # an enrolled device enrols the next one
    for d in (b, c):
        with d.vault() as v:
            assert v.remotes.pull().put == 1
    appended: set[str] = set()
    for r in range(1, rounds + 1):
        for d in (a, b, c):
            with d.vault() as v:
                d.made.add(str(v.save(_session(f"{d.name} round {r}"))))
                if d is not c:  # two devices append to the same session: their lines diverge
                    turn = f"{d.name} turn {r}"
                    v.append(uuid.UUID(shared), [{"role": "assistant", "content": turn}])
                    appended.add(turn)
        for name, pulled, pushed in _sync_all_at_once((a, b, c)):
            assert pulled.code == 0, f"{name} round {r} pull: {pulled.err}"
            assert pushed.code == 0, f"{name} round {r} push: {pushed.err}"
    # Converge: each device pulls what the others pushed last (nothing of theirs is left to push).
    for d in (a, b, c):
        with d.vault() as v:
            assert v.remotes.push().entries == 0
    for d in (a, b, c):
        d.ok("sync", "--pull")
    everything = a.made | b.made | c.made
    assert len(everything) == 1 + 3 * rounds
    for d in (a, b, c):
        with d.vault() as v:
            assert v.remotes.pull(dry_run=True).counts()["to_apply"] == 0, f"{d.name} had not converged"
            docs = {str(s.id): json.loads(v.load_json(s.id)) for s in v.list()}
            assert everything <= set(docs), f"{d.name} lacks a session"
            forks = [doc for doc in docs.values() if doc.get("links", {}).get("forked_from") == shared]
            assert forks, f"{d.name}: the diverged appends made no fork"
            held = set(_texts(docs[shared])).union(*(_texts(f) for f in forks))
            assert appended <= held, f"{d.name} lost {sorted(appended - held)}"
            # The sessions nobody appended to arrive as they were made.
            for sid in everything - {shared}:
                assert _texts(docs[sid]) == [f"{docs[sid]['title']}: start"]
            assert v.verify().problems == []
