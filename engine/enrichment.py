"""One signal's `Enrichment`: the market data every agent reads, fetched once per signal.

`build_enrichment` asks the market-data port exactly twice, one call per bar series:

- **minute bars** from the open of the oldest session needed up to `as_of`. Enough
  sessions that the signal's timeframe has `history_bars` bars (EMA 200 plus room for
  the ATR percentile): the current session plus ceil(history_bars ÷ bars per session)
  earlier ones, at most `max_minute_sessions` in all (a daily or longer timeframe takes
  the current session only). Sessions come from the calendar, never guessed; with
  `first_session` (the oldest session the feed holds minute bars for, e.g. a replay's
  first bundled day) older sessions are not asked for, since a replay refuses a window
  that crosses a session it has no bars for. Extended-hours bars are dropped: agents
  see regular hours only.
- **daily bars** of the `daily_sessions` sessions before the current New York date
  (today's daily bar is never included, even after the close).

The signal's timeframe bars (`Enrichment.bars_tf`) are built here once
(`engine.resample`), so every agent reads the same bars. A port error (`Rejected`,
`Retryable`) propagates: a signal without its data gets no enrichment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol

from engine.agents.base import Enrichment
from engine.calendar import MarketCalendar
from engine.clock import ensure_utc
from engine.marketdata import Bar, Timeframe
from engine.positions import Position
from engine.resample import timeframe_bars, timeframe_minutes
from engine.risk import RiskLimits

REGULAR_SESSION_MINUTES = 390


class BarSource(Protocol):
    """The part of `engine.marketdata.MarketDataPort` an enrichment needs."""

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]: ...


@dataclass(frozen=True, slots=True)
class EnrichmentConfig:
    """How much history to fetch. Defaults give EMA 200 on timeframes up to 1 hour."""

    history_bars: int = 250
    max_minute_sessions: int = 30
    daily_sessions: int = 260

    def __post_init__(self) -> None:
        if min(self.history_bars, self.max_minute_sessions, self.daily_sessions) < 1:
            raise ValueError(f"every EnrichmentConfig field must be >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class Portfolio:
    """What the Risk agent checks an entry against (the shadow engine's book)."""

    open_positions: tuple[Position, ...] = ()
    limits: RiskLimits = field(default_factory=RiskLimits)
    capital_needed: float = 0.0
    realised_drawdown_pct: float = 0.0


async def build_enrichment(
    market: BarSource,
    calendar: MarketCalendar,
    *,
    signal_id: int,
    symbol: str,
    direction: Literal["long", "short"],
    timeframe: str,
    as_of: datetime,
    portfolio: Portfolio | None = None,
    first_session: date | None = None,
    config: EnrichmentConfig | None = None,
) -> Enrichment:
    """The enrichment of one signal as of `as_of` (module doc): two port calls, no more."""
    cfg = config or EnrichmentConfig()
    book = portfolio or Portfolio()
    utc = ensure_utc(as_of)
    session = current_session(calendar, utc)
    sessions = minute_sessions(calendar, session, timeframe, cfg, first_session)
    raw_1m = await market.bars(
        symbol, Timeframe.MINUTE, calendar.session_open(sessions[0]), utc, utc
    )
    today = calendar.session_date(utc)
    daily = daily_window(calendar, today, cfg.daily_sessions)
    bars_1d = tuple(await market.bars(symbol, Timeframe.DAY, daily[0], daily[1], utc))
    bars_1m = regular_hours(raw_1m, calendar)
    return Enrichment(
        signal_id=signal_id,
        symbol=symbol,
        direction=direction,
        timeframe=timeframe,
        as_of=utc,
        bars_1m=bars_1m,
        bars_1d=bars_1d,
        session_open=calendar.session_open(session),
        session_close=calendar.session_close(session),
        market_open=calendar.is_open(utc),
        open_positions=book.open_positions,
        limits=book.limits,
        capital_needed=book.capital_needed,
        realised_drawdown_pct=book.realised_drawdown_pct,
        bars_tf=timeframe_bars(timeframe, bars_1m, bars_1d, calendar, utc),
    )


def current_session(calendar: MarketCalendar, as_of: datetime) -> date:
    """The session of `as_of`'s New York date, or the latest one before it on a day the
    exchange is closed."""
    day = calendar.session_date(as_of)
    if calendar.is_session(day):
        return day
    return calendar.sessions_between(day - timedelta(days=14), day)[-1]


def minute_sessions(
    calendar: MarketCalendar,
    session: date,
    timeframe: str,
    config: EnrichmentConfig,
    first_session: date | None,
) -> list[date]:
    """The sessions whose minute bars the enrichment asks for, oldest first, ending with
    `session` (module doc). Never empty: at worst `session` alone."""
    minutes = timeframe_minutes(timeframe)
    wanted = 1
    if minutes is not None:
        per_session = math.ceil(REGULAR_SESSION_MINUTES / minutes)
        wanted = min(1 + math.ceil(config.history_bars / per_session), config.max_minute_sessions)
    span = timedelta(days=2 * wanted + 10)
    days = calendar.sessions_between(session - span, session)[-wanted:]
    kept = [d for d in days if first_session is None or d >= first_session]
    return kept or [session]


def daily_window(calendar: MarketCalendar, today: date, sessions: int) -> tuple[datetime, datetime]:
    """[start, end) of daily-bar stamps (a session date at 00:00 UTC) covering the
    `sessions` sessions before `today`."""
    span = timedelta(days=2 * sessions + 10)
    days = calendar.sessions_between(today - span, today - timedelta(days=1))[-sessions:]
    first = days[0] if days else today
    return _label(first), _label(today)


def regular_hours(bars: Sequence[Bar], calendar: MarketCalendar) -> tuple[Bar, ...]:
    """The bars that open inside their New York date's regular session [open, close)."""
    bounds: dict[date, tuple[datetime, datetime] | None] = {}
    kept: list[Bar] = []
    for bar in bars:
        day = calendar.session_date(bar.ts)
        if day not in bounds:
            is_session = calendar.is_session(day)
            bounds[day] = (
                (calendar.session_open(day), calendar.session_close(day)) if is_session else None
            )
        window = bounds[day]
        if window is not None and window[0] <= bar.ts < window[1]:
            kept.append(bar)
    return tuple(kept)


def _label(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
