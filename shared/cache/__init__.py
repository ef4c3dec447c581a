"""Cache layer: CacheBackend (Redis with in-memory failover), SingleFlight, RateLimiter.

Importing this package imports neither redis nor limits; they load when first needed.
"""

from shared.cache.backend import CacheBackend
from shared.cache.ratelimit import RateLimiter, RateLimitResult
from shared.cache.singleflight import SingleFlight

__all__ = ["CacheBackend", "RateLimitResult", "RateLimiter", "SingleFlight"]
