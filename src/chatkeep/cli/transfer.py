"""`chatkeep export` and `chatkeep import`: a tenant's conversations to a file and back, any size,
with a progress bar on stderr. The commands act with the tenant's full reach, as its API key would,
on the stores a server shares with them: the durable store and Redis. What a server keeps in its
own memory (`none` conversations, and `ephemeral` ones when no Redis is set) goes through the API."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from chatkeep.bootstrap import build_services
from chatkeep.cli.main import main, run
from chatkeep.config import Settings
from chatkeep.errors import InvalidInput
from chatkeep.service import Principal, Services
from chatkeep.service.limits import Limits
from chatkeep.service.transfer import Exporter, Importer, Owner, Selection, Summary

T = TypeVar("T")


def _run(body: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services around `body`; a ChatkeepError becomes a one-line message and exit 1."""

    async def opened() -> T:
        services = build_services(Settings(dev_mode=False))
        await services.start()
        try:
            return await body(services)
        finally:
            await services.stop()

    return run(opened())


async def _principal(services: Services, tenant_id: str | None) -> Principal:
    if tenant_id is not None:
        return Principal(await services.tenants.get(tenant_id), None, None)
    tenants = await services.tenants.list_tenants()
    if len(tenants) != 1:
        raise InvalidInput(
            f"{len(tenants)} tenants here: say which one with --tenant", code="tenant_required"
        )
    return Principal(tenants[0], None, None)


def _bar(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)


@main.command("export")
@click.option("--tenant", "tenant_id", default=None, help="Tenant id (needed when there are several).")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "jsonl", "markdown"]), default="jsonl", show_default=True
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@click.option("--conversation", default=None, help="Export this conversation only.")
@click.option("--workspace", default=None, help="Export this workspace only.")
@click.option("--user", default=None, help="Export this user's conversations only.")
def export_command(
    tenant_id: str | None,
    fmt: str,
    output: Path | None,
    conversation: str | None,
    workspace: str | None,
    user: str | None,
) -> None:
    """Write a tenant's conversations, with all their messages, as chatkeep JSON Lines (what
    `chatkeep import` reads back exactly), JSON, or a Markdown transcript."""

    async def body(services: Services) -> None:
        p = await _principal(services, tenant_id)
        exporter = Exporter(services.router)
        selection = Selection(conversation=conversation, workspace=workspace, user=user)
        export = await exporter.open(p, selection)
        total = await exporter.count(p, selection)
        sink: BinaryIO = output.open("wb") if output is not None else sys.stdout.buffer
        written = [0, 0]
        try:
            with _bar(total, "exporting") as bar:

                def done(_conversation: object, messages: int) -> None:
                    written[0] += 1
                    written[1] += messages
                    bar.update(1)

                async for chunk in export.chunks(fmt, done):  # type: ignore[arg-type]
                    sink.write(chunk)
        finally:
            sink.flush()
            if output is not None:
                sink.close()
        click.echo(f"exported {written[0]} conversations, {written[1]} messages", err=True)

    _run(body)


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_id", default=None, help="Tenant id (needed when there are several).")
@click.option("--user", default=None, help="Owner of the imported conversations (default: the file's).")
@click.option("--workspace", default=None, help="Workspace to import into (default: the file's).")
@click.option("--json", "as_json", is_flag=True, help="The summary (counts and errors) as one JSON object.")
def import_command(
    files: tuple[Path, ...], tenant_id: str | None, user: str | None, workspace: str | None, as_json: bool
) -> None:
    """Import conversations from FILES: chatkeep exports (JSON Lines or JSON), ChatGPT data exports
    (conversations.json and its splits) or OpenAI-style message lists. Each conversation is stored
    all or nothing; one already there with the same content is skipped. Files of any size are read
    a conversation at a time. Exits 1 when anything failed."""
    for path in files:
        if not path.is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="FILES")

    async def body(services: Services) -> Summary:
        p = await _principal(services, tenant_id)
        limits = Limits.from_settings(services.settings)
        importer = Importer(services.router, services.events, limits, serving=False)
        summary = Summary()
        with _bar(sum(os.path.getsize(f) for f in files), "importing") as bar:
            for path in files:
                with path.open("rb") as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8")
                    seen = [0]

                    def progress(raw: BinaryIO = raw, seen: list[int] = seen) -> None:
                        bar.update(raw.tell() - seen[0])
                        seen[0] = raw.tell()

                    owner = Owner(user=user, workspace=workspace)
                    await importer.import_file(p, str(path), text, owner, summary, progress)
        return summary

    summary = _run(body)
    if as_json:
        counts = {k: getattr(summary, k) for k in ("imported", "skipped", "failed", "messages")}
        click.echo(json.dumps({**counts, "errors": summary.errors}, indent=2))
        sys.exit(1 if summary.failed else 0)
    for error in summary.errors:
        click.echo(f"chatkeep: {error['detail']}", err=True)
    click.echo(
        f"imported {summary.imported} conversations ({summary.messages} messages), "
        f"skipped {summary.skipped} already there, failed {summary.failed}"
    )
    if summary.failed:
        sys.exit(1)
