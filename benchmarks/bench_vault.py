#!/usr/bin/env python3
"""Save and load of 100 KB, 1 MB and 10 MB sessions against a floor measured in the same run.

Floor (no sessionseal code): orjson dump of the session document as stored + zstd level 3 + AES-256-GCM +
fsynced atomic write (temp, fsync, rename, fsync dir); loading: read + decrypt + decompress +
orjson parse.  Product: ``Vault.save`` / ``Vault.load`` with the sanitizer swapped for a pass-
through, because the issue measures the sanitizer apart (benchmarks/bench_sanitizer.py); the
full save with the sanitizer is reported too.  Figures are medians and ratios to the floor.

    python benchmarks/bench_vault.py [--sizes 100K,1M,10M] [--repeat 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sessionseal import PassphraseProvider, Session, Vault

_WORDS = [
    "the",
    "session",
    "tool",
    "file",
    "test",
    "error",
    "run",
    "build",
    "import",
    "value",
    "return",
    "self",
    "def",
    "class",
    "async",
    "await",
    "config",
    "path",
    "data",
    "result",
    "output",
    "input",
    "model",
    "token",
    "message",
    "user",
    "assistant",
    "function",
    "module",
    "request",
    "response",
    "cache",
    "index",
    "query",
    "update",
    "delete",
    "create",
    "list",
    "table",
    "column",
    "row",
    "vault",
    "key",
]


def make_session(target: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic agent-like transcript of about *target* bytes of JSON."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    size = 0
    i = 0
    while size < target:
        words = " ".join(rng.choices(_WORDS, k=rng.randint(20, 400)))
        code = "\n".join(
            f"    {rng.choice(_WORDS)}_{rng.randint(0, 99)} = {rng.randint(0, 10**6)}"
            for _ in range(rng.randint(0, 40))
        )
        msg: dict[str, Any]
        if i % 3 == 0:
            msg = {"role": "user", "content": words}
        elif i % 3 == 1:
            msg = {
                "role": "assistant",
                "model": "m",
                "content": [
                    {"type": "text", "text": words},
                    {
                        "type": "tool_call",
                        "id": f"call_{i}",
                        "name": "bash",
                        "arguments": {"command": f"pytest -k {rng.choice(_WORDS)}"},
                    },
                ],
            }
        else:
            msg = {
                "role": "tool",
                "content": [{"type": "tool_result", "tool_call_id": f"call_{i - 1}", "content": code + "\n" + words}],
            }
        messages.append(msg)
        size += len(orjson.dumps(msg))
        i += 1
    return {"title": "bench", "tags": ["bench"], "messages": messages}


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


class _PassThrough:
    def sanitize_tree(self, value: Any) -> tuple[Any, dict[str, int]]:
        return value, {}


def floor_save(
    doc: dict[str, Any], directory: Path, key: bytes, scan: Callable[[bytes], object] | None = None
) -> Callable[[], None]:
    """orjson, then *scan* of the JSON if given (bench_save.py: a prefilter's scan alone), zstd-3,
    AES-GCM and an fsynced atomic write: what a save cannot do without."""
    cctx = zstandard.ZstdCompressor(level=3)
    aead = AESGCM(key)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    def run() -> None:
        body = orjson.dumps(doc)
        if scan is not None:
            scan(body)
        data = aead.encrypt(os.urandom(12), cctx.compress(body), b"aad")
        fd = os.open(directory / "tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(directory / "tmp", directory / "floor.bin")
        os.fsync(dfd)

    return run


def peak_memory_ratio(size: int) -> float:
    """Peak RSS growth of one save, over the session's JSON size, in a fresh process."""
    code = f"""
import gc, sys, tempfile, orjson
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "src")!r})
from bench_vault import make_session, _PassThrough
from sessionseal import PassphraseProvider, Session, Vault
doc = make_session({size}); session = Session.model_validate(doc); n = len(orjson.dumps(doc))
tmp = tempfile.TemporaryDirectory()
v = Vault.init(tmp.name + "/v", key_provider=PassphraseProvider("b", log2_n=14))
v.parts.settings.sanitizer_cache = _PassThrough(); v.save(session)  # warm up: keys, contexts
gc.collect()
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field): return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = rss("VmRSS"); v.save(session); print((rss("VmHWM") - before) / n)
v.close(); tmp.cleanup()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100K,1M,10M")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    units = {"K": 1 << 10, "M": 1 << 20}
    sizes = [int(s[:-1]) * units[s[-1]] for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vault = Vault.init(root / "v", key_provider=PassphraseProvider("bench", log2_n=14))
        sanitizer = vault.parts.settings.sanitizer()
        key = os.urandom(32)
        (root / "floor").mkdir()
        for size in sizes:
            session = Session.model_validate(make_session(size))
            # "The same data": the document exactly as the vault stores it (every field, defaults
            # included), built outside the timer, so the floor serializes what the product does.
            doc = session.model_dump(mode="json")
            json_size = len(orjson.dumps(doc))
            repeat = max(3, args.repeat if size <= 1 << 20 else args.repeat // 2)
            f_save = median_ms(floor_save(doc, root / "floor", key), repeat)
            aead, dctx = AESGCM(key), zstandard.ZstdDecompressor()
            nonce = os.urandom(12)
            (root / "floor" / "floor.bin").write_bytes(
                aead.encrypt(nonce, zstandard.ZstdCompressor(level=3).compress(orjson.dumps(doc)), b"aad")
            )
            f_load = median_ms(
                lambda: orjson.loads(
                    dctx.decompress(aead.decrypt(nonce, (root / "floor" / "floor.bin").read_bytes(), b"aad"))
                ),
                repeat,
            )
            vault.parts.settings.sanitizer_cache = _PassThrough()  # type: ignore[assignment]
            sid = vault.save(session)
            p_save = median_ms(lambda: vault.save(session), repeat)
            p_load = median_ms(lambda: vault.load(sid), repeat)
            p_load_json = median_ms(lambda: orjson.loads(vault.load_json(sid)), repeat)
            vault.parts.settings.sanitizer_cache = sanitizer
            p_save_full = median_ms(lambda: vault.save(session), max(3, repeat // 2))
            row = {
                "size_bytes": json_size,
                "floor_save_ms": round(f_save, 2),
                "save_ms": round(p_save, 2),
                "save_ratio": round(p_save / f_save, 2),
                "save_with_sanitizer_ms": round(p_save_full, 2),
                "floor_load_ms": round(f_load, 2),
                "load_ms": round(p_load, 2),
                "load_ratio": round(p_load / f_load, 2),
                "load_json_ms": round(p_load_json, 2),
                "load_json_ratio": round(p_load_json / f_load, 2),
            }
            results.append(row)
            print(
                f"{json_size / (1 << 20):7.2f} MiB  save {p_save:8.2f} ms vs floor {f_save:8.2f} ms = {p_save / f_save:4.2f}x"
                f"   load {p_load:8.2f} ms vs floor {f_load:8.2f} ms = {p_load / f_load:4.2f}x"
                f" (load_json+orjson {p_load_json:7.2f} ms = {p_load_json / f_load:4.2f}x)"
                f"   (save incl. sanitizer {p_save_full:8.2f} ms)",
                flush=True,
            )
        vault.close()
    ten = max(sizes)
    ratio = peak_memory_ratio(ten)
    print(
        f"peak memory of one save of {ten >> 20 or ten >> 10} {'MiB' if ten >= 1 << 20 else 'KiB'}: {ratio:.2f}x the session's JSON size"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"rows": results, "peak_memory_ratio": ratio}, indent=1))


if __name__ == "__main__":
    main()
