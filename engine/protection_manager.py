"""Running protections and keeping their locks, as Freqtrade's ProtectionManager and PairLocks.

`refresh` is the bookkeeping: call it after every closed trade and on each tick. It drops
locks that have run out (a `protection_unlocked` event at the lock's `until`), evaluates
every protection (all global locks first, then per symbol, as Freqtrade's `global_stop`
before `stop_per_pair`) and keeps each new lock that no held lock already covers (a
`protection_locked` event at now). A held global lock covers everything; a symbol's lock
covers that symbol. Freqtrade skips a new lock only when a held one ends strictly later;
here an equal end also covers it, so refreshing twice never records a lock twice.

`check` answers "may I enter `symbol` now?" without changing anything: the held locks
plus a fresh evaluation, so it is right even where `refresh` was not called (a backtest
that only checks at entries). Events are returned as data; the caller stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.clock import ensure_utc
from engine.events import Event
from engine.positions import ClosedTrade
from engine.protections import Lock, Protection

LOCKED = "protection_locked"
UNLOCKED = "protection_unlocked"
STREAM = "protections"
GLOBAL = "*"

_Key = tuple[str, str | None]


def lock_event(kind: str, lock: Lock, at: datetime) -> Event:
    """A `protection_locked` / `protection_unlocked` event for `lock` at `at`."""
    scope = lock.symbol or GLOBAL
    return Event(
        kind=kind,
        stream=STREAM,
        event_time=at,
        entity_id=f"{lock.protection}:{scope}",
        payload={
            "protection": lock.protection,
            "symbol": scope,
            "until": lock.until.isoformat(),
            "locked_at": lock.locked_at.isoformat(),
            "reason": lock.reason,
        },
    )


def lock_from_payload(payload: Mapping[str, Any]) -> Lock:
    """The lock a `lock_event` payload describes (to rehydrate held locks from events)."""
    scope = str(payload["symbol"])
    return Lock(
        protection=str(payload["protection"]),
        symbol=None if scope == GLOBAL else scope,
        until=ensure_utc(datetime.fromisoformat(str(payload["until"]))),
        reason=str(payload["reason"]),
        locked_at=ensure_utc(datetime.fromisoformat(str(payload["locked_at"]))),
    )


class ProtectionManager:
    """Protections in evaluation order and the locks they hold (rehydrate with `locks`)."""

    def __init__(self, protections: Sequence[Protection], locks: Iterable[Lock] = ()) -> None:
        self.protections = tuple(protections)
        self._locks: dict[_Key, Lock] = {(lock.protection, lock.symbol): lock for lock in locks}

    @property
    def locks(self) -> tuple[Lock, ...]:
        """Held locks (some may have run out since the last `refresh`), by until."""
        return tuple(sorted(self._locks.values(), key=_order))

    def evaluate(
        self, trades: Sequence[ClosedTrade], now: datetime, symbols: Iterable[str] = ()
    ) -> list[Lock]:
        """Fresh locks still active at now: every global lock, then each symbol's locks."""
        utc = ensure_utc(now)
        found = [p.global_lock(trades, utc) for p in self.protections]
        for symbol in sorted({s.upper() for s in symbols}):
            found.extend(p.pair_lock(trades, utc, symbol) for p in self.protections)
        return [lock for lock in found if lock is not None and lock.active(utc)]

    def check(self, trades: Sequence[ClosedTrade], now: datetime, symbol: str) -> Lock | None:
        """The lock that blocks an entry on `symbol` at now (the longest-lasting), or None."""
        utc = ensure_utc(now)
        held = [lock for lock in self.locks if lock.active(utc) and lock.applies_to(symbol)]
        candidates = held + self.evaluate(trades, utc, [symbol])
        if not candidates:
            return None
        longest = max(lock.until for lock in candidates)
        return next(lock for lock in candidates if lock.until == longest)

    def refresh(
        self, trades: Sequence[ClosedTrade], now: datetime, symbols: Iterable[str] = ()
    ) -> list[Event]:
        """Expire run-out locks, record new ones; the unlock and lock events, in time order."""
        utc = ensure_utc(now)
        expired = [lock for lock in self.locks if not lock.active(utc)]
        events = [lock_event(UNLOCKED, lock, lock.until) for lock in expired]
        for lock in expired:
            del self._locks[(lock.protection, lock.symbol)]
        for lock in self.evaluate(trades, utc, symbols):
            if not self._covered(lock):
                self._locks[(lock.protection, lock.symbol)] = lock
                events.append(lock_event(LOCKED, lock, utc))
        return events

    def _covered(self, new: Lock) -> bool:
        return any(
            held.until >= new.until
            and (held.symbol is None or (new.symbol is not None and held.applies_to(new.symbol)))
            for held in self._locks.values()
        )


def _order(lock: Lock) -> tuple[datetime, str, str]:
    return lock.until, lock.protection, lock.symbol or GLOBAL
