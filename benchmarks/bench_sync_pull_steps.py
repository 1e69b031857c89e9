#!/usr/bin/env python3
"""Where a pull's applying thread spends its CPU, step by step (issue 26, "Speed"; docs/sync.md,
"Pull"): ``--sessions`` sessions as :mod:`bench_sync_pull` makes them, pushed once to ``rclone
serve s3`` on 127.0.0.1, then pulled ``--rounds`` times onto a fresh, enrolled device, each step
of the pull wrapped to sum ``time.thread_time`` spent in it by the main thread (the one that
applies every change; the fetching threads' time is not counted), with the collector's own
collections in that thread.  Steps nest (a batch's saves hold the builds and writes), so the
figures do not add up.  Reported: the last round's, per session, with the load average.

``--tree DIR`` measures another source tree's code (``git archive`` of a ref), so two versions
can be measured one after the other; each process measures one.

    python benchmarks/bench_sync_pull_steps.py [--sessions 300] [--rounds 2] [--tree DIR]
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]


def instrument(spent: dict[str, float]) -> None:
    """Wrap each step of the pull (of the code first on sys.path) to add its main-thread CPU to *spent*."""
    from sessionseal import _container
    from sessionseal._vault import (
        _auditing,
        _ftsmerge,
        _fulltext,
        _indexcache,
        _keys,
        _store,
        _sync,
        _syncapply,
        _syncobjects,
    )

    main_thread = threading.main_thread()

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def step(*a: Any, **k: Any) -> Any:
            if threading.current_thread() is not main_thread:
                return fn(*a, **k)
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent[label] += time.thread_time() - t

        return step

    steps: list[tuple[Any, list[str]]] = [
        (_syncobjects.PullObjects, ["payload", "document"]),
        (_syncapply.Applier, ["run", "_put_batch", "_saves", "_save", "_model", "_save_state"]),
        (_store.SessionStore, ["build", "write", "write_locked", "_flush"]),
        (_fulltext.FullText, ["saved_many", "compact", "merge_tier", "batch_segment"]),
        (_fulltext, ["encoded_record"]),
        (_ftsmerge.Maintenance, ["after_call"]),
        (_keys.Keys, ["add_session_keys", "note"]),
        (_syncapply, ["write_state", "write_cursor"]),
        (_indexcache.IndexCache, ["put_many"]),
        (_auditing.Auditor, ["saves"]),
        (_container, ["encode_payload", "seal"]),
        (_sync, ["list_remote", "check_logs"]),
    ]
    for owner, names in steps:
        for name in names:
            if hasattr(owner, name):  # a step another version of the code lacks is left out
                where = str(getattr(owner, "__name__", owner)).rsplit(".", 1)[-1]
                setattr(owner, name, timed(f"{where}.{name}", getattr(owner, name)))
    collecting: list[float] = []

    def collector(phase: str, info: dict[str, Any]) -> None:
        if threading.current_thread() is main_thread:
            if phase == "start":
                collecting.append(time.thread_time())
            elif collecting:
                spent["the collector"] += time.thread_time() - collecting.pop()

    gc.callbacks.append(collector)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tree", default=str(HERE), help="the source tree whose code is measured")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.tree).resolve() / "src"))
    import sessionseal  # the tree's, before anything else imports this tree's
    from sessionseal import PassphraseProvider, Session, Vault

    sys.path[1:1] = [str(HERE), str(HERE / "benchmarks")]  # the tests' S3 server, bench_save
    from bench_save import make_session
    from tests._infra.s3server import serving

    print(f"code: {Path(sessionseal.__file__).parents[1]}", file=sys.stderr)
    spent: dict[str, float] = collections.defaultdict(float)
    instrument(spent)
    n, rng = args.sessions, random.Random(26)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with serving(tmp / "s3") as server:
            a = Vault.init(tmp / "a", key_provider=PassphraseProvider("bench", log2_n=14))
            a.remotes.add("cloud", f"s3://{server.bucket}/bench", endpoint=server.endpoint, check=False)
            for i in range(n):
                doc = make_session(rng.randint(3000, 40000), seed=i)
                doc["title"] = f"bench session {i}"
                a.save(Session.model_validate(doc))
            a.remotes.push()
            devices = a.remotes.devices
            for r in range(args.rounds):
                spent.clear()
                with Vault.init(tmp / f"b{r}", key_provider=PassphraseProvider("bench", log2_n=14)) as b:
                    b.remotes.add("cloud", f"s3://{server.bucket}/bench", endpoint=server.endpoint, check=False)
                    rid = devices.identity("cloud").remote_id
                    b.remotes.devices.add_epoch_key("cloud", 1, devices.epoch_key("cloud", 1), remote_id=rid)
                    cpu, wall = time.thread_time(), time.perf_counter()
                    result = b.remotes.pull()
                    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                    assert result.put == n, result.counts()
            a.close()
    print(f"applying thread: {cpu * 1000 / n:.3f} ms of CPU a session; wall {wall:.2f} s; load {os.getloadavg()}")
    print("| step | applying thread's CPU (ms a session) |")
    print("|---|---:|")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {seconds * 1000 / n:.3f} |")


if __name__ == "__main__":
    main()
