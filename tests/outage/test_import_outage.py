"""An import during a Redis outage is refused (StoreUnavailable), whether the fallback journals
other writes or refuses them: an imported id cannot be checked against Redis meanwhile."""

from __future__ import annotations

import pytest

from chatkeep.errors import NotFound, StoreUnavailable
from chatkeep.models import Conversation, Message, Mode, Role, now_ms
from chatkeep.stores import open_ephemeral
from tests.services import free_port


@pytest.mark.parametrize("refuse", [False, True], ids=["fallback", "refuse"])
async def test_an_import_is_refused_while_redis_is_down(refuse: bool) -> None:
    store = open_ephemeral(f"redis://127.0.0.1:{free_port()}/0", refuse_on_outage=refuse)
    await store.connect()  # nothing listens there: the store starts degraded
    try:
        assert store.degraded
        at = now_ms()
        conversation = Conversation(
            "t",
            "c1",
            "w",
            "u",
            Mode.EPHEMERAL,
            created_at=at,
            last_activity_at=at,
            message_count=1,
            last_seq=1,
        )
        with pytest.raises(StoreUnavailable):
            await store.import_conversation(conversation, [Message("c1", "m1", 1, Role.USER, "hi", at)])
        with pytest.raises((NotFound, StoreUnavailable)):
            await store.get_conversation("t", "c1")
    finally:
        await store.close()
