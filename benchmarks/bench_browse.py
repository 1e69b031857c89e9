#!/usr/bin/env python3
"""``browse`` against ``list --json`` and ``show --json``, measured in the same run (issue 25).

On a vault of ``--sessions`` small sessions plus one session of about ``--big`` bytes
(passphrase provider, scrypt 2^14), interleaved rounds (each round runs every measurement once,
so a busy machine slows them alike), medians:

* ``list_json``: the listing ``list --json`` makes, in this process, the index read cold;
* ``browse: first paint``: the app started headless (Textual's ``run_test``) until its first
  frame with the list is drawn (its listing included, the index read cold);
* ``load_json``: the read ``show --json`` makes of the big session (decrypt, decompress);
* ``browse: open``: Enter on the big session until its transcript's first screen is drawn
  (the same read, the JSON parsed, its entries built, a screen of lines rendered);
* ``list --json`` and ``show ID --json`` in fresh processes (start-up and key included), and
  ``browse`` in a fresh process under tmux (when installed) until the list is on the screen
  (polled with ``capture-pane`` every 20 ms: the figure is up to that much late).

The bar: first paint and open each under 0.5 s.  The load average is printed before and after:
figures from a shared machine are slower than the machine can do.

    python benchmarks/bench_browse.py [--sessions 10000] [--big 10M] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import PASSPHRASE, build, cold  # noqa: E402
from bench_vault import make_session  # noqa: E402

from sessionseal import ListQuery, Vault  # noqa: E402
from sessionseal.cli._browse_app import BrowseApp  # noqa: E402

BAR_MS = 500.0


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def browse_ms(v: Vault, big: str) -> tuple[float, float]:
    """(first paint, open of *big*) in ms, one run of the app."""
    out: list[float] = []

    async def go() -> None:
        gc.collect()
        t = time.perf_counter()
        app = BrowseApp(cold(v), ListQuery())
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()  # the first frame, list included, has been drawn
            assert app.sessions.rows
            out.append((time.perf_counter() - t) * 1000)
            gc.collect()
            t = time.perf_counter()
            app.open_session(big)
            await pilot.pause()  # its first screen drawn
            assert app.transcript.rendered_lines > 0
            out.append((time.perf_counter() - t) * 1000)

    asyncio.run(go())
    return out[0], out[1]


def timed_ms(fn: object) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - t) * 1000


def cli_ms(args: list[str], path: Path) -> float:
    env = {**os.environ, "SESSIONSEAL_VAULT": str(path), "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "sessionseal", *args]
    return timed_ms(lambda: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL))


def tmux_ms(path: Path, n: int) -> float | None:
    """A fresh ``browse`` in a detached tmux pane, until "N session(s)" is on its screen."""
    if not shutil.which("tmux"):
        return None
    socket = f"bench-browse-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", os.devnull]
    env = {"SESSIONSEAL_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(SRC), "TERM": "xterm-256color"}
    command = f"env -u COLUMNS -u LINES {sys.executable} -m sessionseal --vault {path} browse; sleep 60"
    gc.collect()
    t = time.perf_counter()
    try:
        subprocess.run(
            [*tmux, "new-session", "-d", "-s", "b", "-x", "160", "-y", "50",
             *[a for k, v in env.items() for a in ("-e", f"{k}={v}")], command],
            check=True,
        )  # fmt: skip
        while time.perf_counter() - t < 60:
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True, check=False
            ).stdout
            if f"{n} session(s)" in screen:
                return (time.perf_counter() - t) * 1000
            time.sleep(0.02)
        raise RuntimeError("browse never showed its list")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--big", default="10M", help="size of the big session's JSON (10M)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build the vault here (reused if it exists)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-browse-"))
    path = Path(a.keep) if a.keep else tmp / "vault"
    try:
        if not (path / "vault.json").exists():
            t = time.perf_counter()
            build(path, a.sessions)
            print(f"built {a.sessions} sessions in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        with Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False) as v:
            found = [s for s in v.list(ListQuery(tags=("big",)))]
            if not found:
                doc = make_session(_size(a.big))
                doc["tags"] = ["big"]
                doc["title"] = "the big one"
                v.save(doc)
                found = [s for s in v.list(ListQuery(tags=("big",)))]
            big = str(found[0].id)
            n = len(v.list_json()[0]) and len(v.list())
            load1 = os.getloadavg()
            rows: dict[str, list[float]] = {}
            for _ in range(a.repeat):
                rows.setdefault("list_json (what list --json lists), index cold", []).append(
                    timed_ms(lambda: cold(v).list_json())
                )
                paint, opened = browse_ms(v, big)
                rows.setdefault("browse: first paint from the index", []).append(paint)
                rows.setdefault(f"load_json of the {a.big} session (what show --json reads)", []).append(
                    timed_ms(lambda: v.load_json(big))
                )
                rows.setdefault(f"browse: open the {a.big} session, first screen drawn", []).append(opened)
                rows.setdefault("fresh process: list --json", []).append(cli_ms(["list", "--json"], path))
                rows.setdefault(f"fresh process: show ID --json ({a.big})", []).append(
                    cli_ms(["show", big, "--json"], path)
                )
                in_tmux = tmux_ms(path, n)
                if in_tmux is not None:
                    rows.setdefault("fresh process: browse under tmux, list on screen", []).append(in_tmux)
            load2 = os.getloadavg()
        print(f"{n} sessions; medians of {a.repeat} interleaved rounds; {os.cpu_count()} CPUs")
        print(f"load average before {load1[0]:.2f}, after {load2[0]:.2f} (above the CPU count: a busy machine)")
        print(f"{'measurement':<62}{'median':>12}{'min':>10}")
        for name, values in rows.items():
            print(f"{name:<62}{statistics.median(values):>9.1f} ms{min(values):>7.1f} ms")
        paint = statistics.median(rows["browse: first paint from the index"])
        opened = statistics.median(rows[f"browse: open the {a.big} session, first screen drawn"])
        verdict = "under" if paint < BAR_MS and opened < BAR_MS else "NOT under"
        print(f"first paint {paint:.0f} ms, open {opened:.0f} ms: {verdict} the {BAR_MS:.0f} ms bar")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
