"""A circuit breaker per market-data provider, on the injected clock.

- **Closed**: calls go through. `failure_threshold` (5) consecutive failures open it.
- **Open**: every call is refused with `CircuitOpen` for `reset_after_s` (60 s) of clock time.
- **Half-open**: after that, exactly one call (the probe) goes through; others are refused
  while it is in flight. The probe's success closes the breaker, its failure re-opens it for
  another `reset_after_s`.

What counts as a failure: only `Retryable`. The vendor adapters map timeouts, connection
errors, 408, 429 and 5xx to `Retryable`, so those trip the breaker. A `Rejected` (unknown
symbol, bad keys, a malformed request) is an *answer*: the vendor is up and said no, which
is the caller's problem (or configuration), not evidence that the vendor is down. It counts
as a success, as pybreaker counts its excluded exceptions: it resets the run of failures and
closes a half-open breaker. Any other exception (a bug, a cancelled call) gives no verdict;
it only frees the probe slot.

Only the outcome of a call admitted in the current state counts there: a call admitted
while closed that ends after the breaker opened, or a non-probe call that ends while
half-open, changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from engine.clock import Clock
from engine.errors import Rejected, Retryable

T = TypeVar("T")

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_AFTER_S = 60.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def level(self) -> int:
        """The state as a gauge value: 0 closed, 1 half-open, 2 open."""
        return _LEVELS[self]


_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class BreakerObserver(Protocol):
    """Told every state change (metrics, logs). Called synchronously; must not block."""

    def on_state(
        self, provider: str, old: BreakerState, new: BreakerState, at: datetime
    ) -> None: ...


class CircuitOpen(Retryable):
    """A call was refused without reaching the provider: its breaker is open (or probing).

    `retry_after` is the clock seconds until the breaker lets a probe through (0 while a
    probe is in flight).
    """


class CircuitBreaker:
    """One provider's breaker (see the module docstring). Time comes from `clock`."""

    def __init__(
        self,
        provider: str,
        clock: Clock,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_after_s: float = DEFAULT_RESET_AFTER_S,
        observer: BreakerObserver | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_after_s <= 0:
            raise ValueError("reset_after_s must be > 0")
        self.provider = provider
        self._clock = clock
        self._threshold = failure_threshold
        self._reset_after = timedelta(seconds=reset_after_s)
        self._observer = observer
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at: datetime | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose 60 s have passed turns half-open here."""
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            half_open_at = self._opened_at + self._reset_after
            if self._clock.now() >= half_open_at:
                self._move(BreakerState.HALF_OPEN, half_open_at)
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def check(self) -> None:
        """Raise `CircuitOpen` if a call made now would be refused; reserve nothing."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._probing):
            raise self._refusal(state)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` if the breaker admits it (else raise `CircuitOpen`); record the outcome."""
        self.check()
        state = self._state
        probe = state is BreakerState.HALF_OPEN
        self._probing = self._probing or probe
        try:
            result = await fn()
        except Retryable:
            self._failed(state, probe)
            raise
        except Rejected:
            self._succeeded(state, probe)
            raise
        except BaseException:
            if probe:
                self._probing = False
            raise
        self._succeeded(state, probe)
        return result

    def _succeeded(self, admitted_in: BreakerState, probe: bool) -> None:
        if probe:
            self._probing = False
            self._failures = 0
            self._move(BreakerState.CLOSED, self._clock.now())
        elif admitted_in is BreakerState.CLOSED and self._state is BreakerState.CLOSED:
            self._failures = 0

    def _failed(self, admitted_in: BreakerState, probe: bool) -> None:
        now = self._clock.now()
        if probe:
            self._probing = False
            self._open(now)
        elif admitted_in is BreakerState.CLOSED and self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open(now)

    def _open(self, now: datetime) -> None:
        self._opened_at = now
        self._failures = 0
        self._move(BreakerState.OPEN, now)

    def _move(self, new: BreakerState, at: datetime) -> None:
        old, self._state = self._state, new
        if old is not new and self._observer is not None:
            self._observer.on_state(self.provider, old, new, at)

    def _refusal(self, state: BreakerState) -> CircuitOpen:
        if state is BreakerState.HALF_OPEN:
            return CircuitOpen(f"{self.provider}: circuit half-open, probe in flight", 0.0)
        assert self._opened_at is not None
        wait = (self._opened_at + self._reset_after - self._clock.now()).total_seconds()
        return CircuitOpen(f"{self.provider}: circuit open, next probe in {wait:.0f} s", wait)
