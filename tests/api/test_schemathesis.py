"""Property-based fuzzing of the live server from its own /openapi.json (schemathesis).

Hundreds of generated requests, valid and invalid, with a valid token; every answer must be
documented, match its schema and content type, and none may be a server error.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chatkeep.api.app import create_app
from chatkeep.config import Settings
from chatkeep.models import is_id
from tests.conftest import report
from tests.server import ServerProcess

EXAMPLES_PER_OPERATION = 30
CLI_MAX_EXAMPLES = 30
# A fixed seed keeps `make test` repeatable; CHATKEEP_FUZZ_SEED=random (or another number) explores.
_SEED_SETTING = os.environ.get("CHATKEEP_FUZZ_SEED", "20261205")
FUZZ_SEED = random.randrange(1_000_000) if _SEED_SETTING == "random" else int(_SEED_SETTING)
CASES_SENT: Counter[str] = Counter()
KNOWN_IDS = [str(uuid.uuid4()) for _ in range(6)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/fuzz.db",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_AUTH_FAILURE_RATE_PER_SECOND": "0",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    with ServerProcess(env, tmp / "server.log") as server:
        token = httpx.get(f"{server.url}/v1/dev/token", params={"user": "fuzzer"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        for cid in KNOWN_IDS:
            httpx.post(f"{server.url}/v1/conversations", json={"workspace": "w1", "id": cid}, headers=headers)
            batch = {"messages": [{"role": "user", "content": f"m{i}"} for i in range(5)]}
            httpx.post(f"{server.url}/v1/conversations/{cid}/messages:batch", json=batch, headers=headers)
        yield {"url": server.url, "headers": headers, "log": tmp / "server.log"}


def known_conversations(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Half of the cases address conversations that exist, so the deep paths are fuzzed too. An id
    generated to break the schema is left alone, so negative cases stay negative."""
    generated = path_parameters.get("conversation_id") if path_parameters else None
    if not is_id(generated):
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.sampled_from(KNOWN_IDS).map(lambda cid: {**path_parameters, "conversation_id": cid}),
    )


def is_query_type_mutation(case: schemathesis.Case) -> bool:
    """A negative case that only changes a query value's JSON type (`false` for "false", a scalar
    for a one-item array). On the wire a query parameter is text, so the request such a case sends
    is valid, and its acceptance is no finding."""
    if case.meta is None or case.meta.generation.mode.is_positive:
        return False
    data = case.meta.phase.data
    if isinstance(data, CoveragePhaseData):
        return (
            data.scenario == CoverageScenario.INCORRECT_TYPE
            and data.parameter_location == ParameterLocation.QUERY
        )
    values = [
        v for value in (case.query or {}).values() for v in (value if isinstance(value, list) else [value])
    ]
    return not all(isinstance(v, str) for v in values)


# The document the live server serves at /openapi.json (a test below checks they are the same).
schema = schemathesis.openapi.from_dict(create_app(Settings(durable_url="memory://")).openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES_PER_OPERATION
)
schema.config.seed = FUZZ_SEED
schema.hooks.register_hook_with_name(known_conversations, "flatmap_path_parameters")
# A PATCH without its required If-Match answers 428 Precondition Required (RFC 6585), on purpose.
schema.config.checks.missing_required_header.expected_statuses.append("428")


def test_the_fuzzed_document_is_the_served_one(live: dict[str, Any]) -> None:
    assert httpx.get(f"{live['url']}/openapi.json").json() == schema.raw_schema


# Rejections of schema-valid requests that are rules no OpenAPI document can express: a stale
# If-Match version, size limits on encoded bytes, an opaque cursor not issued by the server, text
# with NUL or unpaired surrogates, JSON nested too deep. Each must come with its documented code.
SEMANTIC_REJECTIONS = {
    412: {"version_mismatch"},
    413: {"message_too_large", "batch_too_large", "body_too_large"},
    422: {"invalid_cursor", "invalid_text", "invalid_json"},
}
ACCEPTED = {401, 403, 404, 409, 429}


def valid_requests_are_accepted(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Like schemathesis' positive_data_acceptance, except for the named semantic rejections."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in ACCEPTED or status >= 500:  # 5xx is not_a_server_error's to report
        return None
    code = response.json().get("code")
    if code not in SEMANTIC_REJECTIONS.get(status, set()):
        raise AssertionError(f"a schema-valid request was rejected: {status} {code}: {response.text[:300]}")
    return True


@schema.parametrize()
def test_api_matches_its_schema_and_never_fails(case: schemathesis.Case, live: dict[str, Any]) -> None:
    if is_query_type_mutation(case):
        return
    CASES_SENT[case.operation.label] += 1
    case.call_and_validate(
        base_url=live["url"],
        headers=live["headers"],
        additional_checks=[valid_requests_are_accepted],
        excluded_checks=[positive_data_acceptance],
    )


def test_the_fuzzing_sent_a_few_hundred_cases() -> None:
    """Runs after the fuzzing above (pytest keeps file order): it must have exercised every operation."""
    operations = {
        f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item
    }
    report(
        f"schemathesis: {sum(CASES_SENT.values())} generated requests over {len(CASES_SENT)} operations"
        f" (seed {FUZZ_SEED})"
    )
    assert set(CASES_SENT) == operations
    assert sum(CASES_SENT.values()) >= 300


def test_schemathesis_cli_with_every_check_and_phase_finds_nothing(tmp_path: Path) -> None:
    """The schemathesis command line against a live server, every check and every phase (stateful
    included), as `make test` runs it. Its settings (tests/api/schemathesis.toml) name the statuses a
    schema-valid request may still get, each documented on its routes."""
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/cli-fuzz.db",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_AUTH_FAILURE_RATE_PER_SECOND": "0",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    seed = FUZZ_SEED
    with ServerProcess(env, tmp_path / "server.log") as server:
        token = httpx.get(f"{server.url}/v1/dev/token", params={"user": "cli-fuzzer"}).json()["token"]
        command = [
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(Path(__file__).with_name("schemathesis.toml")),
            "run", f"{server.url}/openapi.json",
            "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(CLI_MAX_EXAMPLES), "--seed", str(seed),
            "--header", f"Authorization: Bearer {token}", "--no-color",
        ]  # fmt: skip
        # Run in the test's directory: schemathesis keeps a cache where it runs.
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    report(f"schemathesis CLI (--checks all, 4 phases, seed {seed}): {summary.group(0) if summary else '?'}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert summary is not None and int(summary.group(1)) >= 1_000
