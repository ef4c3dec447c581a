"""AI chat core: model clients, ModelFactory, StockAgent and ChatService.

Importing this package imports no SDK: openai / azure.identity load inside the adapters on first use.
"""

from shared.ai.agent import AgentEvent, AgentResult, StockAgent, bound_history
from shared.ai.chat_service import ChatService
from shared.ai.factory import PROVIDERS, ModelFactory
from shared.ai.grounding import find_ungrounded_numbers
from shared.ai.protocols import Budget, ChatModel, ChatStore, MarketData, UserData

__all__ = [
    "AgentEvent", "AgentResult", "Budget", "ChatModel", "ChatService", "ChatStore", "MarketData", "ModelFactory",
    "PROVIDERS", "StockAgent", "UserData", "bound_history", "find_ungrounded_numbers",
]
