"""`chatkeep`: serve, migrate, manage tenants and mint tokens. Commands call the service layer."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from functools import wraps
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from chatkeep import __version__
from chatkeep.bootstrap import build_services
from chatkeep.config import Settings
from chatkeep.errors import ChatkeepError
from chatkeep.service import Services

T = TypeVar("T")


@contextlib.contextmanager
def explained() -> Iterator[None]:
    """A ChatkeepError, or a setting that does not read, becomes a one-line message and exit status 1."""
    try:
        yield
    except ChatkeepError as exc:
        click.echo(f"chatkeep: {exc.detail}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for error in exc.errors(include_url=False):
            name = "CHATKEEP_" + "_".join(str(part) for part in error["loc"]).upper()
            click.echo(f"chatkeep: {name}={error['input']!r}: {error['msg']}", err=True)
        sys.exit(1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a ChatkeepError becomes a one-line message and exit status 1."""
    with explained():
        return asyncio.run(coro)


def with_services(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Open the services (without serving) around a command, with the settings from the environment."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        async def body() -> T:
            services = build_services(Settings(dev_mode=False))
            await services.start()
            try:
                return await fn(services, *args, **kwargs)
            finally:
                await services.stop()

        return run(body())

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="chatkeep")
def main() -> None:
    """chatkeep: chat persistence as a service.

    Settings come from CHATKEEP_* environment variables (see the README), e.g.
    CHATKEEP_DURABLE_URL=postgresql://user@host/db.
    """


@main.command()
@click.option("--host", default=None, help="Address to bind (default CHATKEEP_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default CHATKEEP_PORT or 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Migrate the stores and serve the REST API."""
    from chatkeep.api.app import create_app
    from chatkeep.api.server import serve as serve_app

    overrides: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    with explained():  # settings that do not read or cannot work are refused before serving
        settings = Settings(**overrides)
        app = create_app(settings)
    dev = "on: GET /v1/dev/token hands out demo tokens" if settings.dev_enabled else "off"
    click.echo(
        f"chatkeep {__version__} on http://{settings.host}:{settings.port}  (dev mode {dev})", err=True
    )
    serve_app(app, settings)


@main.command()
def migrate() -> None:
    """Bring every store's schema up to date (the server also does this when it starts)."""

    async def body() -> None:
        services = build_services(Settings(dev_mode=False))
        for name, url in services.store_urls().items():
            click.echo(f"migrating {name} store {url} ...", err=True)
        await services.migrate()
        click.echo("schema up to date", err=True)

    run(body())


@main.group()
def tenants() -> None:
    """Create and list tenants."""


@tenants.command("create")
@click.argument("name")
@click.option("--id", "tenant_id", default=None, help="Tenant id (default: derived from NAME).")
@with_services
async def tenants_create(services: Services, name: str, tenant_id: str | None) -> None:
    """Create tenant NAME and print its API key and token secret (shown only this once)."""
    created = await services.tenants.create(name, tenant_id)
    t = created.tenant
    click.echo(f"tenant:       {t.id}")
    click.echo(f"api key:      {created.api_key}")
    click.echo(f"token secret: {t.token_secret}")
    click.echo(
        "Store both now: they are not shown again. Sign user tokens (HS256) with the secret.", err=True
    )


@tenants.command("list")
@with_services
async def tenants_list(services: Services) -> None:
    """List tenants."""
    for t in await services.tenants.list_tenants():
        click.echo(f"{t.id}\t{t.name}\tdefault mode: {t.settings.default_mode.value}")


@tenants.command("rotate-key")
@click.argument("tenant_id")
@with_services
async def tenants_rotate_key(services: Services, tenant_id: str) -> None:
    """Replace a tenant's API key and print the new one; the old key stops working."""
    rotated = await services.tenants.rotate_key(tenant_id)
    click.echo(f"api key: {rotated.api_key}")


@tenants.command("rotate-secret")
@click.argument("tenant_id")
@click.option(
    "--overlap",
    default=86_400,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds during which tokens signed with the old secret still verify (0: none).",
)
@with_services
async def tenants_rotate_secret(services: Services, tenant_id: str, overlap: int) -> None:
    """Give a tenant a new token secret and print it; the old one verifies for --overlap seconds."""
    rotated = await services.tenants.rotate_secret(tenant_id, overlap)
    click.echo(f"token secret: {rotated.token_secret}")
    click.echo(f"The previous secret is accepted for {overlap} more seconds.", err=True)


@tenants.command("token-lifetime")
@click.argument("tenant_id")
@click.argument("seconds", type=click.IntRange(min=60), required=False)
@with_services
async def tenants_token_lifetime(services: Services, tenant_id: str, seconds: int | None) -> None:
    """Set the longest lifetime of TENANT_ID's user tokens (omit SECONDS for the server's setting)."""
    tenant = await services.tenants.set_token_lifetime(tenant_id, seconds)
    shown = tenant.settings.max_token_lifetime_seconds
    click.echo(f"max token lifetime: {shown if shown is not None else 'server setting'}")


@main.command()
@click.argument("tenant_id")
@click.argument("user")
@click.option("--workspace", "-w", multiple=True, help="Allowed workspace (repeat); all when omitted.")
@click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
@with_services
async def token(services: Services, tenant_id: str, user: str, workspace: tuple[str, ...], ttl: int) -> None:
    """Print a user token for USER of TENANT_ID, as the tenant's backend would sign it."""
    from chatkeep.service.auth import issue_token
    from chatkeep.service.validation import check_id

    tenant = await services.tenants.get(tenant_id)
    check_id(user, "user")
    for w in workspace:
        check_id(w, "workspace")
    click.echo(issue_token(tenant, user, list(workspace) or ["*"], ttl_seconds=ttl))


# The commands that live in modules of their own register themselves on `main`.
from chatkeep.cli import admin, transfer  # noqa: E402, F401

if __name__ == "__main__":
    main()
