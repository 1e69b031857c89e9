"""The tui extra stays out of the base install's way (docs/browse.md): ``--help`` and
``list --json`` never import Textual, in a real process, whether Textual is installed or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sessionseal import PassphraseProvider, Vault

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_help_and_list_json_never_import_textual(tmp_path: Path) -> None:
    with Vault.init(tmp_path / "v", key_provider=PassphraseProvider("light pass", log2_n=14)) as v:
        v.save({"title": "t"})
    env = {**os.environ, "PYTHONPATH": SRC, "SESSIONSEAL_VAULT": str(tmp_path / "v")}
    env["SESSIONSEAL_PASSPHRASE"] = "light pass"
    for args in (["--help"], ["browse", "--help"], ["list", "--json"]):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "sessionseal", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
        assert "sessionseal" in imported and "textual" not in imported, args
