"""Who is calling: tenant API keys for server-side callers, signed user tokens for browsers."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from chatkeep.errors import Forbidden, Unauthenticated
from chatkeep.models import Conversation, Scope, Tenant, is_id
from chatkeep.stores.base import TenantStore

API_KEY_PREFIX = "ck_"
TOKEN_ALGORITHM = "HS256"
ALL_WORKSPACES = "*"
# The tenant of dev mode: its tokens are handed out to anyone who asks, so they count only while
# dev mode is on (a token minted on a laptop must not work once the server is public).
DEMO_TENANT = "demo"
DEFAULT_MAX_TOKEN_LIFETIME = 7 * 86_400


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_token_secret() -> str:
    return secrets.token_urlsafe(48)


def hash_key(api_key: str) -> str:
    """API keys are 256-bit random strings, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `user` None means a tenant API key: the whole tenant is in reach.
    `workspaces` None means every workspace of the tenant."""

    tenant: Tenant
    user: str | None
    workspaces: frozenset[str] | None

    @property
    def is_tenant_key(self) -> bool:
        return self.user is None

    @property
    def rate_key(self) -> str:
        return f"{self.tenant.id}/{self.user}" if self.user is not None else f"{self.tenant.id}/key"

    @property
    def scope(self) -> Scope:
        """The conversations of its tenant this caller may reach."""
        return Scope(self.user, self.workspaces)

    def may_use_workspace(self, workspace: str) -> bool:
        return self.workspaces is None or workspace in self.workspaces

    def sees(self, conversation: Conversation) -> bool:
        return conversation.tenant == self.tenant.id and self.scope.admits(
            conversation.user, conversation.workspace
        )

    def require_tenant_key(self, action: str) -> None:
        if not self.is_tenant_key:
            raise Forbidden(
                f"{action} needs the tenant's API key, not a user token", code="tenant_key_required"
            )


def issue_token(
    tenant: Tenant, user: str, workspaces: list[str], *, ttl_seconds: int, now: float | None = None
) -> str:
    """A signed user token (JWT, HS256 with the tenant's secret) as a tenant's backend would mint it."""
    issued = int(now if now is not None else time.time())
    claims = {
        "tenant": tenant.id,
        "sub": user,
        "workspaces": workspaces,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, tenant.token_secret, algorithm=TOKEN_ALGORITHM)


class _TTLCache:
    """A small time-bounded cache, so that authentication does not read the store on every request."""

    def __init__(self, seconds: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._seconds = seconds
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, tuple[float, Tenant | None]] = {}

    def get(self, key: str) -> tuple[bool, Tenant | None]:
        hit = self._entries.get(key)
        if hit is None or hit[0] < self._clock():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: Tenant | None) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self._seconds, value)

    def clear(self) -> None:
        self._entries.clear()


class Authenticator:
    """Turns a bearer credential into a Principal. Tenants are cached for `cache_seconds`, so a rotated
    key or secret takes at most that long to stop working on every instance."""

    def __init__(
        self,
        store: TenantStore,
        *,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_token_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME,
        dev_mode: bool = False,
    ) -> None:
        self._store = store
        self._max_lifetime = max_token_lifetime_seconds
        self._dev_mode = dev_mode
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._by_key = _TTLCache(cache_seconds, clock)
        self._by_id = _TTLCache(cache_seconds, clock)
        # Verified tokens: a browser sends the same token on every request, and verifying it (two
        # decodes and an HMAC) is most of authentication's cost. Each is kept until it expires, with
        # the secret that verified it; once its tenant's record is older than the tenant cache, the
        # token is accepted again only if the tenant reads back unchanged and that secret still
        # verifies (a rotation, a lapsed overlap window or a changed setting verifies it afresh).
        self._tokens: dict[str, tuple[float, int, Principal, str]] = {}

    def verified(self, credential: str) -> bool:
        """Whether `credential` is a user token this process verified recently and still holds:
        accepting it again reads nothing."""
        cached = self._tokens.get(credential)
        return cached is not None and self._clock() < cached[0] and time.time() < cached[1]

    def forget(self) -> None:
        """Drop cached tenants and tokens (after this process changed a tenant)."""
        self._by_key.clear()
        self._by_id.clear()
        self._tokens.clear()

    async def tenant(self, tenant_id: str) -> Tenant | None:
        known, tenant = self._by_id.get(tenant_id)
        if not known:
            tenant = await self._store.get_tenant(tenant_id)
            self._by_id.put(tenant_id, tenant)
        return tenant

    async def authenticate(self, credential: str | None) -> Principal:
        if not credential:
            raise Unauthenticated(
                "send 'Authorization: Bearer <token or API key>'; a demo token comes from GET /v1/dev/token",
                code="unauthenticated",
            )
        if credential.startswith(API_KEY_PREFIX):
            return await self._from_key(credential)
        cached = self._tokens.get(credential)
        if cached is not None:
            until, expires, principal, secret = cached
            now = time.time()
            if now < expires:
                if self._clock() < until:
                    return principal
                tenant = await self.tenant(principal.tenant.id)
                if tenant == principal.tenant and secret in verifying_secrets(tenant, now):
                    self._tokens[credential] = (
                        self._clock() + self._cache_seconds,
                        expires,
                        principal,
                        secret,
                    )
                    return principal
            del self._tokens[credential]
        principal, expires, secret = await self._from_token(credential)
        if len(self._tokens) >= 10_000:
            self._tokens.clear()
        self._tokens[credential] = (self._clock() + self._cache_seconds, expires, principal, secret)
        return principal

    async def _from_key(self, api_key: str) -> Principal:
        digest = hash_key(api_key)
        known, tenant = self._by_key.get(digest)
        if not known:
            tenant = await self._store.get_tenant_by_key_hash(digest)
            self._by_key.put(digest, tenant)
        if tenant is None:
            raise Unauthenticated("unknown API key", code="invalid_credentials")
        return Principal(tenant=tenant, user=None, workspaces=None)

    async def _from_token(self, token: str) -> tuple[Principal, int, str]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("the token is not a valid JWT", code="invalid_token") from None
        tenant_id = unverified.get("tenant") if isinstance(unverified, dict) else None
        if not isinstance(tenant_id, str) or not is_id(tenant_id):
            raise Unauthenticated("the token has no valid 'tenant' claim", code="invalid_token")
        tenant = await self.tenant(tenant_id)
        if tenant is None:
            raise Unauthenticated("the token's tenant is unknown", code="invalid_token")
        if tenant.id == DEMO_TENANT and not self._dev_mode:
            raise Unauthenticated(
                "tokens of the demo tenant work only while the server runs in dev mode", code="dev_mode_off"
            )
        claims, secret = _verified(token, tenant)
        self._check_lifetime(claims, tenant)
        user = claims["sub"]
        if not isinstance(user, str) or not is_id(user):
            raise Unauthenticated("the token's 'sub' claim is not a valid user id", code="invalid_token")
        principal = Principal(tenant=tenant, user=user, workspaces=_workspaces(claims.get("workspaces")))
        return principal, int(claims["exp"]), secret

    def _check_lifetime(self, claims: dict[str, Any], tenant: Tenant) -> None:
        """Refuse a token valid for longer than the tenant's (or the server's) maximum lifetime,
        counted from its `iat`, or from now when it has none or one in the future."""
        limit = tenant.settings.max_token_lifetime_seconds or self._max_lifetime
        issued = claims.get("iat")
        now = time.time()
        start = min(issued, now) if isinstance(issued, int | float) else now
        if claims["exp"] - start > limit:
            raise Unauthenticated(
                f"the token is valid for longer than {limit} s, the longest lifetime this tenant accepts; "
                "mint tokens with a shorter 'exp'",
                code="token_lifetime",
                limit=limit,
            )


def verifying_secrets(tenant: Tenant, now: float) -> list[str]:
    """The secrets a token of `tenant` may be signed with: the current one, and the previous one
    until its overlap window after a rotation ends."""
    previous, until = tenant.previous_token_secret, tenant.previous_secret_expires_at
    if previous and until is not None and now * 1000 < until:
        return [tenant.token_secret, previous]
    return [tenant.token_secret]


def _verified(token: str, tenant: Tenant) -> tuple[dict[str, Any], str]:
    """The claims of a token signed with one of the tenant's secrets, checked for expiry, and the
    secret that signed it."""
    for secret in verifying_secrets(tenant, time.time()):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=[TOKEN_ALGORITHM],
                options={"require": ["exp", "sub", "tenant"]},
            )
            return claims, secret
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; get a new one", code="token_expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token was rejected: {exc}", code="invalid_token") from None
    raise Unauthenticated("the token was rejected: Signature verification failed", code="invalid_token")


def _workspaces(claim: object) -> frozenset[str] | None:
    if claim is None:
        raise Unauthenticated(
            "the token has no 'workspaces' claim (a list, or ['*'] for all)", code="invalid_token"
        )
    if not isinstance(claim, list) or not all(isinstance(w, str) for w in claim):
        raise Unauthenticated(
            "the token's 'workspaces' claim must be a list of strings", code="invalid_token"
        )
    if ALL_WORKSPACES in claim:
        return None
    if not all(is_id(w) for w in claim):
        raise Unauthenticated("the token's 'workspaces' claim holds an invalid id", code="invalid_token")
    return frozenset(claim)
