"""Model clients. Importing this package imports no SDK (openai/azure are imported on first use)."""

from shared.ai.models.base import BaseModelClient, ModelEvent, ModelResult, ToolCall, Usage
from shared.ai.models.offline import OFFLINE_NOTICE, OfflineModel
from shared.ai.models.openai_chat import AzureOpenAIChat, OpenAIChat, translate_openai_error

__all__ = [
    "AzureOpenAIChat", "BaseModelClient", "ModelEvent", "ModelResult", "OFFLINE_NOTICE", "OfflineModel",
    "OpenAIChat", "ToolCall", "Usage", "translate_openai_error",
]
