"""Builds stores, buses and services from Settings: the one place that wires concrete backends (chosen
by URL in `chatkeep.stores` and `chatkeep.events`) to the service layer, which knows only their
contracts. The API and the CLI both start here."""

from __future__ import annotations

from chatkeep.config import Settings
from chatkeep.events import EventBus, open_bus
from chatkeep.service import Services
from chatkeep.service.assistant import EchoAssistant
from chatkeep.service.auth import Authenticator
from chatkeep.service.chat import ChatService
from chatkeep.service.lifecycle import Lifetimes, Sweeper
from chatkeep.service.limits import Limits, RateLimiter
from chatkeep.service.realtime import Hub, SocketQuotas
from chatkeep.service.routing import StoreRouter
from chatkeep.service.search import SearchService
from chatkeep.service.streams import StreamService
from chatkeep.service.tenants import TenantService, tenant_store_of
from chatkeep.stores import ByteBudget, Store, open_ephemeral, open_store


def build_services(
    settings: Settings,
    *,
    durable: Store | None = None,
    ephemeral: Store | None = None,
    events: EventBus | None = None,
) -> Services:
    """Construct everything (no I/O; `await services.start()` connects). Ready-made stores or buses
    may be injected, for tests and embedding."""
    # One budget bounds every store that holds data in this process's memory.
    memory = ByteBudget(settings.memory_max_bytes, settings.memory_max_tenant_bytes)
    durable = durable or open_store(settings.durable_url)
    tenant_store = tenant_store_of(durable)  # a ConfigError for a backend that keeps no tenants
    ephemeral = ephemeral or open_ephemeral(
        settings.ephemeral_url,
        refuse_on_outage=settings.ephemeral_outage == "refuse",
        journal_max_bytes=settings.outage_journal_max_bytes,
        journal_tenant_share=settings.outage_journal_tenant_share,
        shared=settings.events_url is not None,  # a shared event bus: several instances
        budget=memory,
    )
    router = StoreRouter(durable, ephemeral, open_store("memory://", budget=memory))
    bus = events or open_bus(settings.events_url)
    auth = Authenticator(
        tenant_store,
        max_token_lifetime_seconds=settings.max_token_lifetime_seconds,
        dev_mode=settings.dev_enabled,
    )
    lifetimes = Lifetimes.from_settings(settings)
    chat = ChatService(router, bus, Limits.from_settings(settings), lifetimes)
    ephemeral.watch_reseq(chat.republish)
    tenants = TenantService(tenant_store, auth)
    streams = StreamService(chat)
    assistant = (
        EchoAssistant(bus, tenants, chat, streams, duration=settings.demo_assistant_seconds)
        if settings.echo_assistant
        else None
    )
    return Services(
        settings=settings,
        router=router,
        events=bus,
        auth=auth,
        tenants=tenants,
        chat=chat,
        streams=streams,
        search=SearchService(router),
        assistant=assistant,
        hub=Hub(
            bus,
            chat,
            page_size=settings.max_page_size,
            quotas=SocketQuotas(
                per_user=settings.ws_max_sockets_per_user,
                per_key=settings.ws_max_sockets_per_key,
                subscriptions=settings.ws_max_subscriptions,
            ),
        ),
        sweeper=Sweeper(router, bus, lifetimes, settings.sweep_interval_seconds),
        user_rate=RateLimiter(settings.user_rate_per_second, settings.user_rate_burst),
        key_rate=RateLimiter(settings.key_rate_per_second, settings.key_rate_burst),
        auth_failures=RateLimiter(settings.auth_failure_rate_per_second, settings.auth_failure_burst),
        memory=memory,
    )
