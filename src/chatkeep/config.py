"""Settings, read from `CHATKEEP_*` environment variables (and `.env` when present)."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, Literal, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatkeep.models import LimitPolicy

T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB


class Settings(BaseSettings):
    """Every knob of the service. The README's configuration table lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="CHATKEEP_", env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    durable_url: str = Field(
        "sqlite:///./chatkeep.db",
        description="Store for durable conversations and the tenants: SQLite, PostgreSQL or memory://.",
    )
    ephemeral_url: str | None = Field(
        None, description="Store for ephemeral conversations (redis://...); in-process memory when unset."
    )
    events_url: str | None = Field(
        None, description="Event bus shared by instances (redis://...); in-process when unset (one instance)."
    )
    ephemeral_ttl_seconds: int = Field(
        7 * 86_400, ge=1, description="Sliding expiry of ephemeral conversations (a tenant may set its own)."
    )
    pinned_never_expire: bool = Field(True, description="Pinned ephemeral conversations do not expire.")
    none_grace_seconds: int = Field(
        90, ge=1, description="A `none` conversation is dropped this long after its last heartbeat or write."
    )
    expired_memory_seconds: int = Field(
        7 * 86_400,
        ge=0,
        description="How long an expired conversation still answers `expired` (then `not_found`).",
    )
    sweep_interval_seconds: float = Field(5.0, gt=0, description="How often expired conversations are swept.")
    stream_timeout_seconds: int = Field(
        30, ge=1, description="A streaming reply not extended for this long is marked interrupted."
    )
    ephemeral_outage: Literal["fallback", "refuse"] = Field(
        "fallback",
        description="When Redis is unreachable: keep ephemeral writes in memory and replay them "
        "(`fallback`), or answer 503 (`refuse`).",
    )
    outage_journal_max_bytes: int = Field(
        128 * MIB,
        ge=1 * KIB,
        description="Bytes of writes an instance holds during a Redis outage; past it writes answer 503.",
    )
    outage_journal_tenant_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Share of the outage journal one tenant may fill; past it its writes answer 503.",
    )
    dev_mode: bool | None = Field(
        None,
        description="Demo tenant and /v1/dev/token. Default: on when bound to loopback, off otherwise.",
    )
    demo_assistant: Literal["echo", "off"] | None = Field(
        None,
        description="The demo tenant's built-in assistant: `echo` answers each user message with a "
        "streamed echo. Default: on in dev mode only.",
    )
    demo_assistant_seconds: float = Field(
        2.0, gt=0, le=600, description="How long the echo assistant takes to stream a reply."
    )
    log_level: str = Field("info", description="Log level of the server.")
    request_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request must arrive whole (line, headers, body) within this long of its first "
        "byte, or the server answers 408 and closes the connection (slowloris).",
    )
    keep_alive_timeout_seconds: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    max_connections: int = Field(
        20_000,
        ge=0,
        description="Open connections (WebSockets included) past which new HTTP requests answer 503 "
        "(0: no limit).",
    )
    opentelemetry: bool = Field(
        False,
        description="The web framework's OpenTelemetry traces, metrics and logs of each request, sent to "
        "the providers configured in the process (off: /metrics only, and no per-request check).",
    )

    # limits
    max_body_bytes: int = Field(1 * MIB, ge=1 * KIB, description="Largest request body.")
    max_message_bytes: int = Field(
        64 * KIB, ge=1, description="Largest message: content, parts and metadata, UTF-8 encoded."
    )
    max_conversations_per_tenant: int | None = Field(
        100_000, ge=1, description="Live conversations per tenant."
    )
    max_conversations_per_user: int | None = Field(1_000, ge=1, description="Live conversations per user.")
    max_messages_per_conversation: int | None = Field(
        10_000, ge=1, description="Messages kept per conversation."
    )
    message_limit_policy: LimitPolicy = Field(
        LimitPolicy.REJECT, description="At the message limit: `reject` new messages or `trim` the oldest."
    )
    max_batch_messages: int = Field(100, ge=1, description="Messages in one batch append.")
    memory_max_bytes: int | None = Field(
        256 * MIB,
        ge=1,
        description="Bytes this process may hold for `none` conversations and in-memory `ephemeral` ones "
        "(no Redis), all tenants together; past it writes answer 507 storage_full.",
    )
    memory_max_tenant_bytes: int | None = Field(
        32 * MIB, ge=1, description="The same budget, for one tenant."
    )
    max_page_size: int = Field(200, ge=1, description="Largest page of messages or conversations.")
    user_rate_per_second: float = Field(20.0, ge=0, description="Sustained requests per user token (0: off).")
    user_rate_burst: int = Field(100, ge=1, description="Burst allowance per user token.")
    key_rate_per_second: float = Field(
        500.0, ge=0, description="Sustained requests per tenant API key (0: off)."
    )
    key_rate_burst: int = Field(2_000, ge=1, description="Burst allowance per tenant API key.")
    ws_send_queue: int = Field(
        1_000,
        ge=1,
        description="Frames a WebSocket may have waiting to be sent before it is closed as too slow.",
    )
    ws_idle_timeout_seconds: float = Field(
        90.0, gt=0, description="A WebSocket that sends nothing (not even a ping) for this long is closed."
    )
    ws_auth_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a new WebSocket has to authenticate."
    )
    ws_max_pending_deltas: int = Field(
        16,
        ge=1,
        description="`stream.delta` frames of one WebSocket being stored at once; the socket is not read "
        "further until one is done.",
    )
    ws_max_sockets_per_user: int = Field(
        20, ge=0, description="Open WebSockets per user token, per instance (0: no cap)."
    )
    ws_max_sockets_per_key: int = Field(
        1_000, ge=0, description="Open WebSockets per tenant API key, per instance (0: no cap)."
    )
    ws_max_subscriptions: int = Field(
        200, ge=0, description="Conversations and workspaces one WebSocket may follow (0: no cap)."
    )
    token_max_age_seconds: int = Field(86_400, ge=60, description="Lifetime of tokens from /v1/dev/token.")
    max_token_lifetime_seconds: int = Field(
        7 * 86_400,
        ge=60,
        description="Longest accepted lifetime (exp - iat) of a user token (a tenant may set its own).",
    )
    auth_failure_rate_per_second: float = Field(
        1.0, ge=0, description="Sustained failed authentications per client address (0: off)."
    )
    auth_failure_burst: int = Field(
        20, ge=1, description="Burst of failed authentications per client address."
    )

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def dev_enabled(self) -> bool:
        return self.loopback if self.dev_mode is None else self.dev_mode

    @property
    def echo_assistant(self) -> bool:
        """Whether the demo tenant's echo assistant runs (never outside dev mode)."""
        if not self.dev_enabled:
            return False
        return self.demo_assistant != "off"


def settings_of(cls: type[T], settings: Settings) -> T:
    """A dataclass whose fields are settings of the same names, filled from `settings`."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {name: getattr(settings, name) for name in names}
    return cls(**values)
