#!/usr/bin/env python3
"""What retention costs on a vault of ``--sessions`` small sessions, against baselines measured in the same run.

* ``plan_cleanup``: the dry run (read every session's summary, decide, count orphans).
* ``cleanup`` removing half the sessions, one key rotation per batch of
  ``_vault._erasure.CLEANUP_BATCH`` (128), against the baseline of deleting the same sessions one
  by one with ``Vault.delete`` (one rotation each), each on a fresh copy of the same vault:
  total, per session, and the ratio.
* Reference points on the full vault: a small save (the unit every row is also given in),
  a new small session, a single ``delete``, a ``rekey`` (a rotation alone), and ``stats()``.

A rotation rewrites the key table (one key per session) and the key store twice, so
its cost grows with the vault; ``--provider memory`` keeps the master keys in the process
to show what the vault's own files cost without the key file's writes.

    python benchmarks/bench_retention.py [--sessions 1000] [--repeat 15] [--erase-repeat 3]
        [--provider passphrase|memory] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault, _vault
from sessionseal._keystore import KeyProvider, MasterKeys
from sessionseal.errors import KeyNotFound

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
POLICY = {"max_age": "60d", "min_age": "1d"}  # removes exactly the old half


class MemoryProvider:
    """Master keys held by this object only: no key store I/O.  Named ``keychain`` because
    vault.json accepts only the two real providers; it stands in for one."""

    name = "keychain"

    def __init__(self, keys: dict[int, bytes] | None = None) -> None:
        self.keys = dict(keys or {})

    def describe(self) -> str:
        return "in-memory (benchmark)"

    def load(self, vault_id: uuid.UUID) -> MasterKeys:
        if not self.keys:
            raise KeyNotFound("no keys")
        return MasterKeys(dict(self.keys))

    def store(self, vault_id: uuid.UUID, keys: MasterKeys) -> None:
        self.keys = dict(keys.keys)

    def delete(self, vault_id: uuid.UUID) -> None:
        self.keys = {}


def small_session(i: int, days: float) -> dict[str, Any]:
    """About 1 KB of JSON: a title, three short messages, completed *days* ago."""
    t = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    return {
        "title": f"session {i}",
        "status": "completed",
        "created_at": t,
        "updated_at": t,
        "tags": ["bench"],
        "messages": [
            {"role": "user", "content": f"please fix test {i} in module m{i % 17}"},
            {"role": "assistant", "content": "Looking at the failure, the fixture opens the file twice. " * 3},
            {"role": "user", "content": "thanks, that works"},
        ],
    }


def median_ms(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


class Vaults:
    """A template vault of *n* sessions (half older than the policy's max-age) and fresh copies of it."""

    def __init__(self, root: Path, n: int, provider: str) -> None:
        self.root, self.provider, self.n, self.copies = root, provider, n, 0
        self.template = root / "template"
        made: KeyProvider = PassphraseProvider(PASSPHRASE, log2_n=14) if provider == "passphrase" else MemoryProvider()
        with Vault.init(self.template, key_provider=made) as v:
            for i in range(n):
                # Interleaved: even sessions are 100-400 days old, odd ones 2-50 days.
                days = 100 + (i * 7) % 300 if i % 2 == 0 else 2 + (i * 3) % 48
                v.save(small_session(i, days + 0.5), touch=False)
            self.stored = v.info().stored_bytes
        self.keys = made.keys if isinstance(made, MemoryProvider) else {}

    def open(self, path: Path) -> Vault:
        if self.provider == "passphrase":
            v = Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)
        else:
            v = Vault.open(path, key_provider=MemoryProvider(self.keys), auto_cleanup=False)
        v.parts.keys.keytable()  # unlock outside the timings (scrypt, the table's first read)
        return v

    def fresh(self) -> Vault:
        self.copies += 1
        path = self.root / f"copy{self.copies}"
        shutil.copytree(self.template, path)
        return self.open(path)


def measure_reference(vaults: Vaults, repeat: int) -> tuple[dict[str, float], list[uuid.UUID]]:
    """Single operations and read-only passes on one copy of the full vault; the sessions the policy removes."""
    rows: dict[str, float] = {}
    v = vaults.fresh()
    victims = [d.session.id for d in v.plan_cleanup(POLICY).remove]
    fixed = v.save(small_session(-1, 1))
    rows["save_ms"] = median_ms(lambda: v.save(small_session(-1, 1) | {"id": str(fixed)}), repeat)
    rows["save_new_ms"] = median_ms(lambda: v.save(small_session(-1, 1)), repeat)
    pending: list[uuid.UUID] = []
    rows["delete_one_ms"] = median_ms(
        lambda: v.delete(pending.pop()), repeat, setup=lambda: pending.append(v.save(small_session(-1, 1)))
    )
    rows["rekey_ms"] = median_ms(v.rekey, repeat)
    rows["stats_ms"] = median_ms(v.stats, repeat)
    rows["plan_ms"] = median_ms(lambda: v.plan_cleanup(POLICY), repeat)
    v.close()
    return rows, victims


def measure_erasure(vaults: Vaults, victims: list[uuid.UUID], repeat: int) -> dict[str, float]:
    """Half the vault: one cleanup vs the same sessions deleted one by one, each on a fresh copy."""
    cleanup_s, delete_s = [], []
    for _ in range(repeat):
        c = vaults.fresh()
        gc.collect()
        t = time.perf_counter()
        result = c.cleanup(POLICY)
        cleanup_s.append(time.perf_counter() - t)
        assert sorted(result.removed) == sorted(victims), "cleanup removed other sessions than planned"
        assert not result.skipped
        c.close()
        d = vaults.fresh()
        gc.collect()
        t = time.perf_counter()
        for sid in victims:
            d.delete(sid)
        delete_s.append(time.perf_counter() - t)
        assert len(d.list()) == vaults.n - len(victims)
        d.close()
    return {"cleanup_ms": statistics.median(cleanup_s) * 1000, "delete_each_ms": statistics.median(delete_s) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000, help="sessions in the vault (half are removed)")
    ap.add_argument("--repeat", type=int, default=15, help="runs of each single operation (median)")
    ap.add_argument("--erase-repeat", type=int, default=3, help="runs of each half-vault erasure (median)")
    ap.add_argument("--provider", choices=("passphrase", "memory"), default="passphrase")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    n, batch = a.sessions, _vault._erasure.CLEANUP_BATCH
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        t = time.perf_counter()
        vaults = Vaults(Path(tmp), n, a.provider)
        build_s = time.perf_counter() - t
        rows, victims = measure_reference(vaults, a.repeat)
        assert len(victims) == (n + 1) // 2, (len(victims), n)
        rows |= measure_erasure(vaults, victims, a.erase_repeat)

    removed = len(victims)
    base = rows["save_ms"]
    out: dict[str, Any] = {
        "sessions": n,
        "removed": removed,
        "batch": batch,
        "provider": a.provider,
        "stored_bytes": vaults.stored,
        **{k: round(val, 3) for k, val in rows.items()},
        "cleanup_per_session_ms": round(rows["cleanup_ms"] / removed, 3),
        "delete_each_per_session_ms": round(rows["delete_each_ms"] / removed, 3),
        "cleanup_speedup_vs_delete_each": round(rows["delete_each_ms"] / rows["cleanup_ms"], 2),
        "plan_per_session_us": round(rows["plan_ms"] * 1000 / n, 1),
        "stats_per_session_us": round(rows["stats_ms"] * 1000 / n, 1),
    }

    print(
        f"{n} sessions ({vaults.stored / n / 1024:.1f} KiB stored each, built in {build_s:.1f} s), "
        f"{a.provider} provider, cleanup batch {batch}; medians of {a.repeat} runs "
        f"({a.erase_repeat} for the half-vault erasures)"
    )
    print(f"{'operation':46} {'median':>11} {'per session':>13} {'x small save':>13}")

    def row(label: str, ms: float, per: str = "") -> None:
        print(f"{label:46} {ms:8.2f} ms {per:>13} {ms / base:12.1f}x")

    row("save, small session (baseline)", base)
    row("save, new small session", rows["save_new_ms"])
    row("delete one session (1 rotation)", rows["delete_one_ms"])
    row("rekey (1 rotation)", rows["rekey_ms"])
    row(f"stats() over {n}", rows["stats_ms"], f"{out['stats_per_session_us']:.1f} us")
    row(f"plan_cleanup() dry run over {n}", rows["plan_ms"], f"{out['plan_per_session_us']:.1f} us")
    rotations = math.ceil(removed / batch)
    row(
        f"cleanup() removing {removed} ({rotations} rotations)",
        rows["cleanup_ms"],
        f"{out['cleanup_per_session_ms']:.2f} ms",
    )
    row(
        f"delete() x {removed}, one by one ({removed} rotations)",
        rows["delete_each_ms"],
        f"{out['delete_each_per_session_ms']:.2f} ms",
    )
    print(
        f"cleanup vs one-by-one delete: {out['cleanup_speedup_vs_delete_each']:.1f}x faster "
        f"({out['cleanup_per_session_ms']:.2f} vs {out['delete_each_per_session_ms']:.2f} ms per session removed; "
        "cleanup includes its own plan)"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
