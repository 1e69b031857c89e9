#!/usr/bin/env python3
"""What the audit log costs: per operation, and to verify, against baselines measured in the same run.

* ``append``: one ``AuditLog.append`` (lock, anchor read, tail read, O_APPEND write + fsync,
  anchor replaced atomically with two fsyncs), against the floor of one fsynced 200-byte
  append to a plain file.
* ``load`` and ``list``: ``Vault.load`` of a small session and ``Vault.list`` of 20 sessions,
  audited as shipped vs with the audit append swapped for a no-op (the same vault, same run).
* ``verify``: records verified per second over a log of ``--records`` records.

    python benchmarks/bench_audit.py [--repeat 50] [--records 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault
from sessionseal._audit import AuditLog
from sessionseal._vault._auditing import Auditor


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        # Floor: an fsynced append of one record-sized line to a plain file.
        plain = os.open(os.path.join(tmp, "plain.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = b"x" * 199 + b"\n"

        def floor() -> None:
            os.write(plain, line)
            os.fsync(plain)

        vault = Vault.init(Path(tmp) / "v", key_provider=PassphraseProvider("bench"))
        ids = [
            vault.save({"title": f"s{i}", "messages": [{"role": "user", "content": "hello " * 50}]}) for i in range(20)
        ]
        secret = vault.parts.keys.keytable().vault_secret
        log: AuditLog = vault.parts.audit_log
        fields = {"action": "load", "outcome": "ok", "session": str(ids[0]), "bytes": 512}
        real_record = Auditor.record

        rows = {}
        rows["floor_fsync_append_ms"] = median_ms(floor, a.repeat)
        rows["audit_append_ms"] = median_ms(lambda: log.append(secret, fields), a.repeat)
        rows["load_audited_ms"] = median_ms(lambda: vault.load(ids[0]), a.repeat)
        rows["list_audited_ms"] = median_ms(vault.list, a.repeat)
        # Every record (and the head it anchors in the key table) skipped: the operation alone.
        Auditor.record = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
        try:
            rows["load_unaudited_ms"] = median_ms(lambda: vault.load(ids[0]), a.repeat)
            rows["list_unaudited_ms"] = median_ms(vault.list, a.repeat)
        finally:
            Auditor.record = real_record  # type: ignore[method-assign]
        os.close(plain)

        # Verify: grow the log to --records records, then time a full verify.
        have = sum(1 for _ in log.records())
        for _ in range(max(0, a.records - have)):
            log.append(secret, fields)
        t = time.perf_counter()
        report = vault.verify_audit()
        dt = time.perf_counter() - t
        assert report.ok, report.problems
        vault.close()
        rows["verify_records"] = report.records
        rows["verify_records_per_s"] = report.records / dt
    out = rows | {
        "append_vs_floor": rows["audit_append_ms"] / rows["floor_fsync_append_ms"],
        "load_audited_vs_unaudited": rows["load_audited_ms"] / rows["load_unaudited_ms"],
        "list_audited_vs_unaudited": rows["list_audited_ms"] / rows["list_unaudited_ms"],
    }
    print(f"fsynced plain append (floor)   {rows['floor_fsync_append_ms']:8.2f} ms")
    print(f"audit append                   {rows['audit_append_ms']:8.2f} ms   {out['append_vs_floor']:.1f}x the floor")
    print(
        f"load, audited / not            {rows['load_audited_ms']:8.2f} / {rows['load_unaudited_ms']:.2f} ms"
        f"   {out['load_audited_vs_unaudited']:.1f}x"
    )
    print(
        f"list of 20, audited / not      {rows['list_audited_ms']:8.2f} / {rows['list_unaudited_ms']:.2f} ms"
        f"   {out['list_audited_vs_unaudited']:.1f}x"
    )
    print(f"verify                         {rows['verify_records_per_s']:8.0f} records/s over {rows['verify_records']}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
