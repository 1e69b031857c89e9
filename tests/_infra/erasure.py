"""Erasures cut short between their key rotation and the overwrite of the erased files.

A ``delete`` or ``cleanup`` first takes the session's key out of the key table and rotates the
master key (the crypto-erase), then overwrites the files, best effort: a full disk or an I/O
error there leaves the files where they were, keyless, and the erasure succeeds all the same
(docs/secure-deletion.md). What such a run leaves is what a SIGKILL between the two steps leaves
(tests/integration/test_crash.py and test_crypto_erase.py kill real processes there); these
helpers make the overwrite fail, so that a unit test can start from that state at will.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sessionseal._fs import Dir
from sessionseal.errors import StorageError


@contextmanager
def overwrites_failing() -> Iterator[None]:
    """Every overwrite (``Dir.shred``) fails with an I/O error while this is active."""

    def fail(self: Dir, name: str) -> bool:
        raise StorageError(f"cannot overwrite {name}: {os.strerror(errno.EIO)}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Dir, "shred", fail)
        yield


def delete_cut_short(vault: Any, sid: Any) -> None:
    """``vault.delete(sid)``, its overwrites failing: the files stay, their tombs recorded."""
    with overwrites_failing():
        vault.delete(sid)
