"""Long conversations through HTTP: messages stored one per document (the conversation record does not
grow), history read a page at a time, the model given the last N messages, a cap on a conversation's
length answered with 422 `conversation-full`, and conversations stored the old way still readable."""

from __future__ import annotations

import bson

from tests.api.chat.chat_support import GatedModel, serve_core
from tests.conftest import ADMIN_KEY

ADMIN = {"X-API-Key": ADMIN_KEY}


def _turn(client, message, cid=None, headers=ADMIN):
    body = {"message": message, **({"conversation_id": cid} if cid else {})}
    r = client.post("/api/v1/chat", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["conversation_id"]


def _open_model() -> GatedModel:
    model = GatedModel()
    model.gate.set()
    return model


def test_history_pages_in_order_and_the_record_does_not_grow(client, make_user, core):
    _, headers = make_user()
    cid = _turn(client, "q0", headers=headers)
    record = core.database.db["chats"].find_one({"title": "q0"})
    size_after_one = len(bson.encode(record))
    for i in range(1, 6):
        _turn(client, f"q{i}", cid, headers)
    record = core.database.db["chats"].find_one({"_id": record["_id"]})
    assert "messages" not in record and record["message_count"] == 12
    assert len(bson.encode(record)) == size_after_one  # a turn's write does not grow with the conversation
    assert core.database.db["chat_messages"].count_documents({"chat_id": cid}) == 12

    seen, cursor = [], None
    while True:
        r = client.get(f"/api/v1/chats/{cid}/messages", params={"limit": 5, **({"cursor": cursor} if cursor else {})},
                       headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 5
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [m["seq"] for m in seen] == list(range(1, 13))
    assert [m["content"] for m in seen if m["role"] == "user"] == [f"q{i}" for i in range(6)]
    assert all("owner_id" not in m and "chat_id" not in m for m in seen)

    detail = client.get(f"/api/v1/chats/{cid}", headers=headers).json()
    assert detail["message_count"] == 12 and [m["seq"] for m in detail["messages"]] == list(range(1, 13))
    listed = client.get("/api/v1/chats", headers=headers).json()["items"]
    assert next(c for c in listed if c["id"] == cid)["message_count"] == 12


def test_another_users_history_is_404(client, make_user):
    _, alice = make_user()
    _, bob = make_user()
    cid = _turn(client, "mine", headers=alice)
    assert client.get(f"/api/v1/chats/{cid}/messages", headers=bob).status_code == 404
    assert client.get("/api/v1/chats/not-an-id/messages", headers=alice).status_code == 404
    r = client.get(f"/api/v1/chats/{cid}/messages", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=alice)
    assert r.status_code == 422


def test_the_model_sees_the_last_n_messages(tmp_path):
    model = _open_model()
    with serve_core(tmp_path, model, chat={"context_messages": 3}) as (client, _):
        cid = _turn(client, "first question")
        for i in range(3):
            _turn(client, f"question {i}", cid)
        prompt = model.prompts[-1]
    history = [m["content"] for m in prompt if m["role"] in ("user", "assistant")]
    # the last three stored messages (an answer, a question, an answer), then the new question
    assert history == ["ok", "question 1", "ok", "question 2"]


def test_a_full_conversation_is_422_and_a_new_one_works(tmp_path):
    model = _open_model()
    with serve_core(tmp_path, model, chat={"max_conversation_messages": 4}) as (client, core):
        cid = _turn(client, "one")
        _turn(client, "two", cid)
        asked = model.requests
        for path in ("/api/v1/chat", "/api/v1/chat/stream"):
            r = client.post(path, json={"message": "three", "conversation_id": cid}, headers=ADMIN)
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["type"] == "/problems/conversation-full"
            assert "start a new conversation" in body["detail"] and "4 messages" in body["detail"]
            assert "conversation_id" in body["errors"]
        assert model.requests == asked  # refused before the model was asked
        assert client.get(f"/api/v1/chats/{cid}", headers=ADMIN).json()["message_count"] == 4
        assert _turn(client, "three") != cid
        assert core.stream_slots.in_use() == 0


def test_a_conversation_stored_the_old_way_is_read_and_continued(client, make_user, core):
    """Conversations stored before chat_messages embed their messages: they read and continue as before."""
    from datetime import UTC, datetime

    user, headers = make_user()
    now = datetime.now(UTC)
    old = [{"role": "user", "content": "old question", "created_at": now.isoformat()},
           {"role": "assistant", "content": "old answer", "sources": [], "created_at": now.isoformat()}]
    cid = str(core.database.db["chats"].insert_one({"owner_id": user["id"], "title": "old", "messages": old,
                                                    "created_at": now, "updated_at": now, "version": 2}).inserted_id)
    detail = client.get(f"/api/v1/chats/{cid}", headers=headers).json()
    assert [m["content"] for m in detail["messages"]] == ["old question", "old answer"]
    _turn(client, "Quote AAPL", cid, headers)
    detail = client.get(f"/api/v1/chats/{cid}", headers=headers).json()
    assert [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4] and detail["message_count"] == 4
    assert detail["messages"][0]["content"] == "old question" and detail["messages"][2]["content"] == "Quote AAPL"
