"""The MCP endpoint: the agent's tools, the caller's records and research prompts for any MCP client.

`http` (the pipeline side: JSON-RPC errors, the 401 challenge, RFC 9728 metadata) and `catalog` (resources and
prompts) import no MCP SDK; `server` and `transport` do and are imported on the first MCP request.
"""
