"""`/static/chatkeep.js` is one module joined from the parts in `static/client/`: the join keeps
every part whole and in dependency order, and refuses parts it could not join exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatkeep.api.client_module import ClientModuleError, join, load
from tests.api.conftest import Api

PARTS = Path(__file__).resolve().parents[2] / "src" / "chatkeep" / "static" / "client"
USES_A = "export const createClient = a;\n"
USES_A = "export const createClient = a;\n"
ENTRY = '// the client\nexport { createClient } from "./client.js";\n'


def sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in PARTS.glob("*.js")}


async def test_the_served_client_is_its_parts_joined(api: Api) -> None:
    answer = await api.client.get("/static/chatkeep.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.content == load() == join(sources()).encode()


def test_every_part_is_in_the_module_once_after_the_parts_it_imports() -> None:
    parts = sources()
    joined = join(parts)
    assert re.findall(r"^(?:import|export)\b.*", joined, re.M) == ["export { createClient, ChatkeepClient };"]
    placed = re.findall(r"^// client/(\S+)$", joined, re.M)
    assert sorted(placed) == sorted(set(parts) - {"index.js"})
    for name in placed:
        for imported in re.findall(r'^import\s*\{[^}]*\}\s*from\s*"\./(\S+)";', parts[name], re.M):
            assert placed.index(imported) < placed.index(name), (name, imported)
    # each part's code is there, only its import statements and `export` keywords taken out
    for name in placed:
        for line in re.sub(r"^import[^;]*;\n", "", parts[name], flags=re.M).splitlines():
            assert line.removeprefix("export ") in joined, (name, line)


def test_parts_join_in_dependency_order_with_the_entry_names_exported_last() -> None:
    joined = join(
        {
            "index.js": ENTRY,
            "client.js": 'import { a,\n  b } from "./util.js";\n'
            + "export function createClient() {\n  return a + b;\n}\n",
            "util.js": "export const a = 1;\nexport const b = 2;\nconst hidden = 3;\n",
        }
    )
    assert joined == (
        "// the client\n\n// client/util.js\nconst a = 1;\nconst b = 2;\nconst hidden = 3;\n\n"
        "// client/client.js\nfunction createClient() {\n  return a + b;\n}\n\nexport { createClient };\n"
    )


@pytest.mark.parametrize(
    ("parts", "says"),
    [
        ({"client.js": "export const createClient = 1;\n"}, "index.js is missing"),
        (
            {"index.js": ENTRY + "console.log(1);\n", "client.js": "export const createClient = 1;\n"},
            "holds a comment and",
        ),
        ({"index.js": "// nothing exported\n", "client.js": ""}, "holds a comment and"),
        (
            {"index.js": ENTRY, "client.js": 'import x from "./util.js";\nexport const createClient = x;\n'},
            "cannot join 'import x from",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import * as u from "./util.js";\nexport const createClient = u;\n',
            },
            "cannot join 'import * as u",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import { a as b } from "./util.js";\nexport const createClient = b;\n',
                "util.js": "export const a = 1;\n",
            },
            "no `as`",
        ),
        (
            {"index.js": ENTRY, "client.js": "const createClient = 1;\nexport { createClient };\n"},
            "cannot join 'export { createClient };'",
        ),
        (
            {"index.js": ENTRY, "client.js": "export default function createClient() {}\n"},
            "cannot join 'export default",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import { a } from "./util.js";\nexport const createClient = a;\n',
                "util.js": 'import { createClient } from "./client.js";\nexport const a = 1;\n',
            },
            "cycle: client.js -> util.js -> client.js",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import { a } from "./gone.js";\nexport const createClient = a;\n',
            },
            "client/client.js imports ./gone.js, which is not a part",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import { a } from "./util.js";\nexport const createClient = a;\n',
                "util.js": "const a = 1;\n",
            },
            "client/client.js imports 'a', which ./util.js does not export",
        ),
        (
            {
                "index.js": 'export { other } from "./client.js";\n',
                "client.js": "export const createClient = 1;\n",
            },
            "client/index.js imports 'other', which ./client.js does not export",
        ),
        (
            {
                "index.js": ENTRY,
                "client.js": 'import { a } from "./util.js";\nconst same = 2;\n' + USES_A,
                "util.js": "export const a = 1;\nfunction same() {}\n",
            },
            "client/util.js and client/client.js both declare 'same'",
        ),
        (
            {"index.js": ENTRY, "client.js": "export const createClient = 1;\n", "old.js": "const x = 1;\n"},
            "client/old.js is imported by no part",
        ),
    ],
)
def test_parts_that_cannot_be_joined_exactly_are_refused_with_the_reason(
    parts: dict[str, str], says: str
) -> None:
    with pytest.raises(ClientModuleError) as refused:
        join(parts)
    assert says in str(refused.value)
