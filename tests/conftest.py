"""Fixtures live in the repository's root ``conftest.py`` (shared with ``e2e/``); settings
helpers in ``tests/support.py``. Re-exported here for tests that import them from this module."""

from tests.support import (  # noqa: F401
    ROOT,
    TEST_SECRET_KEY,
    TEST_SECRETS_KEY,
    TEST_WEBHOOK_SECRET,
    app_config,
    server_url,
)
