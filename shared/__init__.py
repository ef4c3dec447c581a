"""StockAgent core: importable without side effects (no clients, no heavy SDKs)."""
