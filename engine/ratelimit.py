"""Per-key request limits for the front door: one token bucket per secret id or strategy.

A `BucketPolicy` allows bursts of `burst` requests and `rate_per_s` requests a second on
average. `KeyedRateLimiter` keeps one bucket per key (a secret's id or a strategy name,
never a source address, and never the secret itself) and is pure: every call takes `now`.

The bucket is kept in its GCRA form (the generic cell rate algorithm, equivalent to a
token bucket): per key, one time, the *theoretical arrival time* `tat`. A request at `now`
is allowed when `max(tat, now) - now <= (burst - 1) · interval`, and then moves `tat` to
`max(tat, now) + interval`; a refused request changes nothing and learns how long to wait.
`interval` is `1 / rate_per_s` rounded *up* to a microsecond, so the guarantee holds
exactly in integer time: in any window of length T, whatever the order the requests come
in, at most `burst + rate_per_s · T` are allowed per key.

Memory is bounded by `max_keys`. A key whose `tat` has passed holds a full bucket and is
dropped without changing any answer. When the table is still full, the least recently
used keys are dropped; a limiter-wide floor (the latest `tat` ever dropped) stands in for
every dropped key, so dropping never lets a key exceed its limit. Under a flood of
distinct keys, the cost is that a new key may wait up to one interval for its first
request.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from engine.clock import ensure_utc
from engine.errors import RateLimited

_MICROS_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """Bursts of up to `burst` requests, `rate_per_s` a second on average."""

    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise ValueError(f"rate_per_s must be a finite number > 0, got {self.rate_per_s!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {self.burst!r}")

    @property
    def interval(self) -> timedelta:
        """Time one request's token takes to come back: 1 / rate, rounded up to 1 µs."""
        micros = math.ceil(Fraction(_MICROS_PER_S) / Fraction(self.rate_per_s))
        return timedelta(microseconds=max(1, micros))

    @property
    def tolerance(self) -> timedelta:
        """How far ahead of `now` a key's `tat` may be for a request to pass."""
        return (self.burst - 1) * self.interval


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request.

    `retry_after_s` is 0 when allowed, else the seconds after which the same request
    would pass (if nothing else is allowed for that key meanwhile). `remaining` is how
    many more requests would pass at once, now.
    """

    allowed: bool
    retry_after_s: float
    remaining: int

    @property
    def retry_after_header(self) -> str:
        """`retry_after_s` as whole seconds, rounded up, for an HTTP Retry-After header."""
        return str(math.ceil(self.retry_after_s))


class KeyedRateLimiter:
    """A token bucket per key, driven by the caller's `now` (see the module docstring)."""

    def __init__(self, policy: BucketPolicy, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._policy = policy
        self._interval = policy.interval
        self._tolerance = policy.tolerance
        self._max_keys = max_keys
        self._tat: OrderedDict[str, datetime] = OrderedDict()
        self._floor: datetime | None = None

    @property
    def policy(self) -> BucketPolicy:
        return self._policy

    def __len__(self) -> int:
        """How many keys hold state (the others have full buckets)."""
        return len(self._tat)

    def allow(self, key: str, now: datetime) -> Decision:
        """Decide one request for `key` at `now`; an allowed request takes a token."""
        now = ensure_utc(now)
        tat = self._tat.get(key, self._floor)
        start = now if tat is None or tat < now else tat
        ahead = start - now
        if ahead > self._tolerance:
            if key in self._tat:
                self._tat.move_to_end(key)
            return Decision(False, (ahead - self._tolerance).total_seconds(), 0)
        new_tat = start + self._interval
        self._store(key, new_tat, now)
        remaining = (self._policy.burst * self._interval - (new_tat - now)) // self._interval
        return Decision(True, 0.0, remaining)

    def check(self, key: str, now: datetime) -> Decision:
        """`allow`, raising `RateLimited` (code `rate_limited`, with `retry_after`) when refused."""
        decision = self.allow(key, now)
        if not decision.allowed:
            raise RateLimited(
                "rate_limited",
                {"rate_per_s": self._policy.rate_per_s, "burst": self._policy.burst},
                retry_after=decision.retry_after_s,
            )
        return decision

    def _store(self, key: str, tat: datetime, now: datetime) -> None:
        if key not in self._tat and len(self._tat) >= self._max_keys:
            self._make_room(now)
        self._tat[key] = tat
        self._tat.move_to_end(key)

    def _make_room(self, now: datetime) -> None:
        """Drop full buckets; if still full, least recently used keys down to 90 %."""
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            self._drop(key)
        target = self._max_keys - max(1, self._max_keys // 10)
        while len(self._tat) > target:
            self._drop(next(iter(self._tat)))

    def _drop(self, key: str) -> None:
        tat = self._tat.pop(key)
        if self._floor is None or tat > self._floor:
            self._floor = tat
