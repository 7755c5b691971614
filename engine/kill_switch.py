"""The kill switch: while it is on, no engine opens a new position.

Alerts are still received, recorded and decided; an entry is refused (`kill_switch`) by
Engine 1's SignalProcessor and by Engine 2's router, which both read the switch from the
Store at the moment they decide, never from the 5 s flag cache. Exits are never blocked:
exit alerts and the monitors' rule exits (stop loss, target, session end) go through,
because cutting risk must always work. A reversing entry is an entry: refused whole. An
admin turns it on and off through `PUT /kill-switch` (audited, as every admin setting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from engine.errors import Fatal

KILL_SWITCH: Final = "kill_switch"
REFUSED: Final = "kill_switch"  # the reason an entry is refused with


@dataclass(frozen=True, slots=True)
class KillSwitch:
    on: bool = False

    @classmethod
    def from_rows(cls, rows: Mapping[str, bool]) -> KillSwitch:
        """From the `kill_switch` table (name → enabled): one row, `kill_switch`."""
        unknown = sorted(set(rows) - {KILL_SWITCH})
        if unknown:
            raise Fatal(f"unknown kill switch rows {unknown}", hint=f"known: [{KILL_SWITCH!r}]")
        value = rows.get(KILL_SWITCH, False)
        if not isinstance(value, bool):
            raise TypeError("the kill switch is on (true) or off (false)")
        return cls(value)
