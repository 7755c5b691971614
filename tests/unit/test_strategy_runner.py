"""The StrategyRunner's lifecycle (its ticks posting over HTTP are in tests/e2e/test_replay.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from actors.strategy_runner import StrategyRunner
from engine.errors import Rejected


def _runner(params: dict[str, object]) -> StrategyRunner:
    return StrategyRunner(
        None, "ema-cross", params, ["spy"], "http://127.0.0.1:9/webhook", "s", date(2013, 10, 4)
    )


def test_a_runner_starts_running_and_a_stopped_one_posts_nothing() -> None:
    runner = _runner({"fast": 5})
    assert asyncio.run(runner.state()) == "running"
    assert asyncio.run(runner.stop()) == "enabled"
    # stopped: the tick reads no bars and posts nothing (its market handle is None here)
    assert asyncio.run(runner.tick(datetime(2013, 10, 7, 16, 0, tzinfo=UTC))) == 0
    assert asyncio.run(runner.start()) == "running"


def test_bad_parameters_stop_the_runner_before_it_starts() -> None:
    with pytest.raises(Rejected) as caught:
        _runner({"fast": 30, "slow": 21})
    assert caught.value.code == "invalid_parameters"
