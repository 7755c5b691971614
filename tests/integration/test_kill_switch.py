"""The kill switch on the real app: only admins turn it (audited); while it is on, alerts
are recorded and decided but no entry opens, and exits (an exit alert, a monitor's rule
exit) still close positions. Engine 2's shadow executor checks it too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.tokens import Role, issue_token
from tests.integration.conftest import RAY_TIMEOUT_S, WEBHOOK_SECRET, RaySession
from tests.integration.test_monitor import monitor, position_of, rows, tick, wait_for

__all__ = ["monitor"]  # the fixture, used by name below

SYMBOL = "IBM"
EXIT_SYMBOL = "AIG"
STRATEGY = "itest-kill"


def auth(session: RaySession, role: Role) -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 'ops', role, datetime.now(UTC))}"}


@pytest.fixture
def switch(api: httpx.Client, ray_session: RaySession) -> Iterator[Any]:
    """Turns the switch with an admin token; always off again afterwards."""
    admin = auth(ray_session, Role.ADMIN)

    def turn(on: bool) -> dict[str, Any]:
        response = api.put("/kill-switch", json={"on": on}, headers=admin)
        assert response.status_code == 200, response.text
        return dict(response.json())

    yield turn
    turn(False)


def post(api: httpx.Client, minute: int, symbol: str = SYMBOL, **fields: Any) -> int:
    bar = datetime(2013, 10, 7, 14, 30, tzinfo=UTC) + timedelta(minutes=minute)
    body = {
        "symbol": symbol,
        "timeframe": "1",
        "timestamp": bar.isoformat(),
        "strategy": STRATEGY,
        "secret": WEBHOOK_SECRET,
        **fields,
    }
    response = api.post("/webhook", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["signal_id"])


def decision(signal_id: int) -> dict[str, Any]:
    found = wait_for(
        f"the decision on signal {signal_id}",
        lambda: rows("SELECT * FROM refactored_signals WHERE signal_id = ?", [signal_id]),
    )
    return dict(found[0])


def test_only_an_admin_turns_the_switch_and_every_turn_is_audited(
    api: httpx.Client, ray_session: RaySession, switch: Any
) -> None:
    viewer = auth(ray_session, Role.VIEWER)
    assert api.get("/kill-switch", headers=viewer).json()["on"] is False
    refused = api.put("/kill-switch", json={"on": True}, headers=viewer)
    assert refused.status_code == 403 and refused.json()["error"]
    bad = api.put("/kill-switch", json={"on": "yes"}, headers=auth(ray_session, Role.ADMIN))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_payload"
    turned = switch(True)
    assert turned["on"] is True and turned["updated_by"] == "ops"
    assert api.get("/kill-switch", headers=viewer).json()["on"] is True
    audit = rows(
        "SELECT * FROM audit_log WHERE action = 'update_kill_switch' ORDER BY audit_id DESC", []
    )
    assert audit and audit[0]["actor"] == "ops"


def status_of(position_id: int) -> str:
    (row,) = rows("SELECT status FROM positions WHERE position_id = ?", [position_id])
    return str(row["status"])


def test_with_the_switch_on_entries_are_refused_and_exits_go_through(
    api: httpx.Client, ray_session: RaySession, switch: Any, monitor: Any
) -> None:
    # One round trip on AIG: the session's earlier tests leave IBM and SPY under
    # LowProfitPairs' lock, and one more closed AIG trade stays under its trade limit (2),
    # so the monitor's own test still opens AIG afterwards. BAC is the protections' test's.
    opened = post(api, 0, EXIT_SYMBOL, direction="long")
    assert decision(opened)["decision"] == "approved", decision(opened)
    position = position_of(opened)

    switch(True)
    refused = post(api, 1, EXIT_SYMBOL, direction="long", strategy="itest-kill-2")
    assert decision(refused)["reason"] == "kill_switch"  # recorded, decided, refused
    assert rows("SELECT * FROM orders WHERE signal_id = ?", [refused]) == []
    # an exit alert is never refused by the switch: this one is decided on its merits
    # (nothing of IBM's is open), not refused as `kill_switch`
    exit_id = post(
        api, 2, SYMBOL, direction="sell", market_position="flat", prev_market_position="long"
    )
    assert decision(exit_id)["reason"] in ("exit", "no_open_position")

    # a rule exit closes the position while the switch is on: the monitor's session-end
    # rule, as a stop loss would
    close = datetime(2013, 10, 7, 20, 0, tzinfo=UTC)
    tick(monitor, close - timedelta(minutes=4))
    wait_for("the rule exit", lambda: status_of(position["position_id"]) == "closed")
    (closed,) = rows(
        "SELECT exit_reason FROM positions WHERE position_id = ?", [position["position_id"]]
    )
    assert closed["exit_reason"] == "session_end"


def test_the_shadow_executor_opens_nothing_while_the_switch_is_on(
    api: httpx.Client, switch: Any
) -> None:
    import ray

    from actors.system import SHADOW_NAME, named

    switch(True)
    signal = {
        "signal_id": 10**9,
        "symbol": SYMBOL,
        "direction": "long",
        "timeframe": "1",
        "strategy": STRATEGY,
        "received_at": datetime(2013, 10, 7, 14, 40, tzinfo=UTC),
    }
    opened = ray.get(
        named(SHADOW_NAME).open.remote(
            signal, "itest-kill", {"meta_confidence": 0.9, "agents": {}}
        ),
        timeout=RAY_TIMEOUT_S,
    )
    assert opened is None
    assert rows("SELECT * FROM shadow_positions WHERE signal_id = ?", [10**9]) == []
