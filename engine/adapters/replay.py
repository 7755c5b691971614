"""Market data replayed from the bundled Parquet files, served as of the caller's clock.

`ReplayMarketData` implements `engine.marketdata.MarketDataPort` for one named scenario
(`engine.scenarios`). Every answer is computed from what is visible at `as_of`: a
minute bar from its close (`ts + 1 minute`), a daily bar from its session's close, a
recorded option quote bar from its close. docs/market-data.md describes the quote,
spread, volatility and option models; `engine.quote_models` implements them.

"unavailable" is always `Rejected("unavailable", detail)`: nothing visible yet, a
window the bundled data does not cover (e.g. daily history after 2021-03-31), or too
little history for a volatility estimate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from engine import listing
from engine.adapters.replay_store import (
    BarSeries,
    RecordedChains,
    from_us,
    load_daily_bars,
    load_minute_bars,
    load_option_quotes,
    to_us,
    unique_inverse,
)
from engine.adapters.symbol_file import load_symbol_table
from engine.calendar import NEW_YORK, MarketCalendar, xnys_calendar
from engine.clock import ensure_utc
from engine.errors import Fatal, NotFound, Rejected
from engine.marketdata import Bar, OptionContract, OptionQuote, Quote, Timeframe
from engine.pricing import implied_vol
from engine.quote_models import (
    DAILY_VOL_RETURNS,
    MINUTE_VOL_MAX_RETURNS,
    UNAVAILABLE,
    daily_realised_vol,
    equity_bid_ask,
    minute_realised_vol,
    option_bid_ask,
    option_value,
    year_fraction,
)
from engine.scenarios import DEFAULT_SCENARIO, Scenario, get_scenario
from engine.symbols import SymbolTable

MINUTE_FILE = "bars_1m.parquet"
DAILY_FILE = "bars_1d.parquet"
OPTION_QUOTES_FILE = "options_quotes_1m.parquet"
SYMBOL_PROPERTIES_FILE = "symbol_properties.csv"
DEFAULT_CHAIN_HORIZON_DAYS = 45
# Calendar days searched back for the previous session or the daily-vol sessions.
_PREVIOUS_SESSION_SEARCH = timedelta(days=14)
_DAILY_VOL_SEARCH = timedelta(days=60)


def bundled_data_dir() -> Path:
    """The repository's `data/` directory, which holds the bundled Parquet files."""
    return Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True, slots=True)
class VolEstimate:
    """A realised volatility: `method` "daily" or "minute", from `returns` log returns."""

    value: float
    method: Literal["daily", "minute"]
    returns: int


class ReplayMarketData:
    """`MarketDataPort` over the bundled bars and option quotes of one scenario.

    Loads each Parquet file once (only the scenario's symbols and sessions; daily bars
    up to the scenario's last session) and answers every call with numpy
    `searchsorted` on visible times. `symbols` defaults to `data/symbol_properties.csv`
    (or built-in defaults when that file is absent); `calendar` to `xnys_calendar()`.
    """

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        data_dir: Path | None = None,
        calendar: MarketCalendar | None = None,
        symbols: SymbolTable | None = None,
        chain_horizon_days: int = DEFAULT_CHAIN_HORIZON_DAYS,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else get_scenario(scenario)
        self.name = "replay"
        root = data_dir or bundled_data_dir()
        self._calendar = calendar or xnys_calendar()
        self._symbols = symbols or _default_symbols(root)
        self._chain_horizon_days = chain_horizon_days
        sc = self.scenario
        self._minute = load_minute_bars(
            _require(root / MINUTE_FILE), sc.symbols, sc.sessions, self._calendar
        )
        self._daily = load_daily_bars(
            _require(root / DAILY_FILE), sc.symbols, sc.end, self._calendar
        )
        self._chains = (
            load_option_quotes(_require(root / OPTION_QUOTES_FILE), sc.symbols, sc.sessions)
            if sc.recorded_chain
            else RecordedChains(listed={}, series={})
        )
        self._present: dict[tuple[str, Timeframe], npt.NDArray[np.int64]] = {}
        visible = [s.visible[s.rth] for s in self._minute.values()]
        self._timeline = (
            unique_inverse(np.concatenate(visible))[0] if visible else np.array([], np.int64)
        )

    def minute_series(self, symbol: str) -> BarSeries:
        """All loaded minute bars of `symbol` (a backtest's strategy reads them at once)."""
        series = self._minute.get(self._symbol(symbol))
        if series is None:
            raise Rejected(UNAVAILABLE, f"no {symbol} minute bars in this replay")
        return series

    def timeline_us(self) -> npt.NDArray[np.int64]:
        """`timeline` as epoch microseconds."""
        return np.asarray(self._timeline, dtype=np.int64)

    def timeline(self) -> list[datetime]:
        """The scenario's data events: regular-hours minute-bar close times, ascending."""
        return [from_us(int(us)) for us in self._timeline]

    # --- MarketDataPort -------------------------------------------------------------

    async def quote(self, symbol: str, as_of: datetime) -> Quote:
        """Last = close of the latest visible minute bar of the session of `as_of`.

        Before the first minute bar of a session, the latest visible minute or daily bar
        of the previous session; otherwise `Rejected("unavailable")`.
        """
        return self._quote(self._symbol(symbol), ensure_utc(as_of))

    async def bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, as_of: datetime
    ) -> list[Bar]:
        """Bars with start <= ts < end that are visible at `as_of`, oldest first.

        Raises `Rejected("unavailable")` when a session in the visible part of the
        window has no bars in the bundled data (so history is never silently partial).
        """
        sym = self._symbol(symbol)
        tf = Timeframe(timeframe)
        utc, lo_t, hi_t = ensure_utc(as_of), ensure_utc(start), ensure_utc(end)
        if lo_t >= hi_t:
            return []
        series = (self._minute if tf is Timeframe.MINUTE else self._daily).get(sym)
        self._check_coverage(sym=sym, tf=tf, series=series, start=lo_t, end=hi_t, as_of=utc)
        if series is None:
            return []
        lo, hi = series.window(to_us(lo_t), to_us(hi_t), to_us(utc))
        return [series.bar(i) for i in range(lo, hi)]

    async def option_chain(
        self, underlying: str, expiry: date | None, as_of: datetime
    ) -> list[OptionQuote]:
        """Quotes for the contracts listed at `as_of` (one expiry, or all in the horizon).

        The listed contracts are the recorded ones when quotes were recorded for the
        underlying that day, else the rule of `engine.listing` around spot.
        """
        pricing = _Pricing(self, self._symbol(underlying), ensure_utc(as_of))
        return [self._option_quote(c, pricing) for c in self._listed(pricing, expiry)]

    async def option_quote(self, contract: OptionContract, as_of: datetime) -> OptionQuote:
        """The recorded quote of `contract` if one is visible this session, else a model."""
        pricing = _Pricing(self, self._symbol(contract.underlying), ensure_utc(as_of))
        if contract.expiry < pricing.day:
            raise Rejected("expired", f"{contract.occ_symbol} expired on {contract.expiry}")
        return self._option_quote(replace(contract, underlying=pricing.underlying), pricing)

    def last_prices(
        self, symbol: str, as_of_us: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """`quote(symbol, t).last` for many times at once (epoch microseconds), for a
        backtest's exit scan: (prices, ok). `ok` is False where the answer is not the
        close of a minute bar of the same session (the scalar `quote` decides those)."""
        series = self._minute.get(self._symbol(symbol))
        times = np.asarray(as_of_us, dtype=np.int64)
        if series is None or times.size == 0:
            return np.full(times.size, np.nan), np.zeros(times.size, dtype=np.bool_)
        i = np.searchsorted(series.visible, times, side="right") - 1
        found = i >= 0
        j = np.where(found, i, 0)
        days = self._session_ordinals(times)
        ok = found & (series.day[j] == days)
        return np.where(ok, series.close[j], np.nan), ok

    def _session_ordinals(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The New York date (proleptic ordinal) of each time, as `session_date` gives it."""
        lo = from_us(int(times.min())).date() - timedelta(days=1)
        hi = from_us(int(times.max())).date() + timedelta(days=1)
        days = [lo + timedelta(days=k) for k in range((hi - lo).days + 1)]
        starts = np.array(
            [to_us(datetime.combine(d, time(0), tzinfo=NEW_YORK)) for d in days], np.int64
        )
        at = np.searchsorted(starts, times, side="right") - 1
        return lo.toordinal() + at.astype(np.int64)

    # --- further queries --------------------------------------------------------------

    def expiries(self, underlying: str, as_of: datetime) -> list[date]:
        """Expiries listed at `as_of` (recorded ones when a chain was recorded that day)."""
        pricing = _Pricing(self, self._symbol(underlying), ensure_utc(as_of))
        recorded = self._recorded(pricing)
        horizon = max(
            [self._chain_horizon_days, *((c.expiry - pricing.day).days for c in recorded)]
        )
        return listing.listed_expiries(
            pricing.underlying, pricing.day, horizon, calendar=self._calendar, recorded=recorded
        )

    def volatility(self, symbol: str, as_of: datetime) -> VolEstimate:
        """Daily realised vol if the daily history allows it, else minute realised vol."""
        sym, utc = self._symbol(symbol), ensure_utc(as_of)
        try:
            return VolEstimate(self._daily_vol(sym, utc), "daily", DAILY_VOL_RETURNS)
        except Rejected as daily_problem:
            if daily_problem.code != UNAVAILABLE:
                raise
            return self._minute_vol(sym, utc, str(daily_problem.detail))

    def daily_volatility(self, symbol: str, as_of: datetime) -> float:
        """Realised vol of the last 20 daily returns; `Rejected("unavailable")` if stale."""
        return self._daily_vol(self._symbol(symbol), ensure_utc(as_of))

    # --- internals --------------------------------------------------------------------

    def _symbol(self, symbol: str) -> str:
        sym = symbol.strip().upper()
        if sym not in self.scenario.symbols:
            raise NotFound(
                "unknown_symbol",
                f"{symbol!r} is not in scenario {self.scenario.name} "
                f"({', '.join(self.scenario.symbols)})",
            )
        return sym

    def _quote(self, sym: str, utc: datetime) -> Quote:
        us, day = to_us(utc), self._calendar.session_date(utc)
        minute, daily = self._minute.get(sym), self._daily.get(sym)
        latest_minute = minute.latest(us) if minute is not None else None
        if latest_minute is not None and latest_minute[2] == day.toordinal():
            return self._make_quote(sym, latest_minute[1], latest_minute[0])
        candidates = [latest_minute, daily.latest(us) if daily is not None else None]
        found = [c for c in candidates if c is not None]
        if found:
            seen, close, bar_day = max(found)
            if bar_day >= self._previous_session(day).toordinal():
                return self._make_quote(sym, close, seen)
        raise Rejected(
            UNAVAILABLE,
            f"{sym}: no bar of the {day} session or the one before is visible at {utc.isoformat()}",
        )

    def _make_quote(self, sym: str, last: float, visible_us: int) -> Quote:
        bid, ask = equity_bid_ask(self._symbols.get(sym), last)
        return Quote(symbol=sym, ts=from_us(visible_us), last=last, bid=bid, ask=ask)

    def _previous_session(self, day: date) -> date:
        found = self._calendar.sessions_between(day - _PREVIOUS_SESSION_SEARCH, day - timedelta(1))
        return found[-1] if found else day

    def _check_coverage(
        self,
        *,
        sym: str,
        tf: Timeframe,
        series: BarSeries | None,
        start: datetime,
        end: datetime,
        as_of: datetime,
    ) -> None:
        required = (
            self._minute_sessions(start, min(end, as_of))
            if tf is Timeframe.MINUTE
            else self._daily_sessions(start, end, as_of)
        )
        if not required:
            return
        wanted = np.array([d.toordinal() for d in required], dtype=np.int64)
        present = self._days_of(series)
        at = np.minimum(np.searchsorted(present, wanted), max(len(present) - 1, 0))
        missing = wanted[present[at] != wanted] if len(present) else wanted
        if len(missing):
            covered = (
                f"{date.fromordinal(int(present[0]))}..{date.fromordinal(int(present[-1]))}"
                if len(present)
                else "nothing"
            )
            raise Rejected(
                UNAVAILABLE,
                f"{sym} {tf.value}: no bars for {len(missing)} of {len(required)} sessions in "
                f"the window (first {date.fromordinal(int(missing[0]))}); the bundled data "
                f"covers {covered}",
            )

    def _days_of(self, series: BarSeries | None) -> npt.NDArray[np.int64]:
        """The distinct days (ordinals, ascending) a series has bars on; computed once."""
        if series is None:
            return np.array([], dtype=np.int64)
        key = (series.symbol, series.timeframe)
        days = self._present.get(key)
        if days is None:
            days = self._present[key] = unique_inverse(series.day)[0]
        return days

    def _minute_sessions(self, start: datetime, stop: datetime) -> list[date]:
        if stop <= start:
            return []
        cal = self._calendar
        days = cal.sessions_between(cal.session_date(start), cal.session_date(stop))
        return [d for d in days if cal.session_open(d) < stop and cal.session_close(d) > start]

    def _daily_sessions(self, start: datetime, end: datetime, as_of: datetime) -> list[date]:
        cal = self._calendar
        last = min(end, as_of).date()
        days = cal.sessions_between(start.date(), last) if start.date() <= last else []
        return [d for d in days if start <= _label(d) < end and cal.session_close(d) <= as_of]

    def _daily_vol(self, sym: str, utc: datetime) -> float:
        series = self._daily.get(sym)
        cal, day = self._calendar, self._calendar.session_date(utc)
        need = DAILY_VOL_RETURNS + 1
        closed = [
            d
            for d in cal.sessions_between(day - _DAILY_VOL_SEARCH, day)
            if cal.session_close(d) <= utc
        ][-need:]
        j = series.count_visible(to_us(utc)) if series is not None else 0
        have = [] if series is None else [int(x) for x in series.day[max(0, j - need) : j]]
        if series is None or have != [d.toordinal() for d in closed]:
            last = date.fromordinal(have[-1]).isoformat() if have else "none"
            raise Rejected(
                UNAVAILABLE,
                f"{sym}: daily volatility needs the daily bars of the {need} sessions up to "
                f"{closed[-1] if closed else day}; the latest visible daily bar is {last}",
            )
        return daily_realised_vol(series.close[j - need : j])

    def _minute_vol(self, sym: str, utc: datetime, daily_problem: str) -> VolEstimate:
        series = self._minute.get(sym)
        if series is None:
            raise Rejected(UNAVAILABLE, f"{sym}: no minute bars; {daily_problem}")
        i = series.count_visible(to_us(utc))
        rows = np.flatnonzero(series.rth[:i])[-(MINUTE_VOL_MAX_RETURNS + 1) :]
        try:
            value = minute_realised_vol(series.close[rows], series.day[rows])
        except Rejected as problem:
            raise Rejected(UNAVAILABLE, f"{sym}: {problem.detail}; {daily_problem}") from None
        same_session = int(np.sum(series.day[rows][1:] == series.day[rows][:-1]))
        return VolEstimate(value, "minute", same_session)

    def _recorded(self, pricing: _Pricing) -> tuple[OptionContract, ...]:
        key = (pricing.underlying, pricing.day.toordinal())
        return self._chains.listed.get(key, ())

    def _listed(self, pricing: _Pricing, expiry: date | None) -> list[OptionContract]:
        recorded = self._recorded(pricing)
        if expiry is not None:
            horizon = (expiry - pricing.day).days
        else:
            horizon = max(
                [self._chain_horizon_days, *((c.expiry - pricing.day).days for c in recorded)]
            )
        if horizon < 0:
            return []
        contracts = listing.listed_contracts(
            pricing.underlying,
            pricing.spot.last,
            pricing.day,
            horizon,
            properties=self._symbols.get(pricing.underlying),
            calendar=self._calendar,
            recorded=recorded,
        )
        return [c for c in contracts if expiry is None or c.expiry == expiry]

    def _option_quote(self, contract: OptionContract, pricing: _Pricing) -> OptionQuote:
        series = self._chains.series.get(contract)
        k = series.count_visible(pricing.us) if series is not None else 0
        if series is None or not k or int(series.day[k - 1]) != pricing.day.toordinal():
            return self._model_quote(contract, pricing)
        bid, ask = float(series.bid[k - 1]), float(series.ask[k - 1])
        spot, t_years = pricing.spot.last, pricing.t_years(contract.expiry)
        iv: float | None = None
        if t_years > 0.0:
            try:
                iv = implied_vol(
                    (bid + ask) / 2.0,
                    spot,
                    contract.strike,
                    t_years,
                    self.scenario.rate,
                    contract.right,
                )
            except Rejected:
                iv = None  # a mid outside the European no-arbitrage bounds has no BS vol
        return OptionQuote(
            contract=contract,
            ts=from_us(int(series.visible[k - 1])),
            bid=bid,
            ask=ask,
            implied_vol=iv,
            underlying_price=spot,
            source="recorded",
        )

    def _model_quote(self, contract: OptionContract, pricing: _Pricing) -> OptionQuote:
        vol = pricing.vol.value
        value = option_value(
            pricing.spot.last,
            contract.strike,
            pricing.t_years(contract.expiry),
            self.scenario.rate,
            vol,
            contract.right,
        )
        bid, ask = option_bid_ask(self._symbols.get(contract.underlying), value)
        return OptionQuote(
            contract=contract,
            ts=pricing.spot.ts,
            bid=bid,
            ask=ask,
            implied_vol=vol,
            underlying_price=pricing.spot.last,
            source="model",
        )

    def _expiry_close(self, expiry: date) -> datetime:
        if self._calendar.is_session(expiry):
            return self._calendar.session_close(expiry)
        return datetime.combine(expiry, time(16), tzinfo=NEW_YORK).astimezone(UTC)


class _Pricing:
    """What pricing one underlying at one `as_of` needs, each computed at most once."""

    def __init__(self, feed: ReplayMarketData, underlying: str, utc: datetime) -> None:
        self.feed = feed
        self.underlying = underlying
        self.utc = utc
        self.us = to_us(utc)
        self.day = feed._calendar.session_date(utc)
        self._t_years: dict[date, float] = {}

    @functools.cached_property
    def spot(self) -> Quote:
        return self.feed._quote(self.underlying, self.utc)

    @functools.cached_property
    def vol(self) -> VolEstimate:
        return self.feed.volatility(self.underlying, self.utc)

    def t_years(self, expiry: date) -> float:
        if expiry not in self._t_years:
            self._t_years[expiry] = year_fraction(self.utc, self.feed._expiry_close(expiry))
        return self._t_years[expiry]


def _label(day: date) -> datetime:
    """A daily bar's stamp: its session date at 00:00 UTC."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise Fatal(f"bundled market data file missing: {path}", hint="see data/README.md")
    return path


def _default_symbols(root: Path) -> SymbolTable:
    path = root / SYMBOL_PROPERTIES_FILE
    return load_symbol_table(path) if path.is_file() else SymbolTable([])
