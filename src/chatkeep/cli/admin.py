"""`chatkeep stats` and `chatkeep gc`: what the stores hold, and expired conversations removed on demand."""

from __future__ import annotations

import json
import sys

import click

from chatkeep.cli.main import main, with_services
from chatkeep.models import Mode
from chatkeep.service import Services


@main.command()
@click.option("--tenant", "tenant_id", default=None, help="One tenant (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: tenant -> mode -> counts.")
@with_services
async def stats(services: Services, tenant_id: str | None, as_json: bool) -> None:
    """Live conversations and retained messages per tenant and persistence mode. Conversations in the
    `none` mode live in each server's memory and are not counted here."""
    if tenant_id is not None:
        await services.tenants.get(tenant_id)  # a clear error for an unknown tenant
        ids = [tenant_id]
    else:
        ids = [t.id for t in await services.tenants.list_tenants()]
    result: dict[str, dict[str, dict[str, int]]] = {}
    with click.progressbar(length=len(ids), label="counting", file=sys.stderr) as bar:
        for tid in ids:
            counts = await services.tenant_counts(tid)
            bar.update(1)
            result[tid] = {
                mode.value: {"conversations": c.conversations, "messages": c.messages}
                for mode, c in counts.items()
                if mode is not Mode.NONE
            }
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    click.echo(f"{'tenant':<24} {'mode':<10} {'conversations':>13} {'messages':>10}")
    for tid, modes in result.items():
        for mode, c in modes.items():
            click.echo(f"{tid:<24} {mode:<10} {c['conversations']:>13} {c['messages']:>10}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The removed conversations as a JSON list.")
@with_services
async def gc(services: Services, as_json: bool) -> None:
    """Remove expired conversations now, as the server's sweeper does on its schedule, and mark
    `interrupted` the streaming replies whose writer went quiet."""
    removed = await services.sweeper.sweep()
    if as_json:
        rows = [
            {"tenant": r.tenant, "id": r.id, "workspace": r.workspace, "user": r.user, "mode": r.mode.value,
             "expired_at": r.expired_at}
            for r in removed
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"removed {len(removed)} expired conversation{'s' if len(removed) != 1 else ''}")
