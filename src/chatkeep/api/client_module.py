"""The browser client, `/static/chatkeep.js`: one ES module joined from its parts in `static/client/`.

The parts are ES modules a reader (and `tsc`) takes one at a time; a page gets them as one file,
because each module it imports costs a request before the first paint (16 modules measured 50-70 ms
slower to paint a cached conversation than one file). Joining is textual and refuses what it cannot
join exactly:

- a part imports only `import { a, b } from "./part.js";` and exports only by an `export` keyword in
  front of a top-level declaration; both at the start of a line;
- the entry, `index.js`, holds the header comment and `export { ... } from "./part.js";` lines only;
- top-level names are unique across the parts (the joined module has one scope), every imported
  name is exported by its part, parts import each other without a cycle, and every part is used.

Parts come in dependency order, each after a `// client/<name>` line; the entry's names are
exported at the end. Joining runs once, when the static files are first read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

PARTS = "client"
ENTRY = "index.js"

_NAME = r"[A-Za-z_$][\w$]*"
_PART = r"\./([A-Za-z0-9_-]+\.js)"
IMPORT = re.compile(rf'^import\s*\{{([^}}]*)\}}\s*from\s*"{_PART}";[ \t]*\n?', re.M)
REEXPORT = re.compile(rf'^export\s*\{{([^}}]*)\}}\s*from\s*"{_PART}";[ \t]*\n?', re.M)
EXPORTED = re.compile(rf"^export\s+((?:async\s+)?(?:function\*?|class|const|let)\s+({_NAME}))", re.M)
DECLARED = re.compile(rf"^(?:export\s+)?(?:async\s+)?(?:function\*?|class|const|let|var)\s+({_NAME})", re.M)
MODULE_SYNTAX = re.compile(r"^(?:import|export)\b.*", re.M)
COMMENT = re.compile(r"(?:\s*//[^\n]*|\s*/\*.*?\*/)*\s*", re.S)


class ClientModuleError(ValueError):
    """The parts cannot be joined into one module; the message names the part and what to change."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    body: str  # without its imports, `export` dropped
    imports: dict[str, tuple[str, ...]]  # by part: the names taken from it
    exports: frozenset[str]
    declared: tuple[str, ...]


def parse(name: str, source: str) -> Part:
    """One part: what it imports and exports, and its body as it goes into the joined module."""
    imports: dict[str, tuple[str, ...]] = {}
    for match in IMPORT.finditer(source):
        imports[match[2]] = imports.get(match[2], ()) + _names(name, match[1])
    body = EXPORTED.sub(r"\1", IMPORT.sub("", source))
    stray = MODULE_SYNTAX.search(body)
    if stray:
        raise ClientModuleError(
            f"client/{name}: cannot join {stray[0].strip()!r}: import with "
            '`import { a, b } from "./part.js";` and export with `export` before a declaration'
        )
    exports = frozenset(match[2] for match in EXPORTED.finditer(source))
    return Part(name, body, imports, exports, tuple(DECLARED.findall(source)))


def join(sources: Mapping[str, str]) -> str:
    """The joined module of `sources` (part name -> text), or ClientModuleError saying what is wrong."""
    if ENTRY not in sources:
        raise ClientModuleError(f"client/{ENTRY} is missing: it names what the module exports")
    entry = sources[ENTRY]
    public: dict[str, tuple[str, ...]] = {}
    for match in REEXPORT.finditer(entry):
        public[match[2]] = public.get(match[2], ()) + _names(ENTRY, match[1])
    header = REEXPORT.sub("", entry)
    if COMMENT.fullmatch(header) is None or not public:
        raise ClientModuleError(
            f'client/{ENTRY} holds a comment and `export {{ ... }} from "./part.js";` lines only'
        )
    parts = {name: parse(name, text) for name, text in sources.items() if name != ENTRY}
    order = _order(parts, list(public))
    unused = sorted(set(parts) - set(order))
    if unused:
        raise ClientModuleError(f"client/{unused[0]} is imported by no part: remove it or import it")
    _check_names(parts, order, public)
    chunks = [header.strip() + "\n"]
    chunks += [f"// client/{name}\n{parts[name].body.strip()}\n" for name in order]
    names = [name for taken in public.values() for name in taken]
    chunks.append(f"export {{ {', '.join(names)} }};\n")
    return "\n".join(chunks)


def load() -> bytes:
    """The joined module of the package's parts."""
    folder = resources.files("chatkeep").joinpath("static", PARTS)
    sources = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".js")
    }
    return join(sources).encode()


def _names(part: str, listed: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in listed.split(",") if n.strip())
    for name in names:
        if re.fullmatch(_NAME, name) is None:
            raise ClientModuleError(f"client/{part}: cannot join the import of {name!r}: no `as`")
    return names


def _order(parts: Mapping[str, Part], roots: list[str]) -> list[str]:
    """The parts the roots need, each after the parts it imports (depth first, no cycle)."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str, by: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise ClientModuleError(f"the parts import each other in a cycle: {cycle}")
        if name not in parts:
            raise ClientModuleError(f"client/{by} imports ./{name}, which is not a part")
        visiting.append(name)
        for needed in parts[name].imports:
            visit(needed, name)
        visiting.pop()
        order.append(name)

    for root in roots:
        visit(root, ENTRY)
    return order


def _check_names(parts: Mapping[str, Part], order: list[str], public: Mapping[str, tuple[str, ...]]) -> None:
    owner: dict[str, str] = {}
    for name in order:
        for declared in parts[name].declared:
            if declared in owner:
                raise ClientModuleError(
                    f"client/{owner[declared]} and client/{name} both declare {declared!r}: "
                    "the joined module has one scope, so rename one"
                )
            owner[declared] = name
    wanted = [(name, part, parts[name].imports[part]) for name in order for part in parts[name].imports]
    wanted += [(ENTRY, part, names) for part, names in public.items()]
    for by, part, names in wanted:
        missing = [n for n in names if n not in parts[part].exports]
        if missing:
            raise ClientModuleError(f"client/{by} imports {missing[0]!r}, which ./{part} does not export")
