"""The import formats, read directly: the streaming JSON reader and the ChatGPT branch rules."""

from __future__ import annotations

import io

import orjson
import pytest

from chatkeep.errors import InvalidInput
from chatkeep.service.ids import RANDOM_ID_RE
from chatkeep.service.transfer.foreign import chatgpt_conversation, derived_id
from chatkeep.service.transfer.reader import Values
from chatkeep.service.transfer.records import RecordError, ms_of
from chatkeep.service.transfer.sources import Draft, Failure, read
from tests.chatgpt_export import BRANCH, branching_conversation, simple_conversation


class Trickle(io.StringIO):
    """A text stream that hands out at most 7 characters a read, and counts what it handed out."""

    def read(self, size: int | None = -1) -> str:
        return super().read(7)


def test_array_elements_come_one_at_a_time_whatever_the_chunks() -> None:
    elements = [{"n": n, "text": 'é✓ \\" ]' * n, "list": [1.5, None, True]} for n in range(30)]
    stream = Trickle(orjson.dumps(elements).decode())
    values = Values(stream)
    found = values.elements("")
    assert next(found) == elements[0]
    assert stream.tell() < 60  # only as far as the first element
    assert [*found] == elements[1:]
    values.end("file")


def test_json_lines_and_errors_name_where() -> None:
    values = Values(Trickle('{"a": 1}\n{"b": [2, 3]}\n  17\n'))
    assert [values.value("r0"), values.value("r1"), values.value("r2")] == [{"a": 1}, {"b": [2, 3]}, 17]
    assert values.peek() == ""
    with pytest.raises(InvalidInput, match=r"^\[1\]: not valid JSON"):
        list(Values(io.StringIO('[{"a": 1}, {"a": ')).elements(""))
    with pytest.raises(InvalidInput, match="the key 'a' appears twice"):
        Values(io.StringIO('{"a": 1, "a": 2}')).value("r0")
    with pytest.raises(InvalidInput, match="r0: a value larger than 100 characters"):
        Values(io.StringIO('{"a": "' + "x" * 500), max_value_chars=100).value("r0")


def test_the_current_branch_is_read_from_the_tree() -> None:
    conversation, messages = chatgpt_conversation(branching_conversation("c-1"))
    assert [(m.id, m.role.value, m.content, m.parts, m.created_at) for m in messages] == BRANCH
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
    assert (conversation.id, conversation.message_count, conversation.last_seq) == ("c-1", 5, 5)
    assert (conversation.created_at, conversation.last_activity_at) == (1_730_000_000_250, 1_730_000_009_250)


def test_a_broken_tree_names_its_field() -> None:
    cycle = branching_conversation("c-2")
    cycle["mapping"]["root"]["parent"] = "a2b"
    with pytest.raises(RecordError) as caught:
        chatgpt_conversation(cycle)
    assert caught.value.field == "mapping['a2b']"
    lost = simple_conversation("c-3")
    lost["current_node"] = "nowhere"
    with pytest.raises(RecordError) as caught:
        chatgpt_conversation(lost)
    assert caught.value.field == "current_node"


def test_a_file_is_read_a_conversation_at_a_time_and_a_break_ends_it() -> None:
    good = simple_conversation("c-4")
    text = orjson.dumps([good, {"id": "c-5"}, good]).decode()[:-10]
    items = list(read(io.StringIO(text), owner="t", now=0))
    assert [type(i) for i in items] == [Draft, Failure, Failure]
    assert (items[1].record, items[1].id, items[1].field) == ("1", "c-5", "mapping")  # type: ignore[union-attr]
    assert (items[2].record, items[2].field) == ("file", "json")  # type: ignore[union-attr]


def test_derived_ids_are_stable_random_looking_and_per_owner() -> None:
    first = derived_id("t", "alice", "id", "plain")
    assert first == derived_id("t", "alice", "id", "plain")
    assert RANDOM_ID_RE.fullmatch(first)
    assert first != derived_id("t", "bob", "id", "plain")


@pytest.mark.parametrize("text", ["2026-02-30T00:00:00.000Z", "2026-01-01T00:00:00Z", "yesterday", "1"])
def test_timestamps_must_be_what_export_writes(text: str) -> None:
    with pytest.raises(RecordError):
        ms_of(text, "created_at")
    assert ms_of("1970-01-01T00:00:01.234Z", "x") == 1234
