"""Default locations, and the only importer of ``platformdirs``."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["default_vault_path"]


def default_vault_path() -> Path:
    """``$SESSIONSEAL_VAULT``, else the user data dir (``~/.local/share/sessionseal/vault`` on Linux)."""
    env = os.environ.get("SESSIONSEAL_VAULT")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("sessionseal", appauthor=False)) / "vault"
