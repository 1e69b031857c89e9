"""A pusher SIGKILLed after a content object's PUT and before its entry was committed leaves an
object no entry names (docs/spec/remote-v1.md, "Content objects"); ``sync --prune`` deletes that
one and nothing else (issue 26; docs/sync.md, "Pruning unnamed objects").  While the killed
push's outbox is not sent, it deletes nothing; after the next push, exactly the orphan.  The
kill points are test_sync_kill.py's: a step wrapped in a child process, never a timing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sessionseal import Vault
from tests._infra.s3server import S3Server
from tests._infra.synclog import read_pushed
from tests.integration.test_sync_kill import PASSPHRASE, PREFIX, _kill_at, setup

pytestmark = pytest.mark.s3
__all__ = ["setup"]  # the fixture, imported for the tests below


def _objects(server: S3Server, device: str) -> set[str]:
    return {p.name for p in (server.root / server.bucket / PREFIX / "d" / device / "o").iterdir()}


def test_the_object_a_killed_push_left_unnamed_is_pruned_and_nothing_else(setup: tuple[Path, S3Server]) -> None:
    path, server = setup
    _kill_at(path, server, "put", 5)  # the first object sent, its entry never committed
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        device = v.remotes.list()[0].device.hex
        ident = v.remotes.devices.identity("cloud")
        v.remotes.push()  # resumes: the orphan's session goes again, under a new name
        before = _objects(server, device)
        pushed = read_pushed(server, PREFIX, ident.device_id, ident.keys)
        named = {e["object"] for e in pushed.entries if "object" in e}
        [orphan] = before - named
        result = v.remotes.prune(min_age=0)
        assert (result.deleted, result.named, result.unproven) == (1, len(named), None)
        assert _objects(server, device) == named
        # The log still reads whole, every session once, each object opens to its session.
        after = read_pushed(server, PREFIX, ident.device_id, ident.keys)
        puts = Counter(e["session"] for e in after.entries if e["kind"] == "session.put")
        assert puts == Counter(dict.fromkeys((str(s.id) for s in v.list()), 1))
        for e in after.entries:
            if e["kind"] == "session.put":
                assert after.object(e["object"]) == v.load_json(e["session"])
        assert orphan not in _objects(server, device)
        assert v.remotes.prune(min_age=0).deleted == 0  # nothing left


def test_nothing_is_pruned_while_a_killed_push_outbox_is_not_sent(setup: tuple[Path, S3Server]) -> None:
    path, server = setup
    _kill_at(path, server, "cursor", 3)  # a batch committed to the outbox: its entries not sent
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        device = v.remotes.list()[0].device.hex
        before = _objects(server, device)
        result = v.remotes.prune(min_age=0)
        assert result.deleted == 0 and result.unproven is not None and "sync --push" in result.unproven
        assert _objects(server, device) == before  # objects the outbox's entries name are kept
        v.remotes.push()
        assert v.remotes.prune(min_age=0).deleted == 0  # every object is named once those are sent
