"""Each container kind is read with its own frame sequence (docs/spec/container-v1.md, step 8).

Frames are authenticated one by one, so a sequence the kind does not have (a second BODY in an
anchor, for instance) can only come from someone holding the key; the reader still refuses it
rather than reading the first frame and ignoring the rest.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sessionseal import Vault, _container
from sessionseal._audit import AuditLog
from sessionseal._container import FrameType, Kind
from sessionseal.errors import IntegrityError
from tests.unit.test_fixtures import ALL as FIXTURE_VAULTS
from tests.unit.test_fixtures import _copy as copy_fixture


def _outcome(vault: Vault) -> str:
    try:
        report = vault.verify_audit()
    except IntegrityError:
        return "IntegrityError"
    return "ok" if report.ok else ",".join(sorted(p.code for p in report.problems))


def test_an_audit_anchor_with_an_extra_frame_is_refused_as_damage(
    vault: Vault, vault_path: Path, tmp_path: Path
) -> None:
    # A tracked vault anchors the audit log's head in its key table and has no anchor file
    # (issue 20); a vault made before (the fixture vault, untracked) still reads and writes one.
    vault.save({"title": "t", "messages": []})
    assert _outcome(vault) == "ok" and not (vault_path / "audit" / "anchor.sst").exists()
    fixture = FIXTURE_VAULTS[0]
    passphrase = json.loads((fixture / "expected.json").read_text())["passphrase"]
    with Vault.open(copy_fixture(fixture, tmp_path), passphrase=passphrase, auto_cleanup=False) as legacy:
        assert not legacy.parts.keys.state().tracked
        _check_anchor_frames(legacy)


def _check_anchor_frames(vault: Vault) -> None:
    vault.save({"title": "t", "messages": []})
    assert _outcome(vault) == "ok"
    path = vault.path / "audit" / "anchor.sst"
    raw = path.read_bytes()
    _, anchor_key = AuditLog.keys(vault.parts.keys.keytable().vault_secret)
    header = _container.parse_unverified_header(raw)
    _, frames = _container.open_frames(raw, header, anchor_key)
    assert [f.type for f in frames] == [FrameType.BODY]
    body = frames[0].data

    def reseal(*types: int) -> bytes:
        return _container.seal(
            kind=Kind.AUDIT_ANCHOR,
            vault_id=header.vault_id,
            object_id=uuid.UUID(int=5),
            generation=header.generation,
            kek=anchor_key,
            kek_epoch=0,
            frames=[(t, body) for t in types],
        )

    path.write_bytes(reseal(FrameType.BODY))
    assert _outcome(vault) == "ok"  # the same anchor, sealed again: still whole
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    path.write_bytes(bytes(flipped))
    damaged = _outcome(vault)
    assert damaged != "ok"
    for types in ((FrameType.BODY, FrameType.BODY), (FrameType.META,), (FrameType.META, FrameType.BODY)):
        path.write_bytes(reseal(*types))
        assert _outcome(vault) == damaged, types  # authentic frames, but not an anchor's sequence
