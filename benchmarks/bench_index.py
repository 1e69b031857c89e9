#!/usr/bin/env python3
"""Listing with the encrypted index against the naive listing, measured in the same run (issue 6).

On a vault of ``--sessions`` small sessions (passphrase provider, scrypt 2^14):

* ``naive``: open every session file and decrypt its META frame (what listing did before
  the index) - the baseline;
* ``index``: ``Vault.list()`` from the index, every file's stamp checked, models built;
* the parts of it: reading the index, stat-ing every session file;
* ``list_json`` as ``list --json`` runs it, unfiltered and filtered (tag and workspace);
* ``list --json`` in a fresh process (``python -m sessionseal``), wall time, with the
  process's start-up and key retrieval measured apart (``info`` in a fresh process needs
  no key; a ``list`` of an empty vault needs the key).

    python benchmarks/bench_index.py [--sessions 10000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from sessionseal import ListQuery, PassphraseProvider, Vault  # noqa: E402
from sessionseal._index import Index  # noqa: E402

PASSPHRASE = "bench"  # noqa: S105  (a throwaway vault in a temp dir)
FILTER = ListQuery(tags=("t3",), workspace="/home/dev/project3")


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def cold(v: Vault) -> Vault:
    """Forget the index this process read: the next listing reads and decodes it again."""
    v.parts.index.cached = None
    return v


def build(path: Path, n: int) -> None:
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        for i in range(n):
            v.save(
                {
                    "title": f"session {i}",
                    "status": "completed",
                    "tags": ["bench", f"t{i % 7}"],
                    "workspace": f"/home/dev/project{i % 20}",
                    "messages": [
                        {"role": "user", "content": f"please fix test {i}"},
                        {"role": "assistant", "content": "done", "model": "m1", "cost_usd": 0.01},
                    ],
                }
            )
            if n >= 1000 and i % (n // 10) == 0:
                print(f"  built {i}/{n}", file=sys.stderr)


def cli_ms(args: list[str], path: Path, repeat: int) -> float:
    env = {**os.environ, "SESSIONSEAL_VAULT": str(path), "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "sessionseal", *args]
    return median_ms(lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL), repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build the vault here (reused if it exists)")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-index-"))
    path = Path(a.keep) if a.keep else tmp / "vault"
    try:
        if not (path / "vault.json").exists():
            t = time.perf_counter()
            build(path, a.sessions)
            print(f"built {a.sessions} sessions in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        empty = tmp / "empty"
        build(empty, 0)
        with Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False) as v:
            n = len(v.list())
            names = [f for f in v.parts.ctx.sessions.names() if f.endswith(".sst")]
            master = v.parts.keys.master()
            rows = [
                (
                    "naive: decrypt every META frame (baseline)",
                    median_ms(lambda: [v.parts.store.read_summary(f) for f in names], a.repeat),
                ),
                ("index: Vault.list(), stamps checked, models", median_ms(lambda: cold(v).list(), a.repeat)),
                (
                    "  of which: read and decode index.sst",
                    median_ms(lambda: Index.load(v.parts.ctx.root, v.vault_id, master), a.repeat),
                ),
                (
                    "  of which: stat every session file",
                    median_ms(lambda: [os.stat(f, dir_fd=v.parts.ctx.sessions.fd) for f in names], a.repeat),
                ),
                ("index: list_json() (list --json), index read cold", median_ms(lambda: cold(v).list_json(), a.repeat)),
                (
                    "index: list_json, filtered by tag and workspace",
                    median_ms(lambda: cold(v).list_json(FILTER), a.repeat),
                ),
            ]
        rows += [
            ("fresh process: info (start-up, no key)", cli_ms(["info", "--json"], path, a.repeat)),
            ("fresh process: list --json, empty vault (+ key)", cli_ms(["list", "--json"], empty, a.repeat)),
            (f"fresh process: list --json, {n} sessions", cli_ms(["list", "--json"], path, a.repeat)),
            (
                "fresh process: the same, --tag t3 --workspace ...",
                cli_ms(["list", "--json", "--tag", "t3", "--workspace", "/home/dev/project3"], path, a.repeat),
            ),
        ]
        # The bar (issue 6): the listing itself, after imports and key retrieval, is what a
        # fresh 'list --json' of this vault costs beyond one of an empty vault.
        rows.append(("fresh process: listing itself (the two above, less empty)", rows[-2][1] - rows[-3][1]))
        base = rows[0][1]
        print(f"{n} sessions; medians of {a.repeat}")
        print(f"{'measurement':<60}{'median':>12}{'x naive':>10}")
        for name, ms in rows:
            print(f"{name:<60}{ms:>9.1f} ms{ms / base:>9.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
