"""One sanitizer start-up cache for the commands of the keychain tests
(tests/integration/test_real_keychain.py and test_keyring_files.py).

Each test gives its commands a fresh HOME, so each test's first ``save`` parsed the rule
catalogue and compiled its patterns again (3 to 4 s on a loaded machine) into a cache nobody
read after it. These tests are about keys, keychains and vault heads, not that start-up (it has
its own tests in tests/sanitizer/test_cache.py): their commands share one cache folder through
``SESSIONSEAL_CACHE_DIR``: the one tests/conftest.py gives this process's own vaults when there
is one, so a worker builds the cache once for both. The cache holds rule data and compiled
patterns only, never text or keys, so it changes nothing the tests look for in HOME or in the
vault.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["fixture_sanitizer_cache"]


@pytest.fixture(name="sanitizer_cache", scope="session")
def fixture_sanitizer_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``SESSIONSEAL_CACHE_DIR`` value shared by the session's commands (one per xdist worker)."""
    return os.environ.get("SESSIONSEAL_CACHE_DIR") or str(tmp_path_factory.mktemp("sanitizer-cache"))
