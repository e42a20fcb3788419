import os

import pytest
import redis

from intake.tests.conftest import broker_down  # noqa: F401  (a fixture, shared)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the throttle tests share; callers use unique key prefixes."""
    url = os.environ.get("LEADLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError as error:
        pytest.skip(f"Redis not reachable at {url}: {error}")
    return url
