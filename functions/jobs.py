"""Queue-triggered functions (background jobs) and the admin listing of poison messages.

Annotations stay evaluated (no `from __future__ import annotations`): the worker reads the
`func.QueueMessage` annotation to bind the trigger.

Each queue has its function and a function on `<queue>-poison` that records what the host moved
there after maxDequeueCount failed attempts. `connection="AzureWebJobsStorage"`: the host's own
storage (a connection string locally, identity-based on Azure), where the producer enqueues too.
"""

from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.http import RequestContext, route
from shared.queues import MARKET_REFRESH, poison_queue
from shared.schemas.jobs import PoisonMessagePage, PoisonMessagePublic, PoisonQuery

if TYPE_CHECKING:
    from shared.services.jobs import InboundMessage

bp = func.Blueprint()
STORAGE = "AzureWebJobsStorage"


def _inbound(msg: func.QueueMessage, queue: str) -> "InboundMessage":
    from shared.services.jobs import InboundMessage

    return InboundMessage(queue=queue, id=msg.id or "", body=msg.get_body(), dequeue_count=msg.dequeue_count,
                          inserted_on=msg.insertion_time)


@bp.function_name("market_refresh_batch")
@bp.queue_trigger(arg_name="msg", queue_name=MARKET_REFRESH, connection=STORAGE)
def market_refresh_batch(msg: func.QueueMessage) -> None:
    """Refresh one batch of quotes queued by the market_refresh timer (raising retries this batch alone)."""
    from shared.runtime import get_core  # at first run, not at import: keeps cold start light

    services = get_core().services
    services.jobs.run(_inbound(msg, MARKET_REFRESH), services.market_refresh.refresh_batch)


@bp.function_name("market_refresh_poison")
@bp.queue_trigger(arg_name="msg", queue_name=poison_queue(MARKET_REFRESH), connection=STORAGE)
def market_refresh_poison(msg: func.QueueMessage) -> None:
    """Record a market-refresh batch that failed maxDequeueCount times."""
    from shared.runtime import get_core

    get_core().services.jobs.record_poison(_inbound(msg, poison_queue(MARKET_REFRESH)), source_queue=MARKET_REFRESH)


@route(bp, "v1/admin/queues/poison", query=PoisonQuery, auth="admin", response=PoisonMessagePage, tags=("admin",))
async def list_poison_messages(req: Any, ctx: RequestContext) -> PoisonMessagePage:
    """Jobs that failed maxDequeueCount times and were moved to their poison queue, newest first."""
    q = ctx.query
    items, next_cursor = await ctx.run(ctx.services.jobs.list_poison, queue=q.queue, limit=q.limit, cursor=q.cursor)
    return PoisonMessagePage(items=[PoisonMessagePublic.model_validate(vars(i)) for i in items], next_cursor=next_cursor)
