"""`chatkeep stats` and `chatkeep gc` over a store the test fills directly."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatkeep.cli.main import main
from chatkeep.models import Conversation, Mode, NewMessage, Role
from chatkeep.stores import open_store


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def fill(url: str, tenant: str, plan: list[tuple[str, Mode, int, int | None]]) -> None:
    """(id, mode, messages, ttl ms) for each conversation."""
    store = open_store(url)
    await store.connect()
    try:
        for cid, mode, count, ttl in plan:
            await store.create_conversation(Conversation(tenant, cid, "w1", "u1", mode, ttl_ms=ttl))
            if count:
                messages = [NewMessage(f"{cid}-{i}", Role.USER, "hi") for i in range(count)]
                await store.append_messages(tenant, cid, messages)
    finally:
        await store.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {"CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/admin.db"}
    assert run(env, "tenants", "create", "Acme")[0] == 0
    assert run(env, "tenants", "create", "Other")[0] == 0
    return env


def test_stats_counts_conversations_and_messages_per_tenant_and_mode(env: dict[str, str]) -> None:
    url = env["CHATKEEP_DURABLE_URL"]
    asyncio.run(fill(url, "acme", [("a1", Mode.DURABLE, 3, None), ("a2", Mode.DURABLE, 2, None),
                                   ("a3", Mode.LOCAL, 0, None)]))  # fmt: skip
    asyncio.run(fill(url, "other", [("o1", Mode.DURABLE, 7, None)]))
    code, out, err = run(env, "stats", "--json")
    assert code == 0, err
    counts = json.loads(out)
    assert counts["acme"]["durable"] == {"conversations": 2, "messages": 5}
    assert counts["acme"]["local"] == {"conversations": 1, "messages": 0}
    assert counts["acme"]["ephemeral"] == {"conversations": 0, "messages": 0}
    assert counts["other"]["durable"] == {"conversations": 1, "messages": 7}
    assert "none" not in counts["acme"]

    code, out, _ = run(env, "stats", "--tenant", "other")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["tenant", "mode", "conversations", "messages"]
    assert ["other", "durable", "1", "7"] in [line.split() for line in lines[1:]]
    assert all(line.split()[0] == "other" for line in lines[1:])

    code, _, err = run(env, "stats", "--tenant", "nobody")
    assert code == 1 and "not found" in err


def test_gc_removes_the_expired_conversations_now_and_only_those(env: dict[str, str]) -> None:
    url = env["CHATKEEP_DURABLE_URL"]
    plan = [
        ("gone1", Mode.DURABLE, 2, 300), ("gone2", Mode.DURABLE, 0, 300),
        ("kept", Mode.DURABLE, 1, 3_600_000), ("forever", Mode.DURABLE, 1, None),
    ]  # fmt: skip
    asyncio.run(fill(url, "acme", plan))
    time.sleep(0.4)
    code, out, err = run(env, "gc", "--json")
    assert code == 0, err
    removed = json.loads(out)
    assert sorted((r["tenant"], r["id"], r["mode"]) for r in removed) == [
        ("acme", "gone1", "durable"), ("acme", "gone2", "durable")
    ]  # fmt: skip
    code, out, _ = run(env, "gc")
    assert (code, out.strip()) == (0, "removed 0 expired conversations")
    code, out, _ = run(env, "stats", "--json", "--tenant", "acme")
    assert json.loads(out)["acme"]["durable"] == {"conversations": 2, "messages": 2}
