"""A TTL cache for market-data answers, keyed so that an answer never comes from the future.

Keying rule (also in docs/market-data.md, "Cache"):

- **Key** = (method, every argument except `as_of`, the *as-of minute*: `as_of` floored to
  the whole UTC minute). `bars` keeps its exact `start` and `end` in the key.
- **Entry** = the answer, the `as_of` it was computed for, and the clock time it was stored.
- **Hit** only when the key matches, the entry's `as_of` is at or before the request's
  `as_of`, and the entry is younger than the TTL (60 s) by the `Clock`. Expiry is exact:
  an entry stored at `t` is served at `t + 59.999 s` and not at `t + 60 s`.

Why this is safe:

- *Nothing from the future.* An entry is only served to a request whose `as_of` is the same
  or later than the one it was computed for. A request for an earlier time misses; its
  answer then replaces the entry, since it can serve every later request of that minute.
- *Never across a bar boundary.* Everything that becomes visible does so at a whole minute
  (a minute bar at `ts + 1 min`, a daily bar at its session's close, a recorded option quote
  bar at `ts + 1 min`). Within one as-of minute the visible data is the same, so a cached
  quote or bar list equals what the provider answers for the later `as_of`, exactly. The
  next minute is another key, so a newly visible bar is never hidden by the cache.
- *Nothing stale beyond the live TTL.* The entry's `as_of` is less than 60 s before the
  request's (same minute), and the entry is less than 60 s old by the clock. The one thing
  that does move within a minute is a model's time to expiry: a modelled option quote may be
  priced up to 59 s earlier than the request's `as_of`, from the same visible data.

The cache keeps at most `max_entries`; entries leave in the order they were stored (which is
their expiry order, since every entry lives `ttl_s`). A TTL of 0 turns caching off.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from engine.clock import ensure_utc

V = TypeVar("V")

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What an answer depends on: the method, its other arguments, the as-of minute."""

    method: str
    args: tuple[Hashable, ...]
    minute: datetime


def as_of_minute(as_of: datetime) -> datetime:
    """`as_of` in UTC, floored to the whole minute."""
    return ensure_utc(as_of).replace(second=0, microsecond=0)


def cache_key(method: str, args: tuple[Hashable, ...], as_of: datetime) -> CacheKey:
    """The key of `method(*args, as_of)`."""
    return CacheKey(method, args, as_of_minute(as_of))


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    as_of: datetime
    expires_at: datetime


class TtlCache(Generic[V]):
    """Answers by `CacheKey`, each served for `ttl_s` clock seconds to requests not before it."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_entries: int = DEFAULT_MAX_ENTRIES):
        if ttl_s < 0:
            raise ValueError("ttl_s must be >= 0")
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._ttl = timedelta(seconds=ttl_s)
        self._max = max_entries
        self._entries: dict[CacheKey, _Entry[V]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0.0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def get(self, key: CacheKey, as_of: datetime, now: datetime) -> V | None:
        """The cached answer for a request at `as_of`, or None (counted as a miss)."""
        entry = self._entries.get(key)
        if entry is not None and now >= entry.expires_at:
            del self._entries[key]
            entry = None
        if entry is None or entry.as_of > ensure_utc(as_of):
            self.misses += 1
            return None
        self.hits += 1
        return entry.value

    def put(self, key: CacheKey, value: V, as_of: datetime, now: datetime) -> None:
        """Store the answer computed for `as_of`, unless a live entry already serves it."""
        if not self._ttl:
            return
        as_of = ensure_utc(as_of)
        self._drop_expired(now)
        current = self._entries.get(key)
        if current is not None and current.as_of <= as_of and now < current.expires_at:
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(value, as_of, now + self._ttl)

    def _drop_expired(self, now: datetime) -> None:
        while self._entries:
            first = next(iter(self._entries))
            if now < self._entries[first].expires_at:
                return
            del self._entries[first]
