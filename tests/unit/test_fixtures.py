"""Vaults written by earlier formats open forever (issue 8).

Each directory under ``tests/fixtures/`` was made once by ``scripts/make_fixture_vault.py``
and is never regenerated.  A change to any format (container, key table, index, audit log,
config, key file, session document) that breaks one of these tests must ship a reader or a
migration for the old format instead of a new fixture.
"""

from __future__ import annotations

import json
import os
import shutil
from hashlib import sha256
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from sessionseal import Vault, _container, errors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ALL = sorted(p for p in FIXTURES.glob("vault-*") if (p / "expected.json").exists())


def _copy(fixture: Path, tmp_path: Path) -> Path:
    """A copy with the owner-only modes git does not keep (the vault refuses anything else)."""
    dest = tmp_path / fixture.name
    shutil.copytree(fixture / "vault", dest)
    for root, dirs, files in os.walk(dest):
        os.chmod(root, 0o700)
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            os.chmod(os.path.join(root, f), 0o600)
    return dest


@pytest.fixture(params=ALL, ids=[p.name for p in ALL])
def old(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    fixture: Path = request.param
    return _copy(fixture, tmp_path), json.loads((fixture / "expected.json").read_text())


def test_there_is_a_fixture_of_the_current_formats() -> None:
    assert ALL and (FIXTURES / "vault-v1" / "expected.json").exists()


def test_an_old_vault_reads_as_it_was_written(old: tuple[Path, dict[str, Any]]) -> None:
    reads_as_written(*old)


def reads_as_written(path: Path, expected: dict[str, Any]) -> None:
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        summaries, problems = v.list_with_problems(archived=None)
        assert problems == []
        assert {str(s.id) for s in summaries} == set(expected["sessions"])
        for s in summaries:
            want = expected["sessions"][str(s.id)]
            got = {
                "title": s.title,
                "status": s.status.value,
                "tags": s.tags,
                "pinned": s.pinned,
                "message_count": s.message_count,
                "generation": s.generation,
            }
            assert got == {k: want[k] for k in got}
            assert json.loads(v.load_json(s.id)) == want["document"]
            v.load(s.id)  # and the models still accept it
            assert [c.name for c in v.checkpoints(s.id)] == want["checkpoints"]
        with pytest.raises(errors.SessionNotFound):
            v.load(expected["deleted"])
        assert v.verify_audit().ok
        assert v.config().sanitizer.literals  # the encrypted config


def test_an_old_vault_migrates_cleanly(old: tuple[Path, dict[str, Any]]) -> None:
    # Its key table predates issue 20: migrate starts tracking its state from the files as they
    # are, and the vault reads as it was written before and after.
    path, expected = old
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        assert not v.parts.keys.state(fresh=True).tracked
        # (a copy's index is stale: its stamps name the fixture's inodes and times)
        found_before = sorted(p.code for p in v.verify(read_data=True).problems)
        last_seq = max(r["seq"] for r in v.audit_records() if r.get("seq"))
        _, steps = v.migrate()
        assert [s for s in steps if s.startswith("key table state:")]
        state = v.parts.keys.state(fresh=True)
        assert state.tracked and state.tombs == set()
        files = {}
        for f in (path / "sessions").glob("*.sst"):
            header = _container.parse_unverified_header(f.read_bytes())
            files[header.object_id.bytes] = (header.generation, f.stat().st_size)
        assert state.marks == files and {UUID(bytes=b) for b in files} == {UUID(k) for k in expected["sessions"]}
        config = (path / "config.sst").read_bytes()
        assert state.config == (_container.parse_unverified_header(config).generation, sha256(config).hexdigest())
        assert state.audit is not None and state.audit.seq >= last_seq
        result = v.verify(read_data=True)
        assert result.ok and sorted(p.code for p in result.problems) == found_before
        assert v.verify_audit().ok
        assert v.migrate()[1] == []  # once
    reads_as_written(path, expected)


def test_an_old_vault_takes_new_writes(old: tuple[Path, dict[str, Any]]) -> None:
    path, expected = old
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        sid = next(iter(expected["sessions"]))
        v.append(sid, [{"role": "user", "content": "a new turn"}])
        new = v.save({"title": "new", "messages": []})
        with_cp = [k for k, w in expected["sessions"].items() if w["checkpoints"]]
        for k in with_cp:
            v.fork(k, checkpoint=expected["sessions"][k]["checkpoints"][0])
        v.rekey()
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        assert len(v.load(sid).messages) == expected["sessions"][sid]["message_count"] + 1
        assert v.load(new).title == "new"
        assert v.verify_audit().ok


def test_no_plaintext_secret_in_an_old_vault(old: tuple[Path, dict[str, Any]]) -> None:
    path, expected = old
    planted = expected["secret_planted"].encode()
    for p in path.rglob("*"):
        if p.is_file():
            assert planted not in p.read_bytes(), p
    with Vault.open(path, passphrase=expected["passphrase"]) as v:
        for sid in expected["sessions"]:
            assert planted not in v.load_json(sid)
