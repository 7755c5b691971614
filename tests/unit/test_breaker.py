"""Circuit breaker: 5 consecutive Retryable failures open it, 60 s later one probe decides.

Time is a `SimClock` moved by the test; nothing sleeps. A hypothesis property checks every
refusal and transition against an independent state-machine model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.breaker import BreakerState, CircuitBreaker, CircuitOpen
from engine.clock import SimClock
from engine.errors import NotFound, Retryable

T0 = datetime(2013, 10, 4, 14, 0, tzinfo=UTC)
CLOSED, HALF_OPEN, OPEN = BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN
Transition = tuple[str, BreakerState, BreakerState, datetime]


class Log:
    """A `BreakerObserver` that keeps every transition."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    def on_state(self, provider: str, old: BreakerState, new: BreakerState, at: datetime) -> None:
        self.transitions.append((provider, old, new, at))


async def ok() -> str:
    return "answer"


async def down() -> str:
    raise Retryable("alpaca 503: service unavailable")


async def unknown() -> str:
    raise NotFound("unknown_symbol", "ZZZZ")


def call(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> Any:
    """The call's result, or the exception it raised."""
    try:
        return asyncio.run(breaker.call(fn))
    except Exception as exc:  # the outcome under test
        return exc


def make(clock: SimClock) -> tuple[CircuitBreaker, Log]:
    log = Log()
    return CircuitBreaker("alpaca", clock, observer=log), log


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(5):
        assert isinstance(call(breaker, down), Retryable)
    assert breaker.state is OPEN


def test_opens_exactly_at_the_fifth_consecutive_failure() -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    for n in range(1, 5):
        assert isinstance(call(breaker, down), Retryable)
        assert (breaker.state, breaker.failures) == (CLOSED, n)
    assert log.transitions == []
    assert isinstance(call(breaker, down), Retryable)
    assert breaker.state is OPEN
    assert log.transitions == [("alpaca", CLOSED, OPEN, T0)]
    called: list[bool] = []

    async def tracked() -> str:
        called.append(True)
        return "answer"

    refused = call(breaker, tracked)
    assert isinstance(refused, CircuitOpen) and isinstance(refused, Retryable)
    assert refused.retry_after == 60.0
    assert called == []


@pytest.mark.parametrize("between", [ok, unknown])
def test_a_success_or_a_rejected_answer_resets_the_run(
    between: Callable[[], Awaitable[str]],
) -> None:
    breaker, log = make(SimClock(T0))
    for _ in range(4):
        call(breaker, down)
    outcome = call(breaker, between)
    if between is unknown:
        assert isinstance(outcome, NotFound) and outcome.code == "unknown_symbol"
    assert breaker.failures == 0
    for _ in range(4):
        call(breaker, down)
    assert breaker.state is CLOSED and log.transitions == []


def test_rejected_answers_never_open_it() -> None:
    breaker, _ = make(SimClock(T0))
    for _ in range(50):
        assert isinstance(call(breaker, unknown), NotFound)
    assert breaker.state is CLOSED


def test_half_open_exactly_60_seconds_after_opening() -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    open_breaker(breaker)
    clock.advance_to(T0 + timedelta(seconds=60) - timedelta(microseconds=1))
    assert breaker.state is OPEN
    refused = call(breaker, ok)
    assert isinstance(refused, CircuitOpen)
    assert refused.retry_after == pytest.approx(1e-6)
    clock.advance_to(T0 + timedelta(seconds=60))
    assert breaker.state is HALF_OPEN
    assert log.transitions[-1] == ("alpaca", OPEN, HALF_OPEN, T0 + timedelta(seconds=60))


def test_half_open_lets_exactly_one_probe_through_and_its_success_closes() -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    open_breaker(breaker)
    clock.advance_to(T0 + timedelta(seconds=75))
    reached: list[str] = []

    async def scenario() -> list[Any]:
        release = asyncio.Event()

        async def probe() -> str:
            reached.append("probe")
            await release.wait()
            return "answer"

        async def other() -> str:
            reached.append("other")
            return "answer"

        probing = asyncio.create_task(breaker.call(probe))
        await asyncio.sleep(0)
        others = [
            await asyncio.gather(breaker.call(other), return_exceptions=True) for _ in range(3)
        ]
        release.set()
        return [await probing, *[o[0] for o in others]]

    results = asyncio.run(scenario())
    assert results[0] == "answer"
    assert all(isinstance(r, CircuitOpen) and r.retry_after == 0.0 for r in results[1:])
    assert reached == ["probe"]
    assert breaker.state is CLOSED
    assert call(breaker, ok) == "answer"
    at = T0 + timedelta(seconds=75)
    assert log.transitions[-2:] == [
        ("alpaca", OPEN, HALF_OPEN, T0 + timedelta(seconds=60)),
        ("alpaca", HALF_OPEN, CLOSED, at),
    ]


def test_a_failed_probe_reopens_for_another_60_seconds() -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    open_breaker(breaker)
    probe_at = T0 + timedelta(seconds=65)
    clock.advance_to(probe_at)
    assert isinstance(call(breaker, down), Retryable)
    assert breaker.state is OPEN
    assert log.transitions[-1] == ("alpaca", HALF_OPEN, OPEN, probe_at)
    clock.advance_to(probe_at + timedelta(seconds=59))
    refused = call(breaker, ok)
    assert isinstance(refused, CircuitOpen) and refused.retry_after == 1.0
    clock.advance_to(probe_at + timedelta(seconds=60))
    assert call(breaker, ok) == "answer"
    assert breaker.state is CLOSED


def test_a_rejected_probe_closes_the_vendor_answered() -> None:
    clock = SimClock(T0)
    breaker, _ = make(clock)
    open_breaker(breaker)
    clock.advance_to(T0 + timedelta(seconds=60))
    assert isinstance(call(breaker, unknown), NotFound)
    assert breaker.state is CLOSED


def test_a_cancelled_probe_frees_the_slot_without_a_verdict() -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    open_breaker(breaker)
    clock.advance_to(T0 + timedelta(seconds=60))

    async def scenario() -> None:
        probing = asyncio.create_task(breaker.call(asyncio.Event().wait))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        probing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probing

    asyncio.run(scenario())
    assert breaker.state is HALF_OPEN
    assert call(breaker, ok) == "answer"
    assert breaker.state is CLOSED
    assert [t[2] for t in log.transitions] == [OPEN, HALF_OPEN, CLOSED]


def test_a_late_outcome_of_a_call_admitted_before_opening_changes_nothing() -> None:
    clock = SimClock(T0)
    breaker, _ = make(clock)

    async def scenario() -> str:
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()
            return "answer"

        slow_call = asyncio.create_task(breaker.call(slow))
        await asyncio.sleep(0)
        for _ in range(5):
            with pytest.raises(Retryable):
                await breaker.call(down)
        release.set()
        return await slow_call

    assert asyncio.run(scenario()) == "answer"
    assert breaker.state is OPEN


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", SimClock(T0), failure_threshold=0)
    with pytest.raises(ValueError, match="reset_after_s"):
        CircuitBreaker("x", SimClock(T0), reset_after_s=0)


def test_gauge_levels() -> None:
    assert [s.level for s in (CLOSED, HALF_OPEN, OPEN)] == [0, 1, 2]


# --- property: sequential calls against an independent model ----------------------------

OUTCOMES = {"ok": ok, "retryable": down, "rejected": unknown}


def _model(steps: list[tuple[float, str]]) -> tuple[list[bool], list[tuple[str, str, float]]]:
    """Which calls are refused, and the transitions (old, new, seconds since T0)."""
    state, fails, opened, now = "closed", 0, 0.0, 0.0
    refused: list[bool] = []
    moves: list[tuple[str, str, float]] = []
    for dt, outcome in steps:
        now += dt
        if state == "open" and now >= opened + 60:
            moves.append(("open", "half_open", opened + 60))
            state = "half_open"
        refused.append(state == "open")
        if state == "open":
            continue
        if outcome == "retryable":
            fails = fails + 1 if state == "closed" else 5
            if fails >= 5:
                moves.append((state, "open", now))
                state, fails, opened = "open", 0, now
        else:
            fails = 0
            if state == "half_open":
                moves.append(("half_open", "closed", now))
                state = "closed"
    return refused, moves


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 30.0, 59.0, 60.0, 61.0, 120.0]),
            st.sampled_from(sorted(OUTCOMES)),
        ),
        max_size=40,
    )
)
def test_refusals_and_transitions_match_a_state_machine_model(
    steps: list[tuple[float, str]],
) -> None:
    clock = SimClock(T0)
    breaker, log = make(clock)
    refused: list[bool] = []
    elapsed = 0.0
    for dt, outcome in steps:
        elapsed += dt
        clock.advance_to(T0 + timedelta(seconds=elapsed))
        refused.append(isinstance(call(breaker, OUTCOMES[outcome]), CircuitOpen))
    expected_refused, expected_moves = _model(steps)
    assert refused == expected_refused
    assert [(str(o), str(n), (at - T0).total_seconds()) for _, o, n, at in log.transitions] == (
        expected_moves
    )
