"""Crypto-erase and rekey (docs/secure-deletion.md): through the real keychain, and under SIGKILL.

The property: after ``delete``, nothing the vault and the keychain hold *now* can decrypt
the deleted session, not even from a copy of the vault's files taken *before* the delete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest

from sessionseal import PassphraseProvider, Vault, errors
from sessionseal._container import parse_unverified_header
from sessionseal._keystore import SERVICE, MasterKeys, decode_keys
from sessionseal._keytable import KEYTABLE, KeyTable
from sessionseal._passphrase import KEYFILE
from tests._infra.forkscript import Forker, forker

PASSPHRASE = "erase tests"
GONE = "the launch code is 7431-ALPHA-erased"
KEPT = "this one stays"


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forker]:
    """The killed children are real processes forked from one that imported sessionseal once
    (tests/_infra/forkscript.py): a fork per child instead of an interpreter's start."""
    with forker(tmp_path_factory.mktemp("children")) as f:
        yield f


def _session(text: str) -> dict[str, object]:
    return {"title": text, "messages": [{"role": "user", "content": text}]}


def test_a_deleted_session_cannot_be_recovered_from_an_old_copy(real_backend: None, tmp_path: Path) -> None:
    live, copy = tmp_path / "live", tmp_path / "copy"
    with Vault.init(live) as v:
        gone, kept = v.save(_session(GONE)), v.save(_session(KEPT))
        vault_id = v.vault_id
        gone_file = copy / "sessions" / (v.parts.keys.file_name(gone) + ".sst")
    shutil.copytree(live, copy)  # a backup, a snapshot, the remnants on an SSD
    with Vault.open(live) as v:
        v.delete(gone)
        assert v.load(kept).messages[0].content[0].text == KEPT  # type: ignore[union-attr]
        with pytest.raises(errors.SessionNotFound):
            v.load(gone)

    # Everything the keychain holds for this vault now:
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert len(held.keys) == 1
    # ... opens no copy of the old key table,
    old_table = copy / KEYTABLE
    header = parse_unverified_header(old_table.read_bytes())
    assert header.kek_epoch not in held.keys
    with pytest.raises(errors.SessionSealError):
        _load_table(copy, vault_id, held)
    # ... and the live table no longer has the session's key, so its old file is noise.
    with Vault.open(live) as v:
        assert gone not in v.parts.keys.keytable().session_keys
        shutil.copy2(gone_file, live / "sessions" / gone_file.name)
        with pytest.raises(errors.SessionSealError):
            v.load(gone)
        (live / "sessions" / gone_file.name).unlink()
    # The copy, opened with the keychain as it is now, yields nothing.
    with Vault.open(copy) as c, pytest.raises(errors.KeyStoreError):
        c.load(gone)
    # Nor is the text anywhere in the live vault's files.
    assert GONE.encode() not in b"".join(p.read_bytes() for p in live.rglob("*") if p.is_file())
    Vault.open(live).destroy()


def _load_table(path: Path, vault_id: object, master: MasterKeys) -> KeyTable:
    from sessionseal._fs import Dir

    d = Dir(path)
    try:
        return KeyTable.load(d, vault_id, master)  # type: ignore[arg-type]
    finally:
        d.close()


def test_rekey_through_the_real_keychain_keeps_every_session(real_backend: None, tmp_path: Path) -> None:
    with Vault.init(tmp_path / "v") as v:
        ids = [v.save(_session(f"session {i}")) for i in range(3)]
        first = v.parts.keys.keytable().kek_epoch
        assert v.rekey() == first + 1
        vault_id = v.vault_id
    held = decode_keys(keyring.get_password(SERVICE, str(vault_id)) or "")
    assert sorted(held.keys) == [first + 1]
    from sessionseal import _keystore

    _keystore._cache.clear()  # a new process: the key comes from the keychain
    with Vault.open(tmp_path / "v") as v:
        assert [v.load(i).title for i in ids] == ["session 0", "session 1", "session 2"]
        rekeys = [r for r in v.audit_records() if r["action"] == "rekey"]
        assert [(r["detail"]["from_epoch"], r["detail"]["epoch"]) for r in rekeys] == [(first, first + 1)]
        v.destroy()


ROTATOR = textwrap.dedent(
    """
    import sys
    from sessionseal import Vault
    with Vault.open(sys.argv[1], passphrase=sys.argv[2]) as v:
        ids = sys.argv[3:]
        for i in range(10_000):
            if ids and i % 3 == 2:
                v.delete(ids.pop())
                print("deleted", flush=True)
            else:
                v.rekey()
                print("rekeyed", flush=True)
    """
)


def _epochs(path: Path) -> list[int]:
    return sorted(int(e) for e in json.loads((path / KEYFILE).read_text())["keys"])


def test_sigkill_during_rekey_and_delete_never_loses_a_kept_session(tmp_path: Path, children: Forker) -> None:
    rng = random.Random(5)
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        keep = {str(v.save(_session(f"keep {i}"))) for i in range(4)}
        for i in range(30):
            v.save(_session(f"victim {i}"))
    for _ in range(12):
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            victims = [str(s.id) for s in v.list() if str(s.id) not in keep]
        proc = children.popen(ROTATOR, path, PASSPHRASE, *victims)
        time.sleep(rng.uniform(0.3, 0.9))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        acknowledged = set(victims[len(victims) - out.split().count("deleted") :])
        # A rotation in flight leaves at most the old key and the new one.
        epochs = _epochs(path)
        assert 1 <= len(epochs) <= 2
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            listed = {str(s.id) for s in v.list()}  # first use finishes a killed rotation
            assert keep <= listed and not (acknowledged & listed)
            assert sorted(v.load(k).title for k in keep) == [f"keep {i}" for i in range(4)]
            assert v.verify_audit().ok
        assert len(_epochs(path)) == 1


CLEANER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime
    from sessionseal import Vault
    from sessionseal._vault import _erasure, _keys
    from tests._infra.killpoint import kill_after
    _erasure.CLEANUP_BATCH = 4  # several rotations per run
    path, passphrase, now, policy = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), json.loads(sys.argv[4])
    if len(sys.argv) > 5:  # a kill point: right after the n-th rotation, or the n-th session's overwrite
        point, n = sys.argv[5].split(":")
        if point == "rotation":
            kill_after(_keys.Keys, "rotate_or_forget", int(n))
        else:
            kill_after(_erasure.Erasure, "shred_files", int(n))
    with Vault.open(path, passphrase=passphrase) as v:
        plan = v.plan_cleanup(policy, now=now)
        print("ready", len(plan.remove), flush=True)
        start = time.perf_counter()
        result = v.cleanup(plan=plan, progress=lambda done, total: print("erased", done, flush=True))
        print("done", time.perf_counter() - start, len(result.removed), flush=True)
        sys.stdin.read()  # wait for the kill: every run ends the same way
    """
)


def _aged(title: str, days: float, **extra: object) -> dict[str, object]:
    t = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    doc: dict[str, object] = {"title": title, "status": "completed", "created_at": t, "updated_at": t}
    return {**doc, "messages": [{"role": "user", "content": f"{title}: " + "text " * len(title)}], **extra}


def _table_epoch(path: Path) -> int:
    return parse_unverified_header((path / KEYTABLE).read_bytes()).kek_epoch


def test_sigkill_during_cleanup_never_loses_a_kept_session_nor_leaves_one_half_erased(
    tmp_path: Path, children: Forker
) -> None:
    rng = random.Random(11)
    path = tmp_path / "vault"
    stored: dict[uuid.UUID, bytes] = {}  # every session that may still be there -> its stored document
    serial = iter(range(10_000))

    def add_victims(v: Vault, n: int) -> None:
        for _ in range(n):
            # Whole days plus half a day: no session sits on a max-age boundary.
            sid = v.save(_aged(f"victim {next(serial)}", rng.randint(3, 300) + 0.5), touch=False)
            stored[sid] = v.load_json(sid)

    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        protected = [
            *(v.save(_aged(f"pinned {i}", 900, pinned=True), touch=False) for i in range(3)),
            *(v.save(_aged(f"active {i}", 900, status="active"), touch=False) for i in range(2)),
            v.save(_aged("paused", 900, status="paused"), touch=False),
            *(v.save(_aged(f"young {i}", 0.1), touch=False) for i in range(2)),  # under min-age
        ]
        stored.update((sid, v.load_json(sid)) for sid in protected)
        add_victims(v, 40)

    per_session: float | None = None  # seconds a run takes per removal, from the first run (to its end)
    orphaned = 0
    # One calibration run, then 14 kills. Every other one is at a kill point drawn at random, so
    # that kills inside a cleanup are covered whatever the machine's speed: right after a
    # rotation (the first of them after the first rotation: the window that leaves keyless files
    # behind) or after a session's overwrite. The others fall at a random moment, wherever that is.
    points = iter(["rotation", *(rng.choice(["rotation", "shred"]) for _ in range(6))])
    for run in range(15):
        now = datetime.now(UTC)
        policy = {"max_age": f"{rng.randint(10, 200)}d", "keep_last": rng.randint(0, 3), "min_age": "1d"}
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            plan = v.plan_cleanup(policy, now=now)
        orphaned += plan.orphans > 0  # files a kill left after their key was erased
        keep = {d.session.id for d in plan.keep}
        assert set(protected) <= keep and plan.remove
        point: list[str] = []
        if run % 2 == 1:
            kind = next(points)
            calls = -(-len(plan.remove) // 4) if kind == "rotation" else len(plan.remove)  # batches of 4
            point = [f"{kind}:{1 if run == 1 else rng.randint(1, calls)}"]
        proc = children.popen(CLEANER, path, PASSPHRASE, now.isoformat(), json.dumps(policy), *point, stdin=True)
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready == ["ready", str(len(plan.remove))], proc.communicate(timeout=60)[1]
        if point:
            pass  # the child kills itself there
        elif per_session is None:
            while (line := proc.stdout.readline().split()) and line[0] != "done":
                pass
            assert line, proc.communicate(timeout=60)[1]
            per_session = float(line[1]) / len(plan.remove)
        else:
            time.sleep(rng.uniform(0, per_session * len(plan.remove)))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        assert not point or "done" not in out.split(), f"the run ended before its kill point {point[0]}"

        # A rotation in flight leaves at most the old key and the new one.
        assert 1 <= len(_epochs(path)) <= 2
        with Vault.open(path, passphrase=PASSPHRASE) as v:
            listed, problems = v.list_with_problems(archived=None)  # first use finishes a killed rotation
            listed_ids = {s.id for s in listed}
            assert keep <= listed_ids <= set(stored)
            # A kill inside an overwrite leaves a temp file, never a damaged file at a session's name.
            assert problems == []
            for sid, doc in list(stored.items()):
                if sid in keep:
                    assert v.load_json(sid) == doc  # kept: whole and unchanged
                    continue
                try:
                    assert v.load_json(sid) == doc  # not erased yet: whole
                    assert sid in listed_ids
                except errors.SessionNotFound:  # erased: gone, never half there
                    assert sid not in listed_ids
                    del stored[sid]
            assert v.verify_audit().ok
            add_victims(v, 8)  # there is always work for the next run
        assert _epochs(path) == [_table_epoch(path)]

    assert orphaned, "no kill fell between a rotation and the overwrite of its files"
    # A run to the end sweeps what the kills left (files whose key is gone, temp files of dead
    # writers, key files among them) and keeps the rest.
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        result = v.cleanup({"max_age": "30d", "min_age": "1d"})
        assert not result.skipped
        after = v.plan_cleanup({"max_age": "30d", "min_age": "1d"})
        assert after.orphans == 0 and after.remove == [] and after.warnings == []
        listed, problems = v.list_with_problems(archived=None)
        assert problems == []
        assert {s.id for s in listed} == set(stored) - set(result.removed)
        assert sorted(os.listdir(path / "sessions")) == sorted(v.parts.keys.file_name(s.id) + ".sst" for s in listed)
        assert not [n for n in os.listdir(path) if n.startswith(".tmp-")]
        for sid in protected:
            assert v.load_json(sid) == stored[sid]
        assert v.verify_audit().ok
    assert _epochs(path) == [_table_epoch(path)]


DIE_IN_SHRED = textwrap.dedent(
    """
    import os, signal, sys
    from sessionseal import Vault, _fs
    def unlink(self, name, **kw):  # shred's last step, on the file it moved aside: the kill falls just before
        if name.startswith(_fs.TMP_PREFIX) and self.path.name == "sessions":  # a session's (not the index's)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, name, **kw)
    real, _fs.Dir.unlink = _fs.Dir.unlink, unlink
    with Vault.open(sys.argv[1], passphrase=sys.argv[2]) as v:
        v.cleanup({"max_age": "30d", "min_age": 0})
    """
)


def test_a_kill_inside_an_overwrite_leaves_a_temp_file_that_the_next_run_shreds(
    tmp_path: Path, children: Forker
) -> None:
    """The name goes first: a kill in the middle of shredding never leaves a zeroed file that
    reads as a damaged session, and the next open (or cleanup) removes the temp file it leaves."""
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        gone = v.save(_aged("gone", 90), touch=False)
        kept = v.save(_aged("kept", 5), touch=False)
    proc = children.run(DIE_IN_SHRED, str(path), PASSPHRASE, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [n for n in os.listdir(path / "sessions") if n.startswith(".tmp-")]
    assert len(leftovers) == 1 and not (path / "sessions" / leftovers[0]).read_bytes().strip(b"\0")
    with Vault.open(path, passphrase=PASSPHRASE) as v:  # opening sweeps it, under the vault lock
        assert os.listdir(path / "sessions") == [v.parts.keys.file_name(kept) + ".sst"]
        assert v.load(kept).title == "kept"
        assert v.list_with_problems()[1] == []
        with pytest.raises(errors.SessionNotFound):
            v.load(gone)
        assert v.verify(read_data=True).problems == []
        result = v.cleanup({"max_age": "1y", "min_age": 0})
        assert result.temp_removed == 0 and not result.removed
