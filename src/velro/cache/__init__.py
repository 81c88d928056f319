"""The multi-tier cache: L1 in process memory, L2 in Redis, L3 in the database.

``value, tier = await cache.get_or_load(namespace, key, loader, ttl_s=None)``; ``tier`` is
``"L1"``, ``"L2"``, ``"L3"`` or ``"miss"`` (the loader ran). See ``velro.cache.tiered``.
"""

from velro.cache.l1 import L1Cache
from velro.cache.l2 import InvalidationListener, L2Cache
from velro.cache.l3 import L3Cache
from velro.cache.singleflight import Flight, SingleFlight
from velro.cache.tiered import TieredCache, Ttl, storage_key

__all__ = [
    "Flight",
    "InvalidationListener",
    "L1Cache",
    "L2Cache",
    "L3Cache",
    "SingleFlight",
    "TieredCache",
    "Ttl",
    "storage_key",
]
