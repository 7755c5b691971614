"""Named replay scenarios over the bundled market data (data/README.md lists the files).

A scenario names the symbols and sessions a replay serves, whether a recorded option
chain exists for them, and the risk-free rate used to model option prices. The rate is
the value of Lean's `interest-rate.csv` (the Fed primary credit rate) on that date, the
series Lean itself uses for its option models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.errors import NotFound


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one replay serves. `sessions` are New York trading dates, ascending."""

    name: str
    symbols: tuple[str, ...]
    sessions: tuple[date, ...]
    recorded_chain: bool
    rate: float
    description: str

    def __post_init__(self) -> None:
        if not self.sessions or list(self.sessions) != sorted(set(self.sessions)):
            raise ValueError(f"scenario {self.name}: sessions must be ascending and distinct")
        if not self.symbols:
            raise ValueError(f"scenario {self.name}: no symbols")

    @property
    def start(self) -> date:
        """The first session."""
        return self.sessions[0]

    @property
    def end(self) -> date:
        """The last session."""
        return self.sessions[-1]


DEFAULT_SCENARIO = "spy-2013-10"

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="spy-2013-10",
            symbols=("SPY", "AIG", "BAC", "IBM"),
            sessions=tuple(date(2013, 10, d) for d in (4, 7, 8, 9, 10, 11)),
            recorded_chain=False,
            rate=0.0075,
            description=(
                "SPY (with AIG, BAC, IBM) minute bars for six sessions, daily history "
                "since 1998; options modelled"
            ),
        ),
        Scenario(
            name="goog-2015-12-24",
            symbols=("GOOG",),
            sessions=(date(2015, 12, 24),),
            recorded_chain=True,
            rate=0.01,
            description=(
                "GOOG minute bars on a half-day session (close 13:00 ET) with its recorded "
                "option chain (2,192 contracts)"
            ),
        ),
        Scenario(
            name="spy-2023-08-03",
            symbols=("SPY",),
            sessions=(date(2023, 8, 3),),
            recorded_chain=True,
            rate=0.055,
            description=(
                "SPY minute bars with 4 recorded contracts (2023-09-01, 430/470); no daily "
                "history after 2021-03-31"
            ),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`; `NotFound("unknown_scenario")` lists the known ones."""
    found = SCENARIOS.get(name)
    if found is None:
        raise NotFound("unknown_scenario", f"{name!r}; known: {', '.join(sorted(SCENARIOS))}")
    return found
