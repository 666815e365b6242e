"""Shared fixtures: one `store` fixture parametrized over every backend, and one `tenant_store` fixture
over every backend that keeps tenants, each on a real server."""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from chatkeep.stores import Store, TenantStore, open_ephemeral, open_store
from chatkeep.stores.fallback import FallbackStore
from tests import services
from tests.redis_servers import LocalCluster

# The demo's echo assistant would answer the demo tenant's user messages in every test that writes
# some; the browser tests that want it turn it on for their own server.
os.environ.setdefault("CHATKEEP_DEMO_ASSISTANT", "off")

BACKENDS = ["memory", "sqlite", "postgres", "redis", "redis_cluster", "redis_fallback"]
# The backends that keep tenants too (TenantStore): the durable ones.
TENANT_BACKENDS = ["memory", "sqlite", "postgres"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def open_backend(name: str, tmp_dir: str, **options: Any) -> AsyncIterator[Store]:
    """A connected, migrated store of the named backend, isolated from every other test run.

    `options` go to the store's constructor (e.g. `clock=`); for redis_fallback, to the Redis
    store inside the fallback, which keeps no clock of its own while Redis answers."""
    if name == "memory":
        store = open_store("memory://", **options)
    elif name == "sqlite":
        store = open_store(f"sqlite:///{tmp_dir}/contract.db", **options)
    elif name == "postgres":
        schema = f"ck_test_{uuid.uuid4().hex[:10]}"
        store = open_store(f"{services.require_postgres()}?schema={schema}", **options)
    elif name in ("redis", "redis_fallback"):
        prefix = f"ck-test-{uuid.uuid4().hex[:10]}"
        url = f"{services.require_redis()}?prefix={prefix}"
        if name == "redis":
            store = open_store(url, **options)
        elif options:  # open_ephemeral passes no options; this is what it builds, with them
            store = FallbackStore(open_store(url, **options))
        else:  # the Redis store as deployments use it, behind the outage fallback
            store = open_ephemeral(url)
    elif name == "redis_cluster":
        store = open_store(f"{redis_cluster(tmp_dir)}?prefix=ck-test", **options)
    else:
        raise ValueError(name)
    await store.connect()
    await store.migrate()
    try:
        yield store
    finally:
        if name in ("redis", "redis_fallback"):
            await drop_keys(services.REDIS_URL, prefix)
        await store.close()
        if name == "postgres":
            await drop_schema(schema)


_clusters: list[LocalCluster] = []


def redis_cluster(tmp_dir: str) -> str:
    """A local three-node Redis Cluster for this session (stopped at exit)."""
    if not _clusters:
        try:
            _clusters.append(LocalCluster(Path(tmp_dir) / "cluster").start())
        except RuntimeError as exc:
            services.unavailable(f"cannot start a local Redis Cluster: {exc}")
        atexit.register(_clusters[0].stop)
    return _clusters[0].url


async def drop_keys(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()


async def drop_schema(schema: str) -> None:
    engine = create_async_engine(services.POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    tmp_dir = str(tmp_path_factory.mktemp(request.param))
    async for opened in open_backend(request.param, tmp_dir):
        yield opened


@pytest.fixture(scope="session", params=TENANT_BACKENDS)
async def tenant_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TenantStore]:
    tmp_dir = str(tmp_path_factory.mktemp(f"tenants-{request.param}"))
    async for opened in open_backend(request.param, tmp_dir):
        assert isinstance(opened, TenantStore), f"{request.param} keeps no tenants"
        yield opened


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id: every row a store keeps is scoped by tenant, so this isolates each test."""
    return unique("t")


# -- a summary line per backend for the conformance suite, at the end of every run ----------------

_contract_results: dict[str, dict[str, int]] = {}


CONFORMANCE_SUITES = (
    "tests/stores/test_contract.py",
    "tests/stores/test_tenant_contract.py",
    "tests/stores/test_search_contract.py",
)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not any(suite in report.nodeid for suite in CONFORMANCE_SUITES) or "[" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        backend = report.nodeid.rsplit("[", 1)[1].rstrip("]")
        counts = _contract_results.setdefault(backend, {"passed": 0, "failed": 0, "skipped": 0})
        counts[report.outcome] += 1


_reports: list[str] = []


def report(line: str) -> None:
    """A measurement a test wants shown at the end of the run (counts, not timings)."""
    _reports.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _reports:
        terminalreporter.section("measurements")
        for line in _reports:
            terminalreporter.write_line(line)
    if _contract_results:
        terminalreporter.section("store conformance suite")
        for backend, counts in _contract_results.items():
            parts = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
            terminalreporter.write_line(f"{backend:>14}: {parts}")
