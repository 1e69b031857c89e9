"""Run the real ``sessionseal`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float


def sessionseal(*args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60) -> Ran:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(SRC), **env}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sessionseal", *args],
        env=full,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
