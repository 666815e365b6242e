"""The calls of the account-level endpoints: session cleanup, tenant settings, dev tokens, health."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

import httpx

from chatkeep.client.calls import UNSET, Call, given
from chatkeep.client.types import CleanupResult, PersistenceSettings, parse
from chatkeep.models import Mode


class CleanupOptions(TypedDict, total=False):
    ids: Iterable[str]  # for `specific`
    idle_seconds: int | None  # for `inactive`
    workspace: str | None
    user: str | None  # tenant API key only
    modes: Iterable[Mode | str] | None


class SettingsChanges(TypedDict, total=False):
    default_mode: Mode | str
    ephemeral_ttl_seconds: int | None  # None: the server's default
    pinned_never_expire: bool | None


def cleanup_sessions(
    strategy: Literal["all", "inactive", "specific"],
    *,
    ids: Iterable[str] = (),
    idle_seconds: int | None = None,
    workspace: str | None = None,
    user: str | None = None,
    modes: Iterable[Mode | str] | None = None,
) -> Call[CleanupResult]:
    """Delete the caller's sessions: `all`, `inactive` (`idle_seconds`) or `specific` (`ids`)."""
    body: dict[str, Any] = {"strategy": strategy}
    if strategy == "specific":
        body["ids"] = list(ids)
    if idle_seconds is not None:
        body["idle_seconds"] = idle_seconds
    if workspace is not None:
        body["workspace"] = workspace
    if user is not None:
        body["user"] = user
    if modes is not None:
        body["modes"] = [str(m) for m in modes]

    return Call("POST", "/v1/sessions/cleanup", lambda r: parse(CleanupResult, r.json()), json=body)


def _settings(r: httpx.Response) -> PersistenceSettings:
    return parse(PersistenceSettings, r.json())


def get_persistence_settings() -> Call[PersistenceSettings]:
    """The tenant's persistence settings (tenant API key only)."""
    return Call("GET", "/v1/settings/persistence", _settings)


def put_persistence_settings(
    *,
    default_mode: Mode | str = UNSET,
    ephemeral_ttl_seconds: int | None = UNSET,
    pinned_never_expire: bool | None = UNSET,
) -> Call[PersistenceSettings]:
    """Change `default_mode`, `ephemeral_ttl_seconds`, `pinned_never_expire` (None: the default)."""
    body = given(ephemeral_ttl_seconds=ephemeral_ttl_seconds, pinned_never_expire=pinned_never_expire)
    if default_mode is not UNSET:
        body["default_mode"] = str(default_mode)
    return Call("PUT", "/v1/settings/persistence", _settings, json=body)


def dev_token(user: str = "demo-user", workspace: str | None = None) -> Call[str]:
    """A demo user token from a dev-mode server on loopback."""
    params = {"user": user} if workspace is None else {"user": user, "workspace": workspace}
    return Call("GET", "/v1/dev/token", lambda r: str(r.json()["token"]), params=params)


def health(ready: bool = True) -> Call[dict[str, Any]]:
    return Call("GET", "/readyz" if ready else "/healthz", lambda r: r.json())
