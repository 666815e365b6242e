"""The tenants live in the durable store: a durable store that keeps none is refused when the service
is built, with a message that says what to set instead."""

from __future__ import annotations

import pytest

from chatkeep.bootstrap import build_services
from chatkeep.config import Settings
from chatkeep.errors import ConfigError
from chatkeep.service.tenants import tenant_store_of
from chatkeep.stores import open_ephemeral, open_store

REFUSED = (
    "the durable store {url} keeps no tenants: set CHATKEEP_DURABLE_URL to sqlite:///path/to/chatkeep.db, "
    "postgresql://user:pass@host/db or memory:// (a Redis URL belongs in CHATKEEP_EPHEMERAL_URL)"
)


@pytest.mark.parametrize(
    "url",
    ["redis://:hunter2@127.0.0.1:6379/0", "rediss://127.0.0.1:6380/1", "redis+cluster://127.0.0.1:7000"],
)
def test_a_redis_durable_url_is_refused_when_the_service_is_built(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_services(Settings(durable_url=url, dev_mode=False))
    assert err.value.detail == REFUSED.format(url=url.replace(":hunter2@", ":***@"))
    assert "hunter2" not in err.value.detail


def test_an_injected_durable_store_that_keeps_no_tenants_is_refused_too() -> None:
    behind_fallback = open_ephemeral("redis://127.0.0.1:6379/0?prefix=never-used")
    with pytest.raises(ConfigError) as err:
        build_services(Settings(dev_mode=False), durable=behind_fallback)
    assert err.value.detail == REFUSED.format(url="redis://127.0.0.1:6379/0?prefix=never-used")


@pytest.mark.parametrize("url", ["memory://", "sqlite:///./never-opened.db", "postgresql://u@127.0.0.1/db"])
def test_the_durable_backends_are_their_own_tenant_store(url: str) -> None:
    store = open_store(url)
    assert tenant_store_of(store) is store
