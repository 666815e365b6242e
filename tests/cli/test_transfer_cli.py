"""`chatkeep export` and `chatkeep import`: help, split ChatGPT exports, clear errors with a non-zero
exit, and an export whose memory does not grow with the number of conversations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from chatkeep.cli.main import main
from tests.chatgpt_export import BRANCH, branching_conversation, simple_conversation
from tests.conftest import report


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/cli.db",
        "CHATKEEP_MAX_CONVERSATIONS_PER_USER": "5000",
    }
    assert run(env, "tenants", "create", "Acme")[0] == 0
    return env


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_help_names_the_formats() -> None:
    code, out, _ = run({}, "export", "--help")
    assert code == 0 and "--format [json|jsonl|markdown]" in out and "--output" in out
    code, out, _ = run({}, "import", "--help")
    assert code == 0 and "ChatGPT" in out and "--workspace" in out


def test_a_split_chatgpt_export_imports_once(env: dict[str, str], tmp_path: Path) -> None:
    branching = branching_conversation()
    others = [simple_conversation(text="one"), simple_conversation(text="two")]
    (tmp_path / "conversations-000.json").write_bytes(orjson.dumps([branching]))
    (tmp_path / "conversations-001.json").write_bytes(orjson.dumps(others))
    files = [str(tmp_path / "conversations-000.json"), str(tmp_path / "conversations-001.json")]
    code, out, err = run(env, "import", *files, "--user", "alice", "--workspace", "chatgpt")
    assert code == 0, err
    assert out.strip() == "imported 3 conversations (9 messages), skipped 0 already there, failed 0"
    code, out, _ = run(env, "import", *files, "--user", "alice", "--workspace", "chatgpt")
    assert out.strip() == "imported 0 conversations (0 messages), skipped 3 already there, failed 0"

    code, _, err = run(env, "export", "--format", "jsonl", "--output", str(tmp_path / "out.jsonl"))
    assert code == 0 and "exported 3 conversations, 9 messages" in err
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in records if r["type"] == "conversation"]
    assert sorted(ids) == sorted([branching["id"], *(c["id"] for c in others)])
    start = next(k for k, r in enumerate(records) if r["id"] == branching["id"])
    branch = records[start + 1 : start + 6]
    assert [(m["id"], m["role"], m["content"], m["parts"]) for m in branch] == [b[:4] for b in BRANCH]

    code, out, _ = run(env, "export", "--format", "markdown", "--conversation", branching["id"])
    assert code == 0 and out.startswith("# Cats and sums\n") and "### tool · " in out


def test_bad_files_are_explained_with_a_non_zero_exit(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('[{"mapping": {}, "id": "x"}, {"id": ')
    code, out, err = run(env, "import", str(tmp_path / "broken.json"), "--user", "u", "--workspace", "w")
    assert code == 1 and "Traceback" not in err + out
    assert f"chatkeep: {tmp_path / 'broken.json'}: record 0 (conversation x): current_node:" in err
    assert f"chatkeep: {tmp_path / 'broken.json'}: record file: json: [1]: not valid JSON" in err
    assert "failed 2" in out
    code, out, _ = run(
        env, "import", str(tmp_path / "broken.json"), "--user", "u", "--workspace", "w", "--json"
    )
    summary = json.loads(out)
    assert code == 1 and (summary["imported"], summary["failed"]) == (0, 2)
    assert [(e["record"], e["field"]) for e in summary["errors"]][0] == ("0", "current_node")

    code, _, err = run(env, "import", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err

    (tmp_path / "good.json").write_bytes(orjson.dumps([simple_conversation()]))
    assert run(env, "tenants", "create", "Other")[0] == 0
    code, _, err = run(env, "import", str(tmp_path / "good.json"), "--user", "u", "--workspace", "w")
    assert code == 1 and err.strip() == "chatkeep: 2 tenants here: say which one with --tenant"
    code, _, err = run(env, "export", "--tenant", "nobody")
    assert code == 1 and "not found" in err


def chatkeep_export(conversations: int, messages: int = 20) -> bytes:
    """A JSON Lines export of `conversations` conversations of `messages` 2 KB messages each, in the
    list order (latest activity first), as chatkeep would write it."""
    lines = []
    for n in reversed(range(conversations)):
        cid = f"c{n:05d}"
        lines.append(
            {
                "type": "conversation",
                "id": cid,
                "workspace": "w",
                "user": f"u{n % 7}",
                "title": f"#{n}",
                "mode": "durable",
                "created_at": "2026-01-01T00:00:00.000Z",
                "last_activity_at": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                "expires_at": None,
                "starred": False,
                "pinned": False,
                "archived": False,
                "tags": [],
                "message_count": messages,
                "last_seq": messages,
                "last_message_preview": "",
                "usage": {"input_tokens": 0, "output_tokens": 0},
                "version": 1,
                "ttl_ms": None,
            }  # fmt: skip
        )
        for seq in range(1, messages + 1):
            lines.append(
                {
                    "type": "message",
                    "id": f"m{seq}",
                    "conversation_id": cid,
                    "seq": seq,
                    "role": "user",
                    "content": "x" * 2048,
                    "parts": None,
                    "metadata": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                    "status": "complete",
                    "created_at": "2026-01-01T00:00:00.000Z",
                }  # fmt: skip
            )
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


# Runs a command and prints its peak RSS. A child forked from the (big) test process would count
# the test's own pages in its high-water mark until it execs; one forked from this small wrapper
# counts at most the wrapper's.
_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kib(command: list[str], env: dict[str, str]) -> int:
    """Run `command` and return its peak resident set size (KiB), as the kernel counted it."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(measured.stdout)


def test_export_memory_does_not_grow_with_the_number_of_conversations(tmp_path: Path) -> None:
    peaks = {}
    for count in (200, 1000):
        env = {
            "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/rss-{count}.db",
            "CHATKEEP_MAX_CONVERSATIONS_PER_USER": "5000",
        }
        assert run(env, "tenants", "create", "Acme")[0] == 0
        source = tmp_path / f"in-{count}.jsonl"
        source.write_bytes(chatkeep_export(count))
        code, out, err = run(env, "import", str(source))
        assert code == 0, err + out
        output = tmp_path / f"out-{count}.jsonl"
        command = [sys.executable, "-m", "chatkeep", "export", "--format", "jsonl", "--output", str(output)]
        peaks[count] = peak_rss_kib(command, env)
        assert output.read_bytes() == source.read_bytes()
    size = (tmp_path / "out-1000.jsonl").stat().st_size // 1024
    report(f"chatkeep export peak RSS: {peaks[200]} KiB for 200 conversations, {peaks[1000]} KiB for 1,000 "
           f"({size} KiB written)")  # fmt: skip
    # 1,000 conversations write ~{size} KiB more than 200 do; a streamed export keeps none of it
    assert peaks[1000] < peaks[200] + 16 * 1024


def test_the_command_line_leaves_what_a_server_keeps_in_memory_to_the_api(
    env: dict[str, str], tmp_path: Path
) -> None:
    records = [json.loads(line) for line in chatkeep_export(2, messages=1).decode().splitlines()]
    records[0]["mode"] = "ephemeral"  # no Redis here: a server would keep it in its own memory
    (tmp_path / "modes.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    code, out, err = run(env, "import", str(tmp_path / "modes.jsonl"))
    assert code == 1 and "imported 1 conversations (1 messages)" in out and "failed 1" in out
    assert "record 0 (conversation c00001): mode: ephemeral conversations live in a server's memory" in err
