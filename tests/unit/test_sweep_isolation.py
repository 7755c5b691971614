"""A sweep goes on past an item that fails (actors.pipeline.isolated)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from actors.pipeline import isolated


def test_a_failing_item_is_logged_and_the_next_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    done: list[int] = []

    async def item(n: int) -> None:
        if n == 2:
            raise RuntimeError("boom")
        done.append(n)

    async def sweep() -> None:
        for n in (1, 2, 3):
            await isolated(item(n), "signal", n)

    with caplog.at_level(logging.ERROR):
        asyncio.run(sweep())
    assert done == [1, 3]
    assert "signal 2 failed" in caplog.text
