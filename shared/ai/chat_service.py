"""ChatService: a chat turn with conversations, persistence and the per-user token budget around StockAgent.

Guarantees:
- the budget is checked before the model is called (RateLimited raises before any event) and the turn's
  total_tokens are added afterwards, also when the stream failed or was cancelled (then: the usage of the model
  rounds completed so far, at least the estimate of question + partial answer);
- continuing a conversation loads its messages through store.get (owner-checked: NotFound for another user's);
- the first streamed event is `meta` and carries conversation_id;
- the user message and the assistant answer (with tool calls, sources, usage, model, provider, truncated) are persisted
  once the turn is done (exactly once: a failing store is logged and `done` is still sent); a failed or cancelled
  turn persists the partial answer with `error`/`cancelled` set;
- a failing `on_turn` hook is logged and never breaks the stream;
- closing the stream generator closes the agent's and hence the model's stream.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from shared.ai.agent import AgentEvent, StockAgent
from shared.ai.models.base import estimate_tokens
from shared.ai.protocols import Budget, ChatStore

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ChatService:
    def __init__(
        self,
        agent: StockAgent,
        store: ChatStore,
        budget: Budget,
        settings: Any,
        *,
        preference: Callable[[str], str | None] | None = None,
        on_turn: Callable[[dict], None] | None = None,
    ) -> None:
        """`preference(user_id)` returns the user's preferred model provider (or None);
        `on_turn(done_data)` is told about every completed turn (metrics)."""
        self.agent = agent
        self.store = store
        self.budget = budget
        self.settings = settings
        self._preference = preference
        self._on_turn = on_turn

    def chat(self, user_id: str, message: str, conversation_id: str | None = None,
             provider: str | None = None, temperature: float | None = None) -> dict:
        """One turn, collected. Raises the turn's ApiError if it failed (after persisting what there was)."""
        cid = None
        done: dict | None = None
        with closing(self.chat_stream(user_id, message, conversation_id, provider, temperature)) as events:
            for ev in events:
                if ev.event == "meta" and cid is None:
                    cid = ev.data.get("conversation_id")
                elif ev.event == "error":
                    assert ev.error is not None
                    raise ev.error
                elif ev.event == "done":
                    done = ev.data
        assert done is not None and cid is not None
        return {
            "conversation_id": cid,
            "message": message,
            **{k: done[k] for k in ("answer", "sources", "tool_calls", "usage", "model", "provider", "fallback_trace",
                                   "ungrounded_numbers", "truncated")},
        }

    def chat_stream(self, user_id: str, message: str, conversation_id: str | None = None,
                    provider: str | None = None, temperature: float | None = None) -> Iterator[AgentEvent]:
        """Checks budget, conversation ownership and provider now (errors raise here), then returns the event stream."""
        self.budget.check(user_id)
        history: list[dict] = []
        if conversation_id:
            conv = self.store.get(user_id, conversation_id)
            history = list(conv.get("messages") or [])
        pref = self._preference(user_id) if self._preference else None
        reported: dict = {}  # usage so far, as the agent reports it (read when the turn is cancelled)
        events = self.agent.process_query_streaming(message, user_id, history, provider, temperature, pref,
                                                    on_usage=reported.update)
        planned = self.agent.factory.resolve(provider, pref)
        if not conversation_id:
            conv = self.store.create(user_id, self._title(message))
            conversation_id = str(conv["id"])
        first = {"conversation_id": conversation_id, "provider": planned, "model": self.agent.factory.model_name(planned)}
        return self._stream(user_id, conversation_id, message, events, first, reported)

    @staticmethod
    def _title(message: str) -> str:
        t = " ".join(message.split())
        return t if len(t) <= 60 else t[:59] + "…"

    def _stream(self, user_id: str, cid: str, message: str, events: Iterator[AgentEvent],
                first_meta: dict, reported: dict | None = None) -> Iterator[AgentEvent]:
        user_msg = {"role": "user", "content": message, "created_at": _now()}
        partial: list[str] = []
        meta: dict = dict(first_meta)
        tool_calls: list[dict] = []
        usage: dict | None = None
        error: dict | None = None
        persisted = False
        try:
            # `meta` goes out before the model is asked anything, so clients see the turn start at once;
            # a later `meta` is sent only when the provider changes (fallback before the first token).
            yield AgentEvent("meta", {**first_meta, "fallback_trace": []})
            for ev in events:
                if ev.event == "meta":
                    if ev.data.get("provider") == meta.get("provider") and not ev.data.get("fallback_trace"):
                        continue
                    meta = dict(ev.data)
                    ev = AgentEvent("meta", {**ev.data, "conversation_id": cid})
                if ev.event == "delta":
                    partial.append(ev.data["text"])
                elif ev.event == "tool_call":
                    tool_calls.append(ev.data)
                elif ev.event == "usage":
                    usage = ev.data
                elif ev.event == "error":
                    error = ev.data
                    usage = ev.data.get("usage") or usage
                elif ev.event == "done":
                    d = ev.data
                    usage = d["usage"]
                    persisted = True  # one attempt only: a failed write must not become a second, "cancelled" copy
                    try:
                        self.store.append_messages(user_id, cid, [user_msg, {
                            "role": "assistant", "content": d["answer"], "tool_calls": d["tool_calls"], "sources": d["sources"],
                            "usage": d["usage"], "model": d["model"], "provider": d["provider"],
                            "fallback_trace": d["fallback_trace"], "ungrounded_numbers": d["ungrounded_numbers"],
                            "truncated": d["truncated"], "created_at": _now(),
                        }])
                    except Exception:  # the answer is complete: the client still gets it
                        logger.exception("persisting a chat turn failed")
                    if self._on_turn is not None:
                        try:
                            self._on_turn(d)
                        except Exception:  # metrics must not break the turn
                            logger.exception("on_turn hook failed")
                yield ev
        finally:
            events_close = getattr(events, "close", None)
            if events_close is not None:
                events_close()  # cancellation reaches the model stream
            if usage is None and reported:
                usage = dict(reported)  # cancelled: the rounds the agent completed
            if not persisted:
                assistant = {"role": "assistant", "content": "".join(partial), "tool_calls": tool_calls, "sources": [],
                             "usage": usage, "model": meta.get("model"), "provider": meta.get("provider"), "created_at": _now()}
                if error is not None:
                    assistant["error"] = error
                else:
                    assistant["cancelled"] = True
                try:
                    self.store.append_messages(user_id, cid, [user_msg, assistant])
                except Exception:  # the turn is already over; don't mask its outcome
                    logger.exception("persisting an incomplete chat turn failed")
            tokens = int((usage or {}).get("total_tokens") or 0)
            if not tokens or not persisted:  # failed/cancelled: the unfinished round's usage was never reported
                tokens = max(tokens, estimate_tokens(message) + estimate_tokens("".join(partial)))
            try:
                self.budget.add(user_id, tokens)
            except Exception:
                logger.exception("adding chat tokens to the budget failed")
