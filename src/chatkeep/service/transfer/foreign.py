"""Conversations from other tools' files: a ChatGPT data export and an OpenAI-style message list.

Both read into chatkeep's models with seqs from 1, no usage and no expiry; the owner (user and
workspace) and the tenant are the importer's to fill in.

A ChatGPT conversation is a tree of nodes (`mapping`): every edit of a prompt starts a branch. The
branch the user last saw ends at `current_node`; it is followed up through `parent` to the root and
read top down. Nodes without a message are skipped, and so are messages with `weight` 0 (not shown)
and hidden ones (`metadata.is_visually_hidden_from_conversation`, such as the system prompt), and
messages left with neither text nor attachments. Text `content.parts` (strings) are joined with
newlines; the other parts (images, files: objects) are kept as the message's `parts`.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from chatkeep.domain import PREVIEW_CHARS
from chatkeep.models import Conversation, Message, Mode, Role, is_id
from chatkeep.service.transfer.records import RecordError

ROLES = {role.value: role for role in Role}


def derived_id(*parts: str) -> str:
    """A stable id that looks like a random (version 4) UUID: the same inputs give the same id, so
    importing one file twice finds what the first import stored."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _ms(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        raise RecordError(field, f"{str(value)[:40]!r} is not a time in seconds")
    return round(value * 1000)


def _conversation(cid: str, title: str, messages: list[Message], created: int, updated: int) -> Conversation:
    return Conversation(
        tenant="",
        id=cid,
        workspace="",
        user="",
        mode=Mode.DURABLE,
        title=title,
        created_at=created,
        last_activity_at=max(updated, messages[-1].created_at if messages else 0),
        message_count=len(messages),
        last_seq=len(messages),
        preview=messages[-1].content[:PREVIEW_CHARS] if messages else "",
    )


def _content(content: Any, field: str) -> tuple[str, list[Any] | None]:
    """Text and non-text parts of a ChatGPT message `content`."""
    if not isinstance(content, dict):
        raise RecordError(field, "is not a JSON object")
    parts = content.get("parts")
    if parts is None:
        text = content.get("text", "")
        if not isinstance(text, str):
            raise RecordError(f"{field}.text", "is not a string")
        return text, None
    if not isinstance(parts, list):
        raise RecordError(f"{field}.parts", "is not a list")
    texts = [p for p in parts if isinstance(p, str)]
    others = [p for p in parts if not isinstance(p, str)]
    for k, part in enumerate(parts):
        if not isinstance(part, str | dict):
            raise RecordError(f"{field}.parts[{k}]", "is neither text nor an object")
    return "\n".join(t for t in texts if t), others or None


def chatgpt_conversation(raw: Any) -> tuple[Conversation, list[Message]]:
    """One element of a ChatGPT `conversations.json`; `RecordError` names a bad field."""
    if not isinstance(raw, dict):
        raise RecordError("conversation", "is not a JSON object")
    cid = raw.get("id") or raw.get("conversation_id")
    if not is_id(cid):
        raise RecordError("id", f"{str(cid)[:40]!r} is not a valid id")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict):
        raise RecordError("mapping", "is missing or not an object")
    node_id = raw.get("current_node")
    if node_id not in mapping:
        raise RecordError("current_node", f"{str(node_id)[:40]!r} is not a node of mapping")
    branch: list[str] = []
    while node_id is not None:
        if node_id in branch or node_id not in mapping or not isinstance(mapping[node_id], dict):
            raise RecordError(f"mapping[{str(node_id)[:40]!r}]", "breaks the chain of parents")
        branch.append(node_id)
        node_id = mapping[node_id].get("parent")
    title = raw.get("title") or ""
    if not isinstance(title, str):
        raise RecordError("title", "is not a string")
    created = _ms(raw.get("create_time"), "create_time")
    messages: list[Message] = []
    for node_id in reversed(branch):
        message = _chatgpt_message(cid, node_id, mapping[node_id].get("message"), len(messages) + 1, created)
        if message is not None:
            messages.append(message)
    first = created if created is not None else (messages[0].created_at if messages else 0)
    updated = _ms(raw.get("update_time"), "update_time") or first
    return _conversation(cid, title, messages, first, updated), messages


def _chatgpt_message(cid: str, node_id: str, raw: Any, seq: int, created: int | None) -> Message | None:
    field = f"mapping[{node_id[:40]!r}].message"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RecordError(field, "is not a JSON object")
    metadata = raw.get("metadata") or {}
    if raw.get("weight", 1) == 0 or (
        isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation")
    ):
        return None
    author = raw.get("author")
    role = ROLES.get(str(author.get("role"))) if isinstance(author, dict) else None
    if role is None:
        raise RecordError(f"{field}.author.role", "is not user, assistant, system or tool")
    text, parts = _content(raw.get("content"), f"{field}.content")
    if not text and parts is None:
        return None
    mid = raw.get("id") or node_id
    if not is_id(mid):
        raise RecordError(f"{field}.id", f"{str(mid)[:40]!r} is not a valid id")
    at = _ms(raw.get("create_time"), f"{field}.create_time")
    return Message(cid, mid, seq, role, text, at if at is not None else created or 0, parts=parts)


def message_list_conversation(raw: Any, owner: str, now: int) -> tuple[Conversation, list[Message]]:
    """An OpenAI-style message list (`[{role, content}]`, or `{"messages": [...]}`) as a new
    conversation. Its id derives from the list's content and `owner` (tenant and user), message ids
    from positions (`m1`, `m2`...), so importing the same list twice finds the first import."""
    items = raw.get("messages") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise RecordError("messages", "is not a non-empty list of messages")
    digest = hashlib.sha256(repr(items).encode("utf-8")).hexdigest()
    cid = derived_id(owner, "messages", digest)
    messages = []
    for k, item in enumerate(items):
        field = f"[{k}]"
        if not isinstance(item, dict):
            raise RecordError(field, "is not a JSON object")
        role = ROLES.get(str(item.get("role")))
        if role is None:
            raise RecordError(f"{field}.role", "is not user, assistant, system or tool")
        content = item.get("content")
        if content is None:
            text, parts = "", None
        elif isinstance(content, str):
            text, parts = content, None
        elif isinstance(content, list) and all(isinstance(p, dict) for p in content):
            texts = [p.get("text") for p in content if p.get("type") == "text"]
            if not all(isinstance(t, str) for t in texts):
                raise RecordError(f"{field}.content", "holds a text part without text")
            text = "\n".join(t for t in texts if t)
            parts = [p for p in content if p.get("type") != "text"] or None
        else:
            raise RecordError(f"{field}.content", "is neither text nor a list of parts")
        extra = {key: item[key] for key in ("name", "tool_calls", "tool_call_id") if key in item}
        messages.append(Message(cid, f"m{k + 1}", k + 1, role, text, now, parts, extra or None))
    return _conversation(cid, "", messages, now, now), messages
