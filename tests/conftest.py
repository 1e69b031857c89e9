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
from tests._infra.users import first_user, make_user_dir, os_users, second_user  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_by_fixture(items)


# --- end of test infrastructure -----------------------------------------------------------------
