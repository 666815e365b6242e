"""The LangChain chat history over a real chatkeep server, used as LangChain's documentation uses one:
`RunnableWithMessageHistory` around a chat model (LangChain's fake one), turn after turn; then a
fresh process reads the same history back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_to_dict,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from chatkeep.client import AsyncClient, Client, NewMessage
from chatkeep.client.langchain import ChatkeepChatMessageHistory
from tests.client.conftest import Server
from tests.conftest import unique

READ_IN_A_FRESH_PROCESS = """
import json, sys
from langchain_core.messages import messages_to_dict
from chatkeep.client.langchain import ChatkeepChatMessageHistory
url, token, cid = sys.argv[1:4]
history = ChatkeepChatMessageHistory.connect(url, token, cid)
print(json.dumps(messages_to_dict(history.messages)))
history.close()
"""


def read_elsewhere(server: Server, token: str, cid: str) -> list[dict[str, Any]]:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_A_FRESH_PROCESS, server.url, token, cid],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.fixture
async def histories(server: Server, token: str) -> AsyncIterator[Callable[..., ChatkeepChatMessageHistory]]:
    """`connect(cid, **options)`: a history with both clients, closed after the test."""
    opened: list[ChatkeepChatMessageHistory] = []

    def connect(cid: str, **options: Any) -> ChatkeepChatMessageHistory:
        opened.append(ChatkeepChatMessageHistory.connect(server.url, token, cid, **options))
        return opened[-1]

    yield connect
    for history in opened:
        await history.aclose()


def chain_with_history(histories: dict[str, ChatkeepChatMessageHistory], answers: list[str]) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a travel agent."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    model = FakeListChatModel(responses=answers)
    return RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: histories[session_id],
        input_messages_key="question",
        history_messages_key="history",
    )


# langchain-core 1.x marks RunnableWithMessageHistory deprecated (for LangGraph) but keeps it; it is still
# how LangChain's chat-history documentation uses a history, which is what this test is about.
@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
async def test_runnable_with_message_history_over_chatkeep(
    server: Server, token: str, histories: Callable[..., ChatkeepChatMessageHistory]
) -> None:
    cid = str(uuid.uuid4())
    history = histories(cid, workspace="lc")
    answers = [
        "Oslo is lovely in June.",
        "Take the train from Bergen.",
        "About seven hours.",
        "You're welcome!",
    ]
    chain = chain_with_history({"trip": history}, answers)
    config = {"configurable": {"session_id": "trip"}}

    first = chain.invoke({"question": "Where should I go?"}, config=config)
    second = chain.invoke({"question": "How do I get there?"}, config=config)
    third = await chain.ainvoke({"question": "How long does it take?"}, config=config)
    fourth = await chain.ainvoke({"question": "Thanks"}, config=config)
    assert [m.content for m in (first, second, third, fourth)] == answers

    read = history.messages
    assert [(m.type, m.content) for m in read] == [
        ("human", "Where should I go?"),
        ("ai", answers[0]),
        ("human", "How do I get there?"),
        ("ai", answers[1]),
        ("human", "How long does it take?"),
        ("ai", answers[2]),
        ("human", "Thanks"),
        ("ai", answers[3]),
    ]
    assert [m.id for m in read if m.type == "ai"] == [first.id, second.id, third.id, fourth.id]
    assert await history.aget_messages() == read

    elsewhere = read_elsewhere(server, token, cid)
    assert elsewhere == messages_to_dict(read)

    with Client(server.url, token) as c:
        stored = c.list_messages(cid).messages
    assert [(m.role.value, m.content) for m in stored] == [
        ("user" if m.type == "human" else "assistant", m.content) for m in read
    ]


def every_kind() -> list[BaseMessage]:
    return [
        SystemMessage("Be brief.", id="sys-1"),
        HumanMessage("Weather in Oslo?", id="h-1", additional_kwargs={"locale": "nb-NO"}, name="ada"),
        AIMessage(
            "",
            id="ai-1",
            tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "call-1"}],
            additional_kwargs={"seed": 7},
            response_metadata={"model_name": "fake"},
            usage_metadata={"input_tokens": 11, "output_tokens": 5, "total_tokens": 16},
        ),
        ToolMessage("12 degrees", tool_call_id="call-1", id="tool-1", status="success"),
        FunctionMessage("legacy result", name="weather"),
        ChatMessage("a note", role="developer"),
        HumanMessage([{"type": "text", "text": "and tomorrow?"}], id="h-2"),
        AIMessage(
            "Sunny.", id="ai-2", usage_metadata={"input_tokens": 30, "output_tokens": 2, "total_tokens": 32}
        ),
    ]


async def test_every_message_kind_round_trips_with_ids_and_kwargs(
    server: Server, token: str, histories: Callable[..., ChatkeepChatMessageHistory]
) -> None:
    cid = str(uuid.uuid4())
    sent = every_kind()
    history = histories(cid, workspace="lc")
    history.add_messages(sent[:4])
    await history.aadd_messages(sent[4:])
    assert messages_to_dict(history.messages) == messages_to_dict(sent)
    assert read_elsewhere(server, token, cid) == messages_to_dict(sent)

    async with AsyncClient(server.url, token) as c:
        stored = (await c.get_conversation(cid)).messages
    assert [m.role.value for m in stored] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "user",
        "assistant",
    ]
    assert (stored[2].usage.input_tokens, stored[2].usage.output_tokens) == (11, 5)
    assert stored[6].parts == [{"type": "text", "text": "and tomorrow?"}] and stored[6].content == ""


async def test_windows_bound_what_is_read(
    server: Server, token: str, histories: Callable[..., ChatkeepChatMessageHistory]
) -> None:
    cid = str(uuid.uuid4())
    full = histories(cid, workspace="lc")
    full.add_messages(every_kind())
    last_three = histories(cid, window=3)
    assert [m.id for m in last_three.messages] == [None, "h-2", "ai-2"]
    assert [m.id for m in await last_three.aget_messages()] == [None, "h-2", "ai-2"]
    # ai-2 is 2 tokens by its stored usage; the counter makes h-2 1 and the note 10: 13 in all
    budget = histories(cid, max_tokens=13, token_counter=lambda m: 10 if m.type == "chat" else 1)
    assert [m.id for m in budget.messages] == [None, "h-2", "ai-2"]
    assert [m.type for m in budget.messages] == ["chat", "human", "ai"]


async def test_clear_and_messages_written_by_other_clients(
    server: Server, token: str, histories: Callable[..., ChatkeepChatMessageHistory]
) -> None:
    async with AsyncClient(server.url, token) as c:
        cid = (await c.create_conversation(unique("w"))).id
        await c.append_batch(
            cid, [NewMessage("user", "from the browser", id="b-1"), NewMessage("assistant", "hi", id="b-2")]
        )
    history = ChatkeepChatMessageHistory(cid, async_client=AsyncClient(server.url, token), workspace="lc")
    blocking = ChatkeepChatMessageHistory(cid, client=Client(server.url, token))
    assert await history.aget_messages() == [
        HumanMessage("from the browser", id="b-1"),
        AIMessage("hi", id="b-2"),
    ]
    await history.aclear()
    assert await history.aget_messages() == []
    await history.aadd_messages([HumanMessage("again", id="h-9")])  # creates it again, same id
    assert await history.aget_messages() == [HumanMessage("again", id="h-9")]
    blocking.clear()
    assert blocking.messages == []
    await history.aclose()
    blocking.close()
