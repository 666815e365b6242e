"""Each store's health, as readiness, the metrics and the CLI report it: checked through the Store
contract, with the outage journal's and replay's counts for a store that keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chatkeep.errors import StoreUnavailable
from chatkeep.stores.base import Store

State = Literal["up", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class Outage:
    """What a store with an outage journal holds and has replayed (the replay counts are totals)."""

    bytes_held: int
    pending_conversations: int
    replayed: int
    failures: int
    seq_changes: int


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """`up`; `degraded` (its server is unreachable and writes are kept in memory, or refused); or
    `down` (it cannot be reached at all)."""

    state: State
    pending: int = 0  # writes held in memory until the store's server is back
    outage: Outage | None = None


async def check_store(store: Store) -> StoreHealth:
    """Ping the store and read its counts."""
    state: State
    try:
        await store.ping()
        state = "degraded" if store.degraded else "up"
    except StoreUnavailable:
        state = "down"
    return StoreHealth(state, getattr(store, "pending", 0), _outage(store))


def _outage(store: Store) -> Outage | None:
    # Only a store behind the outage fallback has a journal; the contract does not name it.
    journal = getattr(store, "journal_stats", None)
    replay = getattr(store, "replay_stats", None)
    if journal is None or replay is None:
        return None
    held, done = journal(), replay()
    return Outage(
        bytes_held=held.bytes_held,
        pending_conversations=held.pending_conversations,
        replayed=done.replayed,
        failures=done.failures,
        seq_changes=done.seq_changes,
    )
