"""Retry with back-off: exact waits on a SimClock, what is and is not retried."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import SimClock
from engine.errors import Fatal, Rejected, Retryable
from engine.retry import backoff_delay, retry

T = TypeVar("T")
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


async def _run_sim(clock: SimClock, awaitable: Awaitable[T]) -> T:
    """Run `awaitable`, moving the clock to each deadline it waits on."""
    task = asyncio.ensure_future(awaitable)
    while not task.done():
        for _ in range(5):
            await asyncio.sleep(0)
        due = clock.next_deadline()
        if due is None:
            break
        await clock.advance_to_async(due)
    assert task.done(), "waiting with no deadline on the clock"
    return task.result()


class Script:
    """A call that raises the scripted errors in turn, then returns "ok"; logs call times."""

    def __init__(self, clock: SimClock, errors: list[Exception]) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.calls: list[datetime] = []

    async def __call__(self) -> str:
        self.calls.append(self.clock.now())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _offsets(script: Script) -> list[float]:
    return [(t - T0).total_seconds() for t in script.calls]


def _play(errors: list[Exception], **kwargs: object) -> tuple[Script, str | BaseException]:
    clock = SimClock(T0)
    script = Script(clock, errors)

    async def go() -> str:
        return await retry(script, clock, **kwargs)  # type: ignore[arg-type]

    try:
        return script, asyncio.run(_run_sim(clock, go()))
    except Exception as exc:  # the outcome under test
        return script, exc


def test_back_off_doubles_from_one_second() -> None:
    script, result = _play([Retryable("a"), Retryable("b"), Retryable("c")], attempts=4)
    assert result == "ok"
    assert _offsets(script) == [0.0, 1.0, 3.0, 7.0]


def test_back_off_is_capped() -> None:
    errors: list[Exception] = [Retryable(str(i)) for i in range(5)]
    script, result = _play(errors, attempts=6, base_s=1.0, cap_s=3.0)
    assert result == "ok"
    assert _offsets(script) == [0.0, 1.0, 3.0, 6.0, 9.0, 12.0]


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not() -> None:
    errors: list[Exception] = [Retryable("429", retry_after=7.5), Retryable("429", retry_after=0.5)]
    script, result = _play(errors, attempts=3)
    assert result == "ok"
    assert _offsets(script) == [0.0, 7.5, 9.5]


@pytest.mark.parametrize(
    "error",
    [Rejected("bad_input", "x"), Fatal("broken"), ValueError("bug"), KeyError("k")],
    ids=["rejected", "fatal", "value_error", "key_error"],
)
def test_anything_but_retryable_propagates_at_once(error: Exception) -> None:
    script, result = _play([error], attempts=5)
    assert result is error
    assert _offsets(script) == [0.0]


def test_gives_up_after_the_attempts_and_re_raises_the_last_error() -> None:
    last = Retryable("third")
    script, result = _play([Retryable("first"), Retryable("second"), last], attempts=3)
    assert result is last
    assert _offsets(script) == [0.0, 1.0, 3.0]


def test_one_attempt_means_no_retry() -> None:
    error = Retryable("once")
    script, result = _play([error], attempts=1)
    assert result is error
    assert len(script.calls) == 1


def test_on_retry_sees_each_retry_before_its_wait() -> None:
    seen: list[tuple[int, str, float]] = []

    def hook(n: int, exc: Retryable, delay: float) -> None:
        seen.append((n, exc.message, delay))

    script, result = _play(
        [Retryable("x"), Retryable("y", retry_after=30.0)], attempts=3, on_retry=hook
    )
    assert result == "ok"
    assert seen == [(1, "x", 1.0), (2, "y", 30.0)]
    assert script.calls[-1] == T0 + timedelta(seconds=31)


def test_bad_arguments_are_refused() -> None:
    clock = SimClock(T0)
    call: Callable[[], Awaitable[str]] = Script(clock, [])
    with pytest.raises(ValueError):
        asyncio.run(retry(call, clock, attempts=0))
    with pytest.raises(ValueError):
        backoff_delay(0, 1.0, 10.0)


@given(
    n=st.integers(min_value=1, max_value=2_000),
    base=st.just(0.0) | st.floats(min_value=0.01, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=600.0),
    retry_after=st.none() | st.floats(min_value=0.0, max_value=1_000.0),
)
def test_backoff_delay_doubles_until_the_cap(
    n: int, base: float, cap: float, retry_after: float | None
) -> None:
    plain = backoff_delay(n, base, cap)
    assert 0.0 <= plain <= cap
    if n == 1:
        assert plain == min(cap, base)
    else:
        assert plain == min(cap, 2 * backoff_delay(n - 1, base, cap))
    with_hint = backoff_delay(n, base, cap, retry_after)
    assert with_hint == max(plain, retry_after or 0.0)
