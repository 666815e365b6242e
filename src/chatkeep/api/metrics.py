"""Prometheus metrics, in a registry per app so that several apps in one process do not collide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatkeep.service.health import StoreHealth

# The series of a store's outage journal, by the `Outage` field each reports: what the journal holds
# now (gauges), and what its replay did in total (counters).
OUTAGE_GAUGES = {
    "bytes_held": (
        "chatkeep_outage_journal_bytes",
        "Bytes of writes held in the outage journal (its budget: CHATKEEP_OUTAGE_JOURNAL_MAX_BYTES)",
    ),
    "pending_conversations": (
        "chatkeep_outage_pending_conversations",
        "Conversations with writes waiting to be replayed",
    ),
}
OUTAGE_COUNTERS = {
    "replayed": ("chatkeep_outage_replayed_writes", "Journaled writes replayed into the store"),
    "failures": (
        "chatkeep_outage_replay_failures",
        "Journaled writes the store refused on replay (logged; acknowledged but not stored)",
    ),
    "seq_changes": (
        "chatkeep_outage_seq_changes",
        "Messages stored at another seq than their (provisional) acknowledgement said",
    ),
}


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Totals a store counts itself, as last added to the counters: (`Outage` field, store) -> total
    counted: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self._appends: dict[str, tuple[Any, Any]] = {}
        self.requests = Counter(
            "chatkeep_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "chatkeep_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.appended = Counter(
            "chatkeep_messages_appended",
            "Messages stored (retries of a stored id not counted)",
            ["mode"],
            registry=r,
        )
        self.replayed = Counter(
            "chatkeep_messages_replayed", "Appends answered from an already stored id", ["mode"], registry=r
        )
        self.store_up = Gauge(
            "chatkeep_store_up", "1 when the store answered its last check", ["store"], registry=r
        )
        self.store_degraded = Gauge(
            "chatkeep_store_degraded",
            "1 while the store's server is unreachable and a stand-in serves",
            ["store"],
            registry=r,
        )
        self.outage_gauges = {
            what: Gauge(name, doc, ["store"], registry=r) for what, (name, doc) in OUTAGE_GAUGES.items()
        }
        self.outage_counters = {
            what: Counter(name, doc, ["store"], registry=r) for what, (name, doc) in OUTAGE_COUNTERS.items()
        }
        self.memory_held = Gauge(
            "chatkeep_memory_bytes_held",
            "Bytes held in this process for `none` and in-memory `ephemeral` conversations",
            registry=r,
        )
        self.memory_budget = Gauge(
            "chatkeep_memory_bytes_budget", "The process's budget for those bytes (0: unbounded)", registry=r
        )
        self.fallback_pending = Gauge(
            "chatkeep_fallback_pending_writes",
            "Writes held in memory until the store's server is back",
            ["store"],
            registry=r,
        )

    def count_appends(self, mode: str, created: int, replayed: int) -> None:
        """Messages stored and appends answered from a stored id, in a conversation of `mode`."""
        series = self._appends.get(mode)
        if series is None:  # a label set is looked up once a mode: the lookup costs more than a count
            series = self._appends[mode] = (self.appended.labels(mode), self.replayed.labels(mode))
        if created:
            series[0].inc(created)
        if replayed:
            series[1].inc(replayed)

    def record_store(self, name: str, health: StoreHealth) -> None:
        """What a check of one store found; a replay count is added as it grew since the last check."""
        self.store_up.labels(name).set(1 if health.state == "up" else 0)
        self.store_degraded.labels(name).set(1 if health.state == "degraded" else 0)
        self.fallback_pending.labels(name).set(health.pending)
        outage = health.outage
        if outage is None:
            return
        for what, gauge in self.outage_gauges.items():
            gauge.labels(name).set(getattr(outage, what))
        for what, counter in self.outage_counters.items():
            total = getattr(outage, what)
            counter.labels(name).inc(max(0, total - self.counted.get((what, name), 0)))
            self.counted[what, name] = total
