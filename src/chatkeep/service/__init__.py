"""The service layer: every rule of chatkeep, over the Store and EventBus contracts.

`Services` wires the parts together from Settings; the API and the CLI both start from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatkeep.config import Settings
from chatkeep.errors import Unauthenticated
from chatkeep.events import EventBus, open_bus
from chatkeep.service.assistant import EchoAssistant
from chatkeep.service.auth import Authenticator, Principal
from chatkeep.service.conversations import ChatService, ListFilters, MessageInput, NewConversation
from chatkeep.service.lifecycle import Lifetimes, Sweeper
from chatkeep.service.limits import Limits, RateLimiter
from chatkeep.service.realtime import Hub, SocketQuotas
from chatkeep.service.routing import StoreRouter
from chatkeep.service.streams import StreamService
from chatkeep.service.tenants import TenantService, tenant_store_of
from chatkeep.stores import ByteBudget, Store, open_ephemeral, open_store


@dataclass
class Services:
    settings: Settings
    router: StoreRouter
    events: EventBus
    auth: Authenticator
    tenants: TenantService
    chat: ChatService
    streams: StreamService
    hub: Hub
    sweeper: Sweeper
    user_rate: RateLimiter
    key_rate: RateLimiter
    auth_failures: RateLimiter
    memory: ByteBudget
    assistant: EchoAssistant | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        durable: Store | None = None,
        ephemeral: Store | None = None,
        events: EventBus | None = None,
    ) -> Services:
        """Construct everything (no I/O). Ready-made stores or buses may be injected."""
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
        return cls(
            settings=settings,
            router=router,
            events=bus,
            auth=auth,
            tenants=tenants,
            chat=chat,
            streams=streams,
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

    async def start(self, *, migrate: bool = True) -> None:
        """Connect every store (migrating schemas) and the event bus, create the demo tenant in dev
        mode, and start the expiry sweeper."""
        for store in self.router.stores:
            await store.connect()
            if migrate:
                await store.migrate()
        await self.events.connect()
        if self.settings.dev_enabled:
            await self.tenants.ensure_demo()
        self.sweeper.start()
        if self.assistant is not None:
            self.assistant.start()

    async def stop(self) -> None:
        if self.assistant is not None:
            await self.assistant.stop()
        await self.hub.close()
        await self.sweeper.stop()
        await self.events.close()
        for store in self.router.stores:
            await store.close()

    async def migrate(self) -> None:
        for store in self.router.stores:
            await store.connect()
            try:
                await store.migrate()
            finally:
                await store.close()

    async def authenticate(self, credential: str | None, address: str | None) -> Principal:
        """The caller behind `credential`. Failed attempts (a credential that does not verify) are
        charged to the client address, and an address past its allowance is refused with
        `RateLimited` before its credential is even looked at: guessing costs the guesser. A token
        verified moments ago still passes (checking it reads nothing), so users who share an
        address with a guesser keep working."""
        if not credential or self.auth.verified(credential):  # nothing is read for these
            return await self.auth.authenticate(credential)
        where = address or "unknown"
        self.auth_failures.guard(where)
        try:
            return await self.auth.authenticate(credential)
        except Unauthenticated:
            self.auth_failures.charge(where)
            raise

    def check_rate(self, principal: Principal) -> None:
        """Raise `RateLimited` when this caller has used up its request allowance."""
        limiter = self.key_rate if principal.is_tenant_key else self.user_rate
        limiter.check(principal.rate_key)


__all__ = [
    "ChatService",
    "ListFilters",
    "MessageInput",
    "NewConversation",
    "Principal",
    "Services",
]
