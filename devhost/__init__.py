"""Local host: serves function_app as an ASGI app without Azure Functions Core Tools (dev tooling only)."""
