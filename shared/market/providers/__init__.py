"""Market-data provider adapters. Import the concrete modules directly; none is imported here."""
