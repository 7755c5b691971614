"""The kill switch's engine object (the Store builds it from the `kill_switch` table)."""

from __future__ import annotations

import pytest

from engine.errors import Fatal
from engine.kill_switch import KILL_SWITCH, KillSwitch


def test_the_switch_is_off_unless_its_row_says_on() -> None:
    assert KillSwitch.from_rows({}).on is False
    assert KillSwitch.from_rows({KILL_SWITCH: False}).on is False
    assert KillSwitch.from_rows({KILL_SWITCH: True}).on is True


def test_an_unknown_row_or_a_non_boolean_is_refused() -> None:
    with pytest.raises(Fatal):
        KillSwitch.from_rows({"kill_everything": True})
    with pytest.raises(TypeError):
        KillSwitch.from_rows({KILL_SWITCH: 1})  # type: ignore[dict-item]
