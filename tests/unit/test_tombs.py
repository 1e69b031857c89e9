"""Erasure is explicit (issue 20, item 3; docs/reliability.md, "Erasure is explicit").

The rotation that erases a session records a tomb for each file it leaves to overwrite; only a
keyless file whose tomb is recorded is ever overwritten later. Any other keyless file (a key
table put back from an older backup lacks the keys of newer sessions) is ``missing-key``:
reported, never removed, never written over.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from sessionseal import Vault, errors
from sessionseal._state import tomb_of
from tests._infra.erasure import delete_cut_short
from tests.unit.test_fixtures import FIXTURES, _copy

DOC = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}
HEADER_SIZE = 116  # docs/spec/container-v1.md: the container header


def _files_of(vault: Vault, sid: uuid.UUID) -> list[Path]:
    stem = vault.parts.keys.file_name(sid)
    return [vault.path / "sessions" / f"{stem}.sst", *sorted((vault.path / "checkpoints").glob(f"{stem}-*.ckp"))]


def test_a_tomb_is_the_first_16_bytes_of_sha256_of_the_header() -> None:
    header = bytes(range(HEADER_SIZE))
    assert tomb_of(header) == hashlib.sha256(header).digest()[:16]
    assert tomb_of(header).hex() == "da9ab8930992a9f65eccec4c310882ca"  # a vector: bytes 0..115


def test_the_erasing_rotation_records_a_tomb_per_file_left_and_unmarks(vault: Vault) -> None:
    sid, other = vault.save(DOC), vault.save(DOC)
    vault.checkpoint(sid, "one")
    files = _files_of(vault, sid)
    tombs = {tomb_of(p.read_bytes()[:HEADER_SIZE]) for p in files}
    assert sid.bytes in vault.parts.keys.state(fresh=True).marks
    delete_cut_short(vault, sid)  # the rotation is durable, every overwrite failed
    assert all(p.exists() for p in files)
    # What any other process reads from the table on disk: the tombs came with the rotation.
    with Vault.open(vault.path, key_provider=vault.parts.keys.provider) as again:
        state = again.parts.keys.state(fresh=True)
        assert state.tombs == tombs and sid.bytes not in state.marks and other.bytes in state.marks
    vault.delete(sid)  # a second delete overwrites what the first left, and the tombs go
    assert not any(p.exists() for p in files) and vault.parts.keys.state(fresh=True).tombs == set()


def test_a_delete_that_overwrites_leaves_no_tomb(vault: Vault) -> None:
    sid = vault.save(DOC)
    vault.checkpoint(sid, "one")
    vault.delete(sid)
    state = vault.parts.keys.state(fresh=True)
    assert state.tombs == set() and sid.bytes not in state.marks


def test_a_save_under_an_erased_id_overwrites_the_tombed_leftover(vault: Vault) -> None:
    sid = vault.save(DOC)
    (sfile,) = _files_of(vault, sid)
    old = sfile.read_bytes()
    delete_cut_short(vault, sid)
    vault.save({**DOC, "id": str(sid), "title": "anew"})  # a new session with that id, under a fresh key
    assert vault.load(sid).title == "anew" and sfile.read_bytes()[:HEADER_SIZE] != old[:HEADER_SIZE]
    assert vault.parts.keys.state(fresh=True).tombs == set()
    assert vault.verify().problems == []


def test_a_file_put_back_after_a_rolled_back_key_table_is_never_shredded(vault: Vault) -> None:
    table = vault.path / "keytable.sst"
    old_table = table.read_bytes()
    sid = vault.save({**DOC, "pinned": True})
    new_table = table.read_bytes()
    (sfile,) = _files_of(vault, sid)
    data = sfile.read_bytes()
    table.write_bytes(old_table)
    vault.parts.keys.table = None  # as a process opening the vault now would read it
    assert vault.plan_cleanup({"keep_last": 0, "min_age": 0}).keyless == 1
    vault.cleanup({"keep_last": 1000, "min_age": 0})
    result = vault.verify(repair=True)
    assert [p.code for p in result.errors] == ["missing-key"] and sfile.read_bytes() == data
    with pytest.raises(errors.IntegrityError, match="missing-key"):
        vault.save({**DOC, "id": str(sid)})
    table.write_bytes(new_table)
    vault.parts.keys.table = None
    assert vault.load(sid).pinned


def test_an_untracked_vault_reports_its_keyless_files_and_removes_none(tmp_path: Path) -> None:
    # A vault made before the key table carried a state recorded no erasure: a delete whose
    # overwrite failed leaves a file nothing proves erased (until 'migrate', which records none).
    fixture = FIXTURES / "vault-v1"
    expected = json.loads((fixture / "expected.json").read_text())
    path = _copy(fixture, tmp_path)
    with Vault.open(path, passphrase=expected["passphrase"], auto_cleanup=False) as v:
        assert not v.parts.keys.state().tracked
        sid = uuid.UUID(sorted(expected["sessions"])[0])
        files = [p for p in _files_of(v, sid) if p.exists()]
        delete_cut_short(v, sid)
        assert files and all(p.exists() for p in files)
        plan = v.plan_cleanup({"keep_last": 1000, "min_age": 0})
        assert plan.orphans == 0 and plan.keyless == len(files)
        assert v.cleanup(plan=plan).orphans_removed == 0
        result = v.verify(repair=True)
        assert {p.code for p in result.errors} == {"missing-key"} and all(p.exists() for p in files)
