"""benchmarks/bench_sanitizer_stages.py splits a sanitize run into its stages as it says (a smoke
test of the harness on a small text, no timing)."""

from __future__ import annotations

import gc
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_sanitizer_stages as stages  # the benchmarks directory is not a package


def test_the_stages_and_counts_of_a_small_text_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "".join(f"line {i}: export GITHUB_TOKEN=ghp_{'a1B2c3D4e5' * 3}{i:06d} → ok\n" for i in range(50))
    path = tmp_path / "t.txt"
    path.write_text(text * 20, encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["bench_sanitizer_stages.py", str(path), "--repeat", "1"])
    stages.main()
    out = capsys.readouterr().out
    for stage in ("fold", "raw scan", "prefilter", "candidates", "resolve", "redact", "total", "per finding"):
        assert stage in out
    # Counts are per MB: 1,000 planted tokens in this many MB, each found once.
    mb = len((text * 20).encode()) / 1e6
    per_mb = re.search(r"([\d,]+) findings", out)
    assert per_mb is not None and int(per_mb.group(1).replace(",", "")) == round(1000 / mb)
    assert gc.isenabled()  # the collector is paused for the run only
