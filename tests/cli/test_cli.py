"""The `chatkeep` command line: tenants, tokens, migrations, and clear errors with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from chatkeep.cli.main import main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/cli.db"}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def fields(output: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in output.splitlines()) if v}


def test_tenants_create_prints_key_and_secret_once_and_they_work(env: dict[str, str]) -> None:
    code, out, err = run(env, "tenants", "create", "Acme Corp.")
    assert code == 0, err
    created = fields(out)
    assert created["tenant"] == "acme-corp"
    assert created["api key"].startswith("ck_") and len(created["api key"]) > 40
    assert "not shown again" in err

    code, out, _ = run(env, "tenants", "list")
    assert code == 0 and out.startswith("acme-corp\tAcme Corp.")
    assert created["api key"] not in out and created["token secret"] not in out

    code, out, _ = run(env, "token", "acme-corp", "alice", "-w", "docs", "--ttl", "120")
    assert code == 0
    claims = jwt.decode(out.strip(), created["token secret"], algorithms=["HS256"])
    assert (claims["tenant"], claims["sub"], claims["workspaces"]) == ("acme-corp", "alice", ["docs"])
    assert claims["exp"] - claims["iat"] == 120

    code, out, _ = run(env, "tenants", "rotate-key", "acme-corp")
    assert code == 0 and fields(out)["api key"] != created["api key"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenants", "create", "Acme"), "exists"),
        (("tenants", "create", "   "), "empty"),
        (("tenants", "create", "x", "--id", "../bad"), "not a valid id"),
        (("token", "nobody", "alice"), "not found"),
        (("token", "acme", "bad user"), "not a valid id"),
        (("tenants", "rotate-key", "nobody"), "not found"),
    ],
)
def test_bad_input_gives_a_message_and_a_non_zero_exit(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    assert run(env, "tenants", "create", "Acme")[0] == 0
    code, out, err = run(env, *args)
    assert code == 1
    assert err.startswith("chatkeep: ") and message in err
    assert "Traceback" not in err + out


def test_an_unusable_store_url_is_explained(tmp_path: Path) -> None:
    code, _, err = run({"CHATKEEP_DURABLE_URL": "mongodb://x"}, "tenants", "list")
    assert code == 1 and "unknown store scheme 'mongodb'" in err
    code, _, err = run({"CHATKEEP_DURABLE_URL": "postgresql://u:hunter2@127.0.0.1:1/db"}, "migrate")
    assert code == 1 and "unavailable" in err
    assert "hunter2" not in err and "***" in err


@pytest.mark.parametrize(
    "command", [("tenants", "list"), ("tenants", "create", "Acme"), ("migrate",), ("serve",)]
)
def test_a_durable_store_that_keeps_no_tenants_is_refused_at_start_up(command: tuple[str, ...]) -> None:
    code, out, err = run({"CHATKEEP_DURABLE_URL": "redis://:hunter2@127.0.0.1:6379/0"}, *command)
    assert code == 1
    assert err.startswith("chatkeep: the durable store redis://:***@127.0.0.1:6379/0 keeps no tenants: ")
    assert "set CHATKEEP_DURABLE_URL to sqlite:///" in err
    assert "Traceback" not in err + out and "hunter2" not in err


@pytest.mark.parametrize("command", [("serve",), ("migrate",), ("tenants", "list")])
def test_a_setting_that_does_not_read_is_named_with_its_value(
    env: dict[str, str], command: tuple[str, ...]
) -> None:
    bad = {**env, "CHATKEEP_OPENTELEMETRY": "maybe", "CHATKEEP_MAX_BODY_BYTES": "5"}
    code, out, err = run(bad, *command)
    assert code == 1
    assert err.splitlines() == [
        "chatkeep: CHATKEEP_OPENTELEMETRY='maybe': Input should be a valid boolean, "
        "unable to interpret input",
        "chatkeep: CHATKEEP_MAX_BODY_BYTES='5': Input should be greater than or equal to 1024",
    ]
    assert "Traceback" not in err + out


def test_migrate_and_the_installed_entry_point(env: dict[str, str]) -> None:
    code, _, err = run(env, "migrate")
    assert code == 0 and "schema up to date" in err
    done = subprocess.run(
        [sys.executable, "-m", "chatkeep", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "tenants" in done.stdout and "serve" in done.stdout
