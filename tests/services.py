"""Finding the real servers the tests run against, and starting them where this machine can.

URLs come from the environment with local defaults. A server that is down is started if its
command is installed (as on the development and CI machines); one that stays unreachable makes its
tests skip with the reason, or fail when CHATKEEP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from functools import cache
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("CHATKEEP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHATKEEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("CHATKEEP_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it when services are required."""
    if REQUIRE:
        pytest.fail(
            f"{reason} (CHATKEEP_REQUIRE_SERVICES=1, so this fails instead of skipping)", pytrace=False
        )
    pytest.skip(reason)


def _answers(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.2)
    return False


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@cache
def postgres() -> str | None:
    """The PostgreSQL URL if a server answers there (starting the local cluster if needed), else None."""
    if _answers(POSTGRES_URL):
        return POSTGRES_URL
    if _is_local(POSTGRES_URL) and shutil.which("pg_ctlcluster"):
        for conf in glob.glob("/etc/postgresql/*/main"):
            version = conf.split("/")[3]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                timeout=60,
            )
        if _wait(POSTGRES_URL, 30):
            return POSTGRES_URL
    return None


@cache
def redis() -> str | None:
    """The Redis URL if a server answers there (starting a local one if needed), else None."""
    if _answers(REDIS_URL):
        return REDIS_URL
    if _is_local(REDIS_URL) and shutil.which("redis-server"):
        port = str(urlsplit(REDIS_URL).port or 6379)
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                port,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            capture_output=True,
            timeout=30,
        )
        if _wait(REDIS_URL, 15):
            return REDIS_URL
    return None


def require_postgres() -> str:
    url = postgres()
    if url is None:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL} (set CHATKEEP_TEST_POSTGRES_URL)")
    assert url is not None
    return url


def require_redis() -> str:
    url = redis()
    if url is None:
        unavailable(f"Redis is not reachable at {REDIS_URL} (set CHATKEEP_TEST_REDIS_URL)")
    assert url is not None
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
