"""Which queue service the app talks to, read from the settings the Functions host itself uses.

The host connects its queue triggers through `AzureWebJobsStorage`: a connection string when that
setting has a value (locally: Azurite), otherwise identity-based through `AzureWebJobsStorage__*`
(`queueServiceUri` or `accountName`, with `credential=managedidentity` and `clientId` on Azure).
The producer reads the same settings in the same order, so it enqueues where the triggers listen.
They are read from the environment, not through the config overlay: they belong to the host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

CONNECTION = "AzureWebJobsStorage"
QUEUE_SERVICE_URI = "AzureWebJobsStorage__queueServiceUri"
ACCOUNT_NAME = "AzureWebJobsStorage__accountName"
CREDENTIAL = "AzureWebJobsStorage__credential"
CLIENT_ID = "AzureWebJobsStorage__clientId"


def _connection_parts(connection_string: str) -> dict[str, str]:
    parts = (p.split("=", 1) for p in connection_string.strip().rstrip(";").split(";") if "=" in p)
    return {k.strip().lower(): v.strip() for k, v in parts}


@dataclass(frozen=True)
class QueueConnection:
    kind: Literal["connection_string", "identity", "in_process"]
    account_url: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    credential: str | None = None
    client_id: str | None = None

    @property
    def description(self) -> str:
        """Log-safe: names the endpoint and how we authenticate, never a key."""
        if self.kind == "in_process":
            return "in-process (memory, this process only)"
        if self.kind == "identity":
            how = f"managed identity {self.client_id}" if self.credential == "managedidentity" and self.client_id \
                else ("managed identity" if self.credential == "managedidentity" else "Entra ID (DefaultAzureCredential)")
            return f"azure storage {self.account_url} ({how})"
        parts = _connection_parts(self.connection_string or "")
        if parts.get("usedevelopmentstorage") == "true":
            return "azure storage emulator http://127.0.0.1:10001/devstoreaccount1 (UseDevelopmentStorage=true)"
        endpoint = parts.get("queueendpoint")
        if endpoint:
            split = urlsplit(endpoint)
            return f"azure storage {split.scheme}://{split.netloc}{split.path} (connection string)"
        return f"azure storage account {parts.get('accountname', '?')} (connection string)"


def resolve_queue_connection(environ: Mapping[str, str]) -> QueueConnection:
    """The connection the Functions host would use for its queue triggers, from `environ`."""
    connection_string = (environ.get(CONNECTION) or "").strip()
    if connection_string:
        return QueueConnection("connection_string", connection_string=connection_string)
    uri = (environ.get(QUEUE_SERVICE_URI) or "").strip()
    account = (environ.get(ACCOUNT_NAME) or "").strip()
    if uri or account:
        return QueueConnection(
            "identity",
            account_url=(uri or f"https://{account}.queue.core.windows.net").rstrip("/"),
            credential=(environ.get(CREDENTIAL) or "").strip().lower() or None,
            client_id=(environ.get(CLIENT_ID) or "").strip() or None,
        )
    return QueueConnection("in_process")


def queue_description(environ: Mapping[str, str] | None = None) -> str:
    """Log-safe description of the queue service `environ` (default: the process environment) names."""
    return resolve_queue_connection(os.environ if environ is None else environ).description
