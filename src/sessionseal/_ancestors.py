"""Whether a directory above one of ours lets another user replace what is below it.

One rule for the vault (:func:`._fs.check_ancestors`) and for the sanitizer's cache
(:mod:`._sanitize._cache`), which keeps to this small module because ``sessionseal sanitize``
must not pay for :mod:`._fs` and ``filelock`` at start-up.
"""

from __future__ import annotations

import os
import stat
from typing import Literal

__all__ = ["ancestor_fault"]


def ancestor_fault(st: os.stat_result) -> Literal["owner", "writable"] | None:
    """Why the directory *st* lets another user rename away or replace an entry in it:
    ``"owner"`` (owned by another non-root user, who may rename anything in it), or
    ``"writable"`` (writable by others without the sticky bit); None when it does not."""
    if st.st_uid not in (0, os.geteuid()):
        return "owner"
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return "writable"
    return None
