"""ChatService: conversations and their messages, as the API, the CLI and the real-time hub use them."""

from __future__ import annotations

from chatkeep.service.conversations import ConversationService
from chatkeep.service.messages import MessageService


class ChatService(ConversationService, MessageService):
    """Conversations and messages as a caller (Principal) may see and change them: the
    conversation rules (service/conversations.py) and the message rules (service/messages.py)
    over the same stores, event bus, limits and lifetimes (service/access.py)."""
