"""A Python client of the chatkeep API: `Client` (blocking) and `AsyncClient` (asyncio, with the
WebSocket event stream). Both retry what is safe to retry and raise `ChatkeepHTTPError` for error
answers. The LangChain chat history is `chatkeep.client.langchain.ChatkeepChatMessageHistory`
(extra `chatkeep[langchain]`)."""

from chatkeep.client.aio import AsyncClient
from chatkeep.client.errors import (
    AuthenticationError,
    BadRequestError,
    ChatkeepClientError,
    ChatkeepConnectionError,
    ChatkeepHTTPError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    RateLimitedError,
    TooLargeError,
    UnavailableError,
)
from chatkeep.client.events import EventStream
from chatkeep.client.reply import AsyncReply, Reply
from chatkeep.client.retry import RetryPolicy
from chatkeep.client.sync import Client
from chatkeep.client.types import (
    AppendResult,
    BatchResult,
    CleanupResult,
    Conversation,
    ConversationPage,
    Delta,
    Event,
    Heartbeat,
    LoadedConversation,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    PersistenceSettings,
    Role,
    Usage,
)

__all__ = [
    "AppendResult",
    "AsyncClient",
    "AsyncReply",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "ChatkeepClientError",
    "ChatkeepConnectionError",
    "ChatkeepHTTPError",
    "CleanupResult",
    "Client",
    "ConflictError",
    "Conversation",
    "ConversationPage",
    "Delta",
    "Event",
    "EventStream",
    "ForbiddenError",
    "Heartbeat",
    "LoadedConversation",
    "Message",
    "MessagePage",
    "MessageStatus",
    "Mode",
    "NewMessage",
    "NotFoundError",
    "PersistenceSettings",
    "PreconditionFailedError",
    "RateLimitedError",
    "Reply",
    "RetryPolicy",
    "Role",
    "TooLargeError",
    "UnavailableError",
    "Usage",
]
