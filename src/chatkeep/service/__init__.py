"""The service layer: every rule of chatkeep, over the Store and EventBus contracts.

`Services` holds the parts (built from Settings by `chatkeep.bootstrap`); the API and the CLI both
call it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatkeep.config import Settings
from chatkeep.errors import Unauthenticated
from chatkeep.events.base import EventBus
from chatkeep.models import Mode
from chatkeep.service.assistant import EchoAssistant
from chatkeep.service.auth import Authenticator, Principal
from chatkeep.service.chat import ChatService
from chatkeep.service.conversations import ListFilters, NewConversation
from chatkeep.service.health import StoreHealth, check_store
from chatkeep.service.lifecycle import Sweeper
from chatkeep.service.limits import RateLimiter
from chatkeep.service.messages import MessageInput
from chatkeep.service.realtime import Hub
from chatkeep.service.routing import StoreRouter
from chatkeep.service.search import SearchService
from chatkeep.service.stats import ModeCount, tenant_counts
from chatkeep.service.streams import StreamService
from chatkeep.service.tenants import TenantService
from chatkeep.stores.base import Extension
from chatkeep.stores.budget import ByteBudget


@dataclass
class Services:
    """Every part of the service, as the edges use it (built by `chatkeep.bootstrap.build_services`)."""

    settings: Settings
    router: StoreRouter
    events: EventBus
    auth: Authenticator
    tenants: TenantService
    chat: ChatService
    streams: StreamService
    search: SearchService
    hub: Hub
    sweeper: Sweeper
    user_rate: RateLimiter
    key_rate: RateLimiter
    auth_failures: RateLimiter
    memory: ByteBudget
    assistant: EchoAssistant | None = None

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

    async def store_health(self) -> dict[str, StoreHealth]:
        """Each store (durable, ephemeral, transient), checked now."""
        return {name: await check_store(store) for name, store in self.router.named_stores().items()}

    async def tenant_counts(self, tenant: str) -> dict[Mode, ModeCount]:
        """Live conversations and retained messages of a tenant per mode (see service/stats.py)."""
        return await tenant_counts(self.router, tenant)

    def store_urls(self) -> dict[str, str]:
        """Each store's URL, its password hidden."""
        return {name: store.url.redacted for name, store in self.router.named_stores().items()}

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
    "Extension",
    "ListFilters",
    "MessageInput",
    "NewConversation",
    "Principal",
    "Services",
]
