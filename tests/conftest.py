# --- test infrastructure (owned by tests/_infra; keep this block small) -------------------------
import pytest

from tests._infra import mark_by_fixture
from tests._infra.keychain import (  # noqa: F401  (fixtures are registered by import)
    locked_secret_service,
    prompting_secret_service,
    secret_service,
    secret_service_factory,
    xvfb_display,
)
from tests._infra.order import heaviest_files_first
from tests._infra.s3server import moto_process, s3_backend, s3_server, server_env  # noqa: F401
from tests._infra.users import first_user, make_user_dir, os_users, second_user  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_by_fixture(items)
    heaviest_files_first(items)


# --- end of test infrastructure -----------------------------------------------------------------


_CACHE_DIRS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    # The sanitizer's start-up cache (sessionseal._sanitize._cache) goes to a folder of this
    # run, not the user's cache dir; its own tests choose their folders.
    import os
    import tempfile

    if "SESSIONSEAL_CACHE_DIR" not in os.environ:
        _CACHE_DIRS.append(tempfile.mkdtemp(prefix="sessionseal-test-cache-"))
        os.environ["SESSIONSEAL_CACHE_DIR"] = _CACHE_DIRS[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import shutil

    for path in _CACHE_DIRS:
        os.environ.pop("SESSIONSEAL_CACHE_DIR", None)
        shutil.rmtree(path, ignore_errors=True)
