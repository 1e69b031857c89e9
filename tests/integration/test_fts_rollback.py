"""The full-text index's files cut, deleted or rolled back to an older copy (alone, with
index.sst, across a delete): search answers completely (from the index where it is current,
streaming the rest, or streaming everything while the index is unusable), never wrongly, never
with an erased session's words; the next writer catches up, and reindex makes every session
current again (docs/reliability.md, "The full-text index"). The checks run in a fresh process
(tests/_infra/ftscrash.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sessionseal import Vault
from tests._infra import ftscrash
from tests.integration.test_fts_crash import _build

FTS = "fts"


def _later_writes(path: Path, ids: dict[str, object]) -> None:
    with Vault.open(path, passphrase=ftscrash.PASSPHRASE, auto_cleanup=False) as v:
        ids["later"] = v.save(ftscrash.doc("later", "laterword"))
        v.append(ids["zero"], [{"role": "assistant", "content": "zeroafter"}])  # type: ignore[arg-type]


def _delete_victim(path: Path, ids: dict[str, object]) -> None:
    with Vault.open(path, passphrase=ftscrash.PASSPHRASE, auto_cleanup=False) as v:
        v.delete(ids["victim"])  # type: ignore[arg-type]


def _restore(path: Path, old: Path, *names: str) -> None:
    shutil.rmtree(path / FTS)
    shutil.copytree(old / FTS, path / FTS)
    for n in names:
        shutil.copy2(old / n, path / n)


def _seg(path: Path) -> Path:
    return next((path / FTS).glob("*.seg"))


def _delta(path: Path) -> Path:
    return next((path / FTS).glob("*.delta"))


def _cut(p: Path, size: int | None = None) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2 if size is None else size])


def _rolled_back(p: Path, old: Path, ids: dict[str, object]) -> None:
    _later_writes(p, ids)
    _restore(p, old)


def _rolled_back_with_index(p: Path, old: Path, ids: dict[str, object]) -> None:
    _later_writes(p, ids)
    _restore(p, old, "index.sst")


def _rolled_back_across_a_delete(p: Path, old: Path, ids: dict[str, object]) -> None:
    _delete_victim(p, ids)
    _restore(p, old)


#: name -> (what happens after the vault is built and copied, the damage, whether the index may
#: be unusable until reindex, how many sessions are stale at the next open).
Damage = Callable[[Path, Path, dict[str, object]], None]
CASES: dict[str, tuple[Damage, bool, int | None]] = {
    # An older fts/: the sessions written since are behind (streamed), the rest current.
    "fts-rolled-back": (_rolled_back, False, 2),
    "fts-and-index-rolled-back": (_rolled_back_with_index, False, 2),
    # An fts/ from before a delete: its manifest is under an epoch gone from the key store.
    "fts-rolled-back-across-a-delete": (_rolled_back_across_a_delete, True, None),
    "manifest-deleted": (lambda p, old, ids: (p / FTS / "manifest.sst").unlink(), True, None),
    "manifest-cut": (lambda p, old, ids: _cut(p / FTS / "manifest.sst"), True, None),
    "segment-deleted": (lambda p, old, ids: _seg(p).unlink(), True, None),
    "segment-cut": (lambda p, old, ids: _cut(_seg(p)), True, None),
    "delta-deleted": (lambda p, old, ids: _delta(p).unlink(), True, None),
    "delta-cut-in-its-header": (lambda p, old, ids: _cut(_delta(p), 40), True, None),
    "delta-cut-in-a-frame": (lambda p, old, ids: _cut(_delta(p), os.path.getsize(_delta(p)) - 7), False, 1),
    "fts-dir-deleted": (lambda p, old, ids: shutil.rmtree(p / FTS), True, None),
}


#: What verify must report of each (an error: the index is damaged, reindex rebuilds it; none
#: for an index that is only older: its sessions are stale, which search streams as designed).
VERIFY_ERRORS: dict[str, list[str]] = {
    "manifest-cut": ["fts-damaged"],
    "segment-deleted": ["fts-missing-file"],
    "segment-cut": ["fts-damaged"],
    "delta-deleted": ["fts-missing-file"],
    "delta-cut-in-its-header": ["fts-damaged"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_or_rolled_back_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    path, old = tmp_path / "vault", tmp_path / "old"
    ids: dict[str, object] = dict(_build(path, monkeypatch))
    shutil.copytree(path, old)
    damage, unusable_ok, stale = CASES[case]
    damage(path, old, ids)
    words = {
        ids["zero"]: ["alphaword", "zero", "zeroafter"],
        ids["victim"]: ["victimword", "victimappend"],
        ids["two"]: ["gammaword"],
        ids["three"]: ["deltaword"],
    }
    if "later" in ids:
        words[ids["later"]] = ["laterword"]
    spec = {
        "words": {str(k): v for k, v in words.items()},
        "maybe": ["zeroafter"],
        "erased": [str(ids["victim"])] if "delete" in case else [],
        "erased_words": ["victimword", "victimappend"] if "delete" in case else [],
        "unusable_ok": unusable_ok,
        "reindex": True,
        "verify_errors_ok": VERIFY_ERRORS.get(case, []),
    }
    report = ftscrash.check_in_fresh_process(path, spec)
    assert report["failures"] == [], report
    assert report["errors"] == VERIFY_ERRORS.get(case, []), report  # exactly what it should, no false error
    if stale is not None:
        assert report["stale"] == stale, report
