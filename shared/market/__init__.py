"""Market data: DataManager, providers (Yahoo, Alpha Vantage, offline), indicators.

Importing this package imports no SDK (yfinance/pandas/httpx load on first provider use).
"""

from shared.market.factory import build_data_manager
from shared.market.manager import DataManager
from shared.market.symbols import normalize_symbol

__all__ = ["DataManager", "build_data_manager", "normalize_symbol"]
