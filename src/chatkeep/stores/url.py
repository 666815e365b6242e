"""Store URLs: parsed once, with the password hidden from repr and logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chatkeep.errors import ConfigError


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL such as `sqlite:///./chatkeep.db` or `postgresql://u:p@host/db?schema=x`.

    `options` holds the query parameters; `without_options` is the URL a driver should see.
    """

    raw: str = field(repr=False)
    scheme: str
    options: dict[str, str]

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        parts = urlsplit(url)
        if not parts.scheme:
            raise ConfigError(f"store URL {redact(url)!r} has no scheme; try sqlite:///./chatkeep.db")
        return cls(raw=url, scheme=parts.scheme.lower(), options=dict(parse_qsl(parts.query)))

    @property
    def redacted(self) -> str:
        return redact(self.raw)

    def without_options(self, *keep: str) -> str:
        """The URL without chatkeep's own query options (those the driver would not understand)."""
        # String surgery rather than urlunsplit, which would fold `sqlite:////abs` into `sqlite://abs`.
        base, _, query = self.raw.partition("?")
        kept = urlencode([(k, v) for k, v in parse_qsl(query) if k in keep])
        return f"{base}?{kept}" if kept else base

    def int_option(self, name: str, default: int) -> int:
        value = self.options.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"store URL option {name}={value!r} is not an integer") from None

    def __str__(self) -> str:
        return self.redacted


def redact(url: str) -> str:
    """`scheme://user:secret@host` -> `scheme://user:***@host`; anything else unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
