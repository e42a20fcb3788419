"""The project's settings plus a view that fails on purpose (config/tests/test_security.py)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "config.tests.error_urls"
