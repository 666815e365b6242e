"""Import: conversations from files into the caller's tenant, each one all or nothing.

Who owns what is imported:
- with a user token, everything goes to that user; a conversation's workspace is the file's (or
  the one the import names) and must be one the token allows;
- with a tenant API key, chatkeep records keep their user and workspace unless the import names
  others; conversations from other tools need both named.

Ids: a conversation keeps its id, except that with a user token an id that is not a random
(version 4) UUID is replaced by one derived from the tenant, the user and that id (see
`service/ids.py` for why user tokens choose only random ids): the derived id looks random, is
the same at every import of the same file, and differs from user to user. A message list gets an id
derived from its content and its owner, so importing it twice finds the first import.

Count limits are checked before each conversation is stored, against counts read once per import
and kept up to date by it (not atomically with the stores: writes outside the import meanwhile may
pass a limit by what they add).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO

from chatkeep.domain import errors
from chatkeep.errors import ChatkeepError, Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from chatkeep.events.base import EventBus
from chatkeep.models import Conversation, EventType, Message, NewMessage, now_ms
from chatkeep.service.auth import Principal
from chatkeep.service.events import conversation_event
from chatkeep.service.ids import RANDOM_ID_RE
from chatkeep.service.limits import Limits
from chatkeep.service.routing import StoreRouter
from chatkeep.service.transfer.foreign import derived_id
from chatkeep.service.transfer.sources import Draft, Failure, read
from chatkeep.service.validation import MAX_TITLE_CHARS, check_id, check_message, check_tags, check_text

MAX_REPORTED = 100
IN_FLIGHT = 8


@dataclass(frozen=True, slots=True)
class Owner:
    """The user and workspace an import names (None: the file's)."""

    user: str | None = None
    workspace: str | None = None


@dataclass
class Summary:
    """What an import did: conversations stored, found already there (skipped), and failed, with
    the first `MAX_REPORTED` failures."""

    imported: int = 0
    skipped: int = 0
    failed: int = 0
    messages: int = 0
    errors: list[dict[str, str | None]] = field(default_factory=list)

    def fail(self, file: str, failure: Failure) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(
                {
                    "file": file,
                    "record": failure.record,
                    "id": failure.id,
                    "field": failure.field,
                    "code": failure.code,
                    "detail": f"{file}: record {failure.record}"
                    + (f" (conversation {failure.id})" if failure.id else "")
                    + f": {failure.field}: {failure.detail}",
                }
            )

    def to_json(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "messages": self.messages,
            "errors": self.errors,
        }


class Importer:
    def __init__(
        self, router: StoreRouter, events: EventBus, limits: Limits, *, serving: bool = True
    ) -> None:
        """`serving`: this process serves the API. When not (the command line), a conversation whose
        store is this process's memory (`none`, or `ephemeral` without Redis) would vanish with the
        process, so it fails (`not_importable_here`) instead: import it through the API."""
        self.router = router
        self.events = events
        self.limits = limits
        self.serving = serving

    async def import_file(
        self,
        p: Principal,
        name: str,
        stream: IO[str],
        owner: Owner,
        summary: Summary,
        progress: Callable[[], None] | None = None,
    ) -> None:
        """Import every conversation of one file into `summary`; `progress()` is called after each
        conversation read. Up to `IN_FLIGHT` conversations are stored at once (their writes share
        commits where the store groups them); the file is read no further ahead than that."""
        if owner.user is not None:
            check_id(owner.user, "user")
        if owner.workspace is not None:
            check_id(owner.workspace, "workspace")
        seed = "\x00".join((p.tenant.id, p.user or owner.user or "", owner.workspace or ""))
        room = _Room(self.router, self.limits)
        pending: set[asyncio.Task[None]] = set()
        try:
            for item in read(stream, owner=seed, now=now_ms()):
                if isinstance(item, Failure):
                    summary.fail(name, item)
                else:
                    if len(pending) >= IN_FLIGHT:
                        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()
                    pending.add(asyncio.create_task(self._one(p, name, item, owner, summary, room)))
                if progress is not None:
                    progress()
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()

    async def _one(
        self, p: Principal, name: str, draft: Draft, owner: Owner, summary: Summary, room: _Room
    ) -> None:
        given = draft.conversation.id
        try:
            conversation, messages = self._owned(p, draft, owner)
            stored = await self._store(conversation, messages, draft.digest, room)
        except ChatkeepError as exc:
            field = str(exc.extra.get("field") or "conversation")
            summary.fail(name, Failure(draft.record, given, field, exc.detail, exc.code))
            return
        if stored:
            summary.imported += 1
            summary.messages += len(messages)
        else:
            summary.skipped += 1

    def _owned(self, p: Principal, draft: Draft, owner: Owner) -> tuple[Conversation, list[Message]]:
        """The draft in the caller's tenant, with its owner and id, checked as any write is."""
        c = draft.conversation
        user = p.user or owner.user or (None if draft.foreign else c.user)
        workspace = owner.workspace or (None if draft.foreign else c.workspace)
        if user is None:
            raise InvalidInput("say which user the conversations are for", code="user_required", field="user")
        if workspace is None:
            raise InvalidInput(
                "say which workspace to import into", code="workspace_required", field="workspace"
            )
        if not p.may_use_workspace(workspace):
            raise Forbidden(
                f"this token does not allow workspace {workspace!r}",
                code="workspace_forbidden",
                field="workspace",
            )
        cid = c.id
        if p.user is not None and not draft.digest and not RANDOM_ID_RE.fullmatch(cid):
            cid = derived_id(p.tenant.id, p.user, "id", cid)
        if draft.foreign:
            c = replace(c, title=c.title[:MAX_TITLE_CHARS])
        c = replace(c, tenant=p.tenant.id, id=cid, user=user, workspace=workspace)
        check_text(c.title, "title", max_chars=MAX_TITLE_CHARS)
        if check_tags(c.tags) != c.tags:
            raise InvalidInput("tags are repeated", code="invalid_tags", field="tags")
        limit = self.limits.max_messages_per_conversation
        if limit is not None and c.message_count > limit:
            raise errors.message_limit(c.id, c.message_count, limit)
        messages = [replace(m, conversation_id=cid) for m in draft.messages]
        for k, m in enumerate(messages):
            try:
                check_message(
                    NewMessage(m.id, m.role, m.content, m.parts, m.metadata), self.limits.max_message_bytes
                )
            except (InvalidInput, TooLarge) as exc:
                raise type(exc)(exc.detail, code=exc.code, field=f"messages[{k}]") from None
        return c, messages

    async def _store(self, c: Conversation, messages: list[Message], digest: bool, room: _Room) -> bool:
        store = self.router.for_mode(c.mode)
        if not self.serving and store.url.scheme == "memory":
            raise Conflict(
                f"{c.mode.value} conversations live in a server's memory here: "
                "import this one through the API",
                code="not_importable_here",
                field="mode",
            )
        taken = stored = False
        try:
            await store.get_conversation(c.tenant, c.id)
            if digest:
                return False  # this very list was imported before
        except NotFound:
            if await self.router.held_elsewhere(c.tenant, c.id, store):
                raise errors.import_conflict(c.id) from None
            await room.take(c.tenant, c.user)
            taken = True
        try:
            stored = await store.import_conversation(c, messages)
        finally:
            if taken and not stored:
                room.give_back(c.user)
        if stored:
            self.router.remember(c.tenant, c.id, store)
            await self.events.publish(conversation_event(EventType.CONVERSATION_CREATED, c))
        return stored


class _Room:
    """The count limits during one import: the counts are read once (per user) and then kept up
    to date by the import itself."""

    def __init__(self, router: StoreRouter, limits: Limits) -> None:
        self.router = router
        self.limits = limits
        self.counts: dict[str | None, int] = {}

    async def take(self, tenant: str, user: str) -> None:
        """Count one more conversation for `user`, or raise `QuotaExceeded` (counting nothing)."""
        checks = [
            (self.limits.max_conversations_per_tenant, None),
            (self.limits.max_conversations_per_user, user),
        ]
        for limit, key in checks:
            if limit is not None and key not in self.counts:
                self.counts[key] = sum([await s.count_conversations(tenant, key) for s in self.router.stores])
        for limit, key in checks:
            if limit is not None and self.counts[key] >= limit:
                raise errors.conversation_limit("user" if key else "tenant", self.counts[key], limit)
        for limit, key in checks:
            if limit is not None:
                self.counts[key] += 1

    def give_back(self, user: str) -> None:
        for key in (None, user):
            if key in self.counts:
                self.counts[key] -= 1
