"""What full-text search finds and how it ranks: pure functions every store runs on the stored text,
so every backend answers the same hits, scores and snippets for the same data.

Words are the runs of letters and digits (`_` and punctuation separate them), compared lowercase;
this is how SQLite's FTS5 `unicode61` tokenizer and PostgreSQL's `simple` configuration over
letter-and-digit runs split text, so their indexes find every candidate this module accepts. A text
matches when it holds every query term as a whole word in its first `INDEXED_CHARS` characters.
Its score rewards each term's occurrences (at most three count) and short texts, doubled for a title:

    score = sum(min(count(term), 3)) * 1_000_000 // (words + 10)     (x2 for a title)

A snippet is the text around the first matched word, at most `SNIPPET_CHARS` characters, as segments
marked `match` or not; the text is never HTML, so a client renders it safely as plain text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from chatkeep.models import Role, SearchHit, SearchPage, SearchQuery, Segment, search_key

WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 10
SNIPPET_CHARS = 160
CONTEXT_CHARS = 40
ELLIPSIS = "\u2026"
MAX_COUNTED = 3
TITLE_WEIGHT = 2
# Only the start of a long message is searched (PostgreSQL indexes as much).
INDEXED_CHARS = 65_536


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def search_terms(text: str) -> tuple[str, ...]:
    """The distinct words of a query, in order, at most `MAX_TERMS` (the rest are ignored). Every
    other character (quotes, operators, `*`, `-`, parentheses) only separates words."""
    return tuple(dict.fromkeys(words(text)))[:MAX_TERMS]


def holds(text: str, terms: tuple[str, ...]) -> bool:
    """Whether the text holds every term as a word."""
    return bool(terms) and set(terms) <= set(words(text[:INDEXED_CHARS]))


def score(text: str, terms: tuple[str, ...], *, title: bool = False) -> int:
    """The score of a text that holds every term, or 0 when it misses one."""
    found = words(text)
    counts = Counter(found)
    if not terms or any(counts[t] == 0 for t in terms):
        return 0
    value = sum(min(counts[t], MAX_COUNTED) for t in terms) * 1_000_000 // (len(found) + 10)
    return value * TITLE_WEIGHT if title else value


def snippet(text: str, terms: tuple[str, ...], *, width: int = SNIPPET_CHARS) -> tuple[Segment, ...]:
    """The text around the first matched word, cut near word boundaries, with every whole matched
    word inside it marked; runs of whitespace become one space."""
    wanted = set(terms)
    spans = [(w.start(), w.end()) for w in WORD.finditer(text) if w.group().lower() in wanted]
    first = spans[0] if spans else (0, 0)
    start = 0 if first[0] <= CONTEXT_CHARS else _word_start(text, first[0] - CONTEXT_CHARS, first[0])
    end = min(len(text), max(start + width, first[1]))
    if end < len(text):
        end = _word_end(text, end, first[1])
    segments: list[Segment] = []
    position = start
    for a, b in spans:
        if a < start or b > end:
            continue
        _plain(segments, text[position:a])
        segments.append(Segment(text[a:b], True))
        position = b
    _plain(segments, text[position:end])
    if start > 0:
        segments.insert(0, Segment(ELLIPSIS))
    if end < len(text):
        segments.append(Segment(ELLIPSIS))
    return _merged(segments)


def _word_start(text: str, low: int, limit: int) -> int:
    """The first position after whitespace in text[low:limit], or low when there is none."""
    space = re.search(r"\s", text[low:limit])
    return low + space.end() if space else low


def _word_end(text: str, high: int, floor: int) -> int:
    """The last whitespace in text[floor:high], or high when there is none."""
    cut = text.rfind(" ", floor, high)
    return cut if cut > floor else high


def _plain(segments: list[Segment], text: str) -> None:
    if text:
        segments.append(Segment(re.sub(r"\s+", " ", text)))


def _merged(segments: list[Segment]) -> tuple[Segment, ...]:
    merged: list[Segment] = []
    for s in segments:
        if merged and not merged[-1].match and not s.match:
            merged[-1] = Segment(merged[-1].text + s.text)
        else:
            merged.append(s)
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A text a store read for a query: a message's content, or (`message_id` None, `seq` 0) a
    conversation's title."""

    text: str
    conversation_id: str
    workspace: str
    title: str
    message_id: str | None = None
    seq: int = 0
    role: Role | None = None


def search_page(query: SearchQuery, candidates: Iterable[Candidate], *, partial: bool = False) -> SearchPage:
    """The page of `query` among the candidates a store read (in any order): the hits strictly
    after the cursor in search order, at most `query.limit`, snippets made for those only."""
    scored = []
    bound = search_key(query.after) if query.after is not None else None
    for c in candidates:
        value = score(c.text[:INDEXED_CHARS], query.terms, title=c.message_id is None)
        if value == 0:
            continue
        key = (-value, c.conversation_id, c.seq)
        if bound is None or key > bound:
            scored.append((key, value, c))
    scored.sort(key=lambda item: item[0])
    page = [
        SearchHit(
            conversation_id=c.conversation_id,
            workspace=c.workspace,
            title=c.title,
            message_id=c.message_id,
            seq=c.seq,
            role=c.role,
            snippet=snippet(c.text[:INDEXED_CHARS], query.terms),
            score=value,
        )
        for _key, value, c in scored[: query.limit]
    ]
    more = len(scored) > query.limit
    return SearchPage(page, page[-1].cursor if more and page else None, partial)
