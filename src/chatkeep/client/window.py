"""The latest messages that fit a token budget, read backwards a page at a time only as far as needed."""

from __future__ import annotations

import math
from collections.abc import Callable

from chatkeep.client.types import Message, MessagePage
from chatkeep.models import MessageStatus, Role

TokenCounter = Callable[[Message], int]
CHARS_PER_TOKEN = 4
MAX_PAGE = 200  # the server's largest page


def stored_tokens(message: Message) -> int | None:
    """The message's own size in tokens, when its usage says it: an assistant reply's output tokens;
    for other roles the input tokens recorded with it. None when no usage was stored."""
    usage = message.usage
    if message.role is Role.ASSISTANT and usage.output_tokens:
        return usage.output_tokens
    if message.role is not Role.ASSISTANT and usage.input_tokens:
        return usage.input_tokens
    return None


def estimate_tokens(message: Message) -> int:
    """About four characters a token (content and structured parts), at least one."""
    size = len(message.content) + (len(repr(message.parts)) if message.parts else 0)
    return max(1, math.ceil(size / CHARS_PER_TOKEN))


class Window:
    """Feed it pages, newest first; it says which page to read next (`before`), if any."""

    def __init__(
        self, max_tokens: int, count: int | None, counter: TokenCounter | None, page_size: int = 50
    ) -> None:
        if max_tokens < 0 or (count is not None and count < 0):
            raise ValueError("max_tokens and count must not be negative")
        self.max_tokens = max_tokens
        self.count = count
        self.counter = counter
        self.page_size = max(1, min(MAX_PAGE, page_size if count is None else min(page_size, count or 1)))
        self.tokens = 0
        self._newest_first: list[Message] = []

    def tokens_of(self, message: Message) -> int:
        stored = stored_tokens(message)
        if stored is not None:
            return stored
        return self.counter(message) if self.counter is not None else estimate_tokens(message)

    def take(self, page: MessagePage) -> int | None:
        """Take the page's messages, newest first, while they fit; the `before` seq of the next page
        to read, or None when the window is full or the conversation has no more."""
        for message in reversed(page.messages):
            if message.status is MessageStatus.TRIMMED:
                continue
            if self.count is not None and len(self._newest_first) >= self.count:
                return None
            size = self.tokens_of(message)
            if self.tokens + size > self.max_tokens:
                return None
            self._newest_first.append(message)
            self.tokens += size
        if self.count is not None and len(self._newest_first) >= self.count:
            return None
        if not page.has_more or not page.messages:
            return None
        return page.messages[0].seq

    @property
    def empty_request(self) -> bool:
        """Nothing can fit: no page need be read at all."""
        return self.max_tokens == 0 or self.count == 0

    def messages(self) -> list[Message]:
        """What was taken, in ascending seq order."""
        return self._newest_first[::-1]
