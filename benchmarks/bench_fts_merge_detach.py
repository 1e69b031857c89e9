#!/usr/bin/env python3
"""The writer whose fold makes a tier merge due: what it costs before and after the merge left
the writer's call (issue 23; docs/design.md, "Tier merges out of the writer's call").

For each repetition and each source tree (``--base``: a checkout's ``src`` of the code before,
e.g. ``git archive integ6 src | tar -x -C /tmp/base``; and this tree's), interleaved, a
passphrase vault is built in this process one write short of a full tier: seven segments of
``--words`` words each (two saves of random words from a 50,000-word vocabulary per fold) and
the delta log one frame under its bound. Then one real ``sessionseal --passphrase-file F append
ID -`` process (a recorder's or a hook's write) runs from that tree, and its wall time and CPU
time (``os.wait4``: the writer alone, never the detached child it may start) are measured. The
merge happens in the writer before, in a detached child after (the run waits for the child to
end and checks ``ftsmerge.json`` says so, and that the eight segments became one either way).

Medians of ``--repeat`` runs; the load average at start and end.

    python benchmarks/bench_fts_merge_detach.py --base /tmp/base/src [--words 100000] [--repeat 5]

``--library`` measures a library caller instead (issue 23: "an append of one turn stays
O(turn)"), in this process and this tree: the same vault, opened with ``vault.maintenance.mode``
``inline`` (the library's default before) or ``thread`` (after), interleaved; the appending
thread's CPU (``time.thread_time``: the caller's thread alone, never the merge thread's) and
wall time for the due ``Vault.append``, then for ``--next`` one-turn appends that follow it at
once (beside the merge thread, sharing the GIL with it, in ``thread``), and the process's CPU
over both (``getrusage``: the merge's included either way).

    python benchmarks/bench_fts_merge_detach.py --library [--words 100000] [--repeat 5] [--next 20]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Vault
from sessionseal._vault import _fulltext

PW = "a bench of merges"
HERE = Path(__file__).resolve().parents[1] / "src"


def _build(path: Path, words: int, rng: random.Random) -> str:
    vocab = [f"w{rng.getrandbits(40):x}" for _ in range(50_000)]
    with Vault.init(path, key_provider=PassphraseProvider(PW, log2_n=14)) as v:
        v.maintenance.mode = "manual"
        bound = _fulltext.COMPACT_BYTES
        _fulltext.__dict__.update(COMPACT_FRAMES=2, COMPACT_BYTES=1 << 30)
        ids = []
        for i in range(14):  # 7 folds of two saves: 7 segments of tier 0
            text = " ".join(rng.choices(vocab, k=words // 2))
            ids.append(v.save({"title": f"s{i}", "messages": [{"role": "user", "content": text}]}))
        _fulltext.__dict__.update(COMPACT_FRAMES=64, COMPACT_BYTES=bound)
        for i in range(63):
            v.append(ids[i % 14], [{"role": "user", "content": " ".join(rng.choices(vocab, k=20))}])
        assert len(list((path / "fts").glob("*.seg"))) == 7
        assert not v.maintenance.status().due
    return str(ids[0])


def _merging(vault: Path) -> bool:
    """Whether a merge holds the merge lock (a child holds it from its spawn to its end)."""
    try:
        fd = os.open(vault / "locks" / "ftsmerge.lock", os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _one(name: str, src: Path, words: int, seed: int, tmp: Path) -> tuple[float, float, str]:
    path, pf = tmp / f"v{seed}-{name}", tmp / "pw"
    sid = _build(path, words, random.Random(seed))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(src),
        "SESSIONSEAL_VAULT": str(path),
        "LANG": "C.UTF-8",
    }
    line = json.dumps({"role": "assistant", "content": "the write whose fold fills the tier"}) + "\n"
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", "--passphrase-file", str(pf), "append", sid, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(line.encode())
    proc.stdin.close()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall, cpu = time.monotonic() - start, ru.ru_utime + ru.ru_stime
    assert os.waitstatus_to_exitcode(status) == 0
    while _merging(path):
        time.sleep(0.1)
    by = "writer"
    if (path / "ftsmerge.json").exists():
        by = json.loads((path / "ftsmerge.json").read_text()).get("last", {}).get("by", "?")
    segs = len(list((path / "fts").glob("*.seg")))
    assert segs == 1, segs
    return wall, cpu, by


def _library(mode: str, words: int, seed: int, tmp: Path, following: int) -> tuple[float, ...]:
    """(due append's wall, its thread CPU, the next appends' wall, their thread CPU, the
    process's CPU over all of them) of a library caller in *mode*."""
    path = tmp / f"lib{seed}-{mode}"
    sid = _build(path, words, random.Random(seed))
    with Vault.open(path, key_provider=PassphraseProvider(PW, log2_n=14), auto_cleanup=False) as v:
        v.maintenance.mode = mode  # type: ignore[assignment]
        turn = [{"role": "assistant", "content": "the write whose fold fills the tier"}]
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        w0, c0 = time.perf_counter(), time.thread_time()
        v.append(sid, turn)
        w1, c1 = time.perf_counter(), time.thread_time()
        for i in range(following):
            v.append(sid, [{"role": "user", "content": f"one more turn {i}"}])
        w2, c2 = time.perf_counter(), time.thread_time()
        assert v.maintenance.wait(600)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        last = v.maintenance.status().last
        assert last.get("by") == mode, last
        assert last.get("outcome") == "ok", last
    segs = len(list((path / "fts").glob("*.seg")))
    assert segs == 1, segs
    proc = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return w1 - w0, c1 - c0, w2 - w1, c2 - c1, proc


def library(args: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()}")
    runs: dict[str, list[tuple[float, ...]]] = {"inline": [], "thread": []}
    with tempfile.TemporaryDirectory(prefix="detach-bench-") as d:
        for r in range(args.repeat):
            for mode in ("inline", "thread") if r % 2 == 0 else ("thread", "inline"):
                runs[mode].append(_library(mode, args.words, r, Path(d), args.next))  # the same vault for both
                w, c, nw, nc, p = runs[mode][-1]
                print(
                    f"  {mode:6} run {r}: due append wall {w:.3f} s, thread CPU {c:.3f} s; "
                    f"{args.next} next wall {nw:.3f} s, CPU {nc:.3f} s; process CPU {p:.3f} s"
                )
    names = ("due append wall", "due append thread CPU", "next appends wall", "next appends thread CPU", "process CPU")
    med = {k: [statistics.median(run[i] for run in v) for i in range(5)] for k, v in runs.items()}
    for i, name in enumerate(names):
        ratio = med["thread"][i] / med["inline"][i] if med["inline"][i] else float("nan")
        print(f"{name:24}: inline {med['inline'][i]:.3f} s, thread {med['thread'][i]:.3f} s, thread/inline {ratio:.3f}")
    print(f"load average at end: {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="the src/ directory of the code before")
    ap.add_argument("--library", action="store_true", help="a library caller: inline against thread")
    ap.add_argument("--next", type=int, default=20, help="one-turn appends right after the due one (--library)")
    ap.add_argument("--words", type=int, default=100_000, help="words per small segment (7 of them, and the fold's)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.library:
        library(args)
        return
    if args.base is None:
        ap.error("--base is required (or --library)")
    print(f"load average at start: {os.getloadavg()}")
    trees = {"before": args.base.resolve(), "after": HERE}
    runs: dict[str, list[tuple[float, float, str]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory(prefix="detach-bench-") as d:
        tmp = Path(d)
        (tmp / "pw").write_text(PW)
        (tmp / "pw").chmod(0o600)
        for r in range(args.repeat):
            for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
                runs[name].append(_one(name, trees[name], args.words, r, tmp))  # the same vault for both
                print(
                    f"  {name:6} run {r}: wall {runs[name][-1][0]:.3f} s, CPU {runs[name][-1][1]:.3f} s, merged by {runs[name][-1][2]}"
                )
    med = {
        k: (statistics.median(w for w, _c, _b in v), statistics.median(c for _w, c, _b in v)) for k, v in runs.items()
    }
    for k, (w, c) in med.items():
        print(f"{k:6}: the writer's append, median wall {w:.3f} s, CPU {c:.3f} s")
    print(f"after/before: wall {med['after'][0] / med['before'][0]:.2f}, CPU {med['after'][1] / med['before'][1]:.2f}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
