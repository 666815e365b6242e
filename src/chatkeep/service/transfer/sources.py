"""What an import file holds, a conversation at a time: the format is recognised from the text, and
each conversation comes out as a `Draft` (to store) or a `Failure` (naming the record and field).

Formats:
- chatkeep JSON Lines: a conversation record, then its message records, and so on (`"type"`
  says which). Read a record at a time.
- chatkeep JSON: `{"format": "chatkeep", "version": 1, "conversations": [...]}`, each conversation
  with its `messages`. Read a conversation at a time when written in that key order (as export
  writes it); otherwise read whole.
- a ChatGPT export: an array of conversations with a `mapping` (`conversations.json`, or one of its
  splits `conversations-000.json`...). Read a conversation at a time.
- an OpenAI-style message list: `[{"role", "content"}, ...]` or `{"messages": [...]}`: one new
  conversation, read whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from chatkeep.errors import InvalidInput
from chatkeep.models import Conversation, Message
from chatkeep.service.transfer import foreign, records
from chatkeep.service.transfer.reader import Values
from chatkeep.service.transfer.records import RecordError

_HEAD = re.compile(r'\{\s*"format"\s*:\s*"chatkeep"\s*,\s*"version"\s*:\s*1\s*,\s*"conversations"\s*:\s*')


@dataclass(frozen=True, slots=True)
class Draft:
    """A conversation read from a file, before the importer gives it its tenant and owner. `foreign`:
    from another tool (its owner comes from the importer); `digest`: its id derives from its content
    (an OpenAI-style list), so an id that exists means the same list was imported before."""

    record: str
    conversation: Conversation
    messages: list[Message]
    foreign: bool = False
    digest: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    record: str
    id: str | None
    field: str
    detail: str
    code: str = "invalid_import"


Item = Draft | Failure


def read(stream: IO[str], *, owner: str, now: int) -> Iterator[Item]:
    """The conversations of one file, in order. A file whose text breaks off (invalid JSON) yields a
    Failure for the record where it broke, and nothing after it. `owner` and `now` name and date a
    conversation made from a message list."""
    values = Values(stream)
    try:
        first = values.peek()
        if first == "[":
            yield from _array(values, owner, now)
        elif first == "{":
            yield from _object(values, owner, now)
        else:
            yield Failure("file", None, "json", "is neither a JSON array nor JSON objects")
    except InvalidInput as exc:
        yield Failure("file", None, "json", exc.detail)


def _array(values: Values, owner: str, now: int) -> Iterator[Item]:
    elements = values.elements("")
    first = next(elements, None)
    if isinstance(first, dict) and "role" in first and "mapping" not in first:
        items = [first, *elements]
        values.end("file")
        yield _list(items, owner, now)
        return
    if first is not None:
        yield _chatgpt(0, first)
        for index, element in enumerate(elements, start=1):
            yield _chatgpt(index, element)
    values.end("file")


def _object(values: Values, owner: str, now: int) -> Iterator[Item]:
    head = _HEAD.match(values.window())
    if head is not None:
        values.skip(head.end())
        for index, element in enumerate(values.elements("conversations")):
            yield _document_conversation(index, element)
        values.expect("}", "file")
        values.end("file")
        return
    first = values.value("record 0")
    if isinstance(first, dict) and "type" in first:
        yield from _lines(first, values)
        return
    values.end("file")
    if isinstance(first, dict) and first.get("format") == records.FORMAT:
        conversations = first.get("conversations")
        if first.get("version") != records.VERSION or not isinstance(conversations, list):
            yield Failure("file", None, "version", "is not a chatkeep export of version 1")
            return
        for index, element in enumerate(conversations):
            yield _document_conversation(index, element)
    elif isinstance(first, dict) and "mapping" in first:
        yield _chatgpt(0, first)
    elif isinstance(first, dict) and "messages" in first:
        yield _list(first, owner, now)
    else:
        yield Failure("file", None, "format", "is not a chatkeep export, a ChatGPT export or a message list")


def _chatgpt(index: int, raw: Any) -> Item:
    cid = raw.get("id") or raw.get("conversation_id") if isinstance(raw, dict) else None
    try:
        conversation, messages = foreign.chatgpt_conversation(raw)
    except RecordError as exc:
        return Failure(str(index), cid if isinstance(cid, str) else None, exc.field, exc.detail)
    return Draft(str(index), conversation, messages, foreign=True)


def _list(raw: Any, owner: str, now: int) -> Item:
    try:
        conversation, messages = foreign.message_list_conversation(raw, owner, now)
    except RecordError as exc:
        return Failure("0", None, exc.field, exc.detail)
    return Draft("0", conversation, messages, foreign=True, digest=True)


def _document_conversation(index: int, raw: Any) -> Item:
    cid = raw.get("id") if isinstance(raw, dict) else None
    try:
        conversation = records.conversation_of(raw, "")
        found = raw.get("messages", [])
        if not isinstance(found, list):
            raise RecordError("messages", "is not a list")
        messages = [records.message_of(m, conversation.id, f"messages[{k}].") for k, m in enumerate(found)]
    except RecordError as exc:
        return Failure(str(index), cid if isinstance(cid, str) else None, exc.field, exc.detail)
    return Draft(str(index), conversation, messages)


def _lines(first: dict[str, Any], values: Values) -> Iterator[Item]:
    """JSON Lines: a conversation record and the message records after it make one conversation."""
    pending: tuple[str, Any, list[Any]] | None = None
    index = 0
    record: Any = first
    while True:
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "conversation" or record is None:
            if pending is not None:
                yield _record_conversation(*pending)
            if record is None:
                return
            pending = (str(index), record, [])
        elif pending is not None:  # its message records (one of another type fails the conversation)
            pending[2].append(record)
        else:
            yield Failure(str(index), None, "type", "is not a conversation record")
        index += 1
        record = values.value(f"record {index}") if values.peek() else None


def _record_conversation(index: str, raw: dict[str, Any], found: list[Any]) -> Item:
    cid = raw.get("id")
    try:
        conversation = records.conversation_of(raw, "")
        for k, m in enumerate(found):
            if not isinstance(m, dict) or m.get("type") != "message":
                raise RecordError(f"messages[{k}].type", "is not a message record")
        messages = [records.message_of(m, conversation.id, f"messages[{k}].") for k, m in enumerate(found)]
    except RecordError as exc:
        return Failure(index, cid if isinstance(cid, str) else None, exc.field, exc.detail)
    return Draft(index, conversation, messages)
