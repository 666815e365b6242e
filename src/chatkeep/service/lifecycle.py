"""Session lifecycle: how long conversations of each mode live, and the sweeper that removes the
expired ones and announces them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from chatkeep import tasks
from chatkeep.config import Settings, settings_of
from chatkeep.errors import StoreUnavailable
from chatkeep.events.base import EventBus
from chatkeep.models import ExpiredConversation, Mode, Tenant
from chatkeep.service.events import expired_event, updated_event
from chatkeep.service.routing import StoreRouter

log = logging.getLogger("chatkeep.lifecycle")
SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """The expiry rules. Every write and heartbeat slides a conversation's window (the stores do
    that); these decide how long the window is."""

    ephemeral_ttl_seconds: int = 7 * 86_400
    none_grace_seconds: int = 90
    pinned_never_expire: bool = True
    expired_memory_seconds: int = 7 * 86_400
    stream_timeout_seconds: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Lifetimes:
        return settings_of(cls, settings)

    def ephemeral_ttl(self, tenant: Tenant) -> int:
        return tenant.settings.ephemeral_ttl_seconds or self.ephemeral_ttl_seconds

    def pinned_exempt(self, tenant: Tenant) -> bool:
        exempt = tenant.settings.pinned_never_expire
        return self.pinned_never_expire if exempt is None else exempt

    def ttl_ms(self, tenant: Tenant, mode: Mode, pinned: bool) -> int | None:
        """The expiry window of a conversation; None: it never expires.

        `durable` and `local` never expire; `none` lives while heartbeats or writes keep coming, plus
        a grace; `ephemeral` slides by the tenant's TTL, except when pinned (if the tenant exempts
        pinned conversations)."""
        if mode is Mode.NONE:
            return self.none_grace_seconds * 1000
        if mode is Mode.EPHEMERAL:
            if pinned and self.pinned_exempt(tenant):
                return None
            return self.ephemeral_ttl(tenant) * 1000
        return None


class Sweeper(tasks.Background):
    """Every `interval` seconds: removes expired conversations from every store and publishes a
    `conversation.expired` event for each, and marks `interrupted` the streaming replies whose writer
    went quiet (publishing `message.updated`). Several instances may sweep at once: each conversation
    or reply is reported by exactly one of them."""

    task_name = "chatkeep-sweeper"

    def __init__(self, router: StoreRouter, events: EventBus, lifetimes: Lifetimes, interval: float) -> None:
        self._router = router
        self._events = events
        self._lifetimes = lifetimes
        self._interval = interval

    async def run(self) -> None:
        while not tasks.stopping():
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:  # never let one bad sweep end the loop
                log.exception("sweep failed")

    async def sweep(self) -> list[ExpiredConversation]:
        """One pass over every store; returns the conversations it removed."""
        await self._interrupt_stale_streams()
        keep_ms = self._lifetimes.expired_memory_seconds * 1000
        removed: list[ExpiredConversation] = []
        for store in self._router.stores:
            while True:
                try:
                    batch = await store.sweep_expired(limit=SWEEP_BATCH, keep_ms=keep_ms)
                except StoreUnavailable as exc:
                    log.warning("cannot sweep %r: %s", store, exc.detail)
                    break
                for gone in batch:
                    self._router.forget(gone.tenant, gone.id)
                    await self._events.publish(expired_event(gone))
                removed += batch
                if len(batch) < SWEEP_BATCH:
                    break
        return removed

    async def _interrupt_stale_streams(self) -> None:
        idle_ms = self._lifetimes.stream_timeout_seconds * 1000
        for store in self._router.stores:
            try:
                stale = await store.interrupt_stale_streams(idle_ms=idle_ms, limit=SWEEP_BATCH)
            except StoreUnavailable as exc:
                log.warning("cannot check streams in %r: %s", store, exc.detail)
                continue
            for conversation, message in stale:
                await self._events.publish(updated_event(conversation, message))
