"""threat-model.md names, for each promise, the tests that hold it: those files must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_file_the_threat_model_names_exists() -> None:
    text = (ROOT / "threat-model.md").read_text(encoding="utf-8")
    table = text.split("## Promises and their tests", 1)[1]
    named = set(re.findall(r"`(tests/[\w/]+\.py)`", table))
    assert len(named) >= 20
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert missing == []
