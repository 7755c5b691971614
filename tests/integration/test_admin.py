"""Admin endpoints for risk limits and exit rules on the real app: roles, validation, audit.

Later test files trade with the seeded defaults, so every test puts back what it changed
and a module fixture restores the rows it found, whatever happened in between.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.errors import Rejected
from engine.tokens import Role, issue_token
from tests.integration.conftest import RAY_TIMEOUT_S, RaySession

LIMITS = "/risk-limits"
RULES = "/exit-rules"
ADMIN = "itest-admin"
SEEDED_LIMITS = {
    "capital_available": 10000.0,
    "max_open_positions": 5.0,
    "max_positions_per_symbol": 1.0,
    "per_trade_risk_pct": 0.05,
}
SEEDED_RULES = {
    "dte_threshold_days": (1.0, True),
    "profit_target_pct": (0.5, True),
    "session_end_minutes_before_close": (5.0, True),
    "stop_loss_pct": (0.3, True),
    "time_stop_minutes": (240.0, False),
}


def auth(session: RaySession, role: Role, subject: str = "t") -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, subject, role, datetime.now(UTC))}"}


def store() -> Any:
    from actors.system import store_handle

    return store_handle()


def query(sql: str, *params: Any) -> list[dict[str, Any]]:
    import ray

    table = ray.get(store().query.remote(sql, list(params)), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in items}


def audit_count() -> int:
    return int(query("SELECT count(*) AS n FROM audit_log")[0]["n"])


@pytest.fixture(scope="module", autouse=True)
def restore_settings(api: httpx.Client, ray_session: RaySession) -> Iterator[None]:
    admin = auth(ray_session, Role.ADMIN, "itest-restore")
    limits = api.get(LIMITS, headers=admin).json()["items"]
    rules = api.get(RULES, headers=admin).json()["items"]
    yield
    back = api.put(LIMITS, json={r["name"]: r["value"] for r in limits}, headers=admin)
    assert back.status_code == 200, back.text
    body = {r["name"]: {"value": r["value"], "enabled": r["enabled"]} for r in rules}
    back = api.put(RULES, json=body, headers=admin)
    assert back.status_code == 200, back.text


def test_a_viewer_reads_the_seeded_limits_and_rules(
    api: httpx.Client, ray_session: RaySession
) -> None:
    viewer = auth(ray_session, Role.VIEWER)
    limits = api.get(LIMITS, headers=viewer)
    rules = api.get(RULES, headers=viewer)
    assert limits.status_code == rules.status_code == 200
    limit_rows, rule_rows = by_name(limits.json()["items"]), by_name(rules.json()["items"])
    assert {n: r["value"] for n, r in limit_rows.items()} == SEEDED_LIMITS
    assert {n: (r["value"], r["enabled"]) for n, r in rule_rows.items()} == SEEDED_RULES
    row = limit_rows["per_trade_risk_pct"]
    assert set(row) == {"name", "value", "description", "updated_by", "updated_at"}
    assert row["description"] and row["updated_by"] and row["updated_at"]
    assert set(rule_rows["stop_loss_pct"]) == set(row) | {"enabled"}


def audit_rows(target: str) -> list[dict[str, Any]]:
    return query(
        "SELECT * FROM audit_log WHERE target = ? AND actor = ? ORDER BY audit_id", target, ADMIN
    )


def test_an_admin_changes_two_limits_with_audit_rows_and_events(
    api: httpx.Client, ray_session: RaySession
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    before = datetime.now(UTC)
    response = api.put(
        LIMITS, json={"max_open_positions": 6, "capital_available": 10001.5}, headers=admin
    )
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    rows = by_name(response.json()["items"])
    assert (
        rows["max_open_positions"]["value"] == 6 and rows["capital_available"]["value"] == 10001.5
    )
    assert rows["max_open_positions"]["updated_by"] == ADMIN
    assert rows["per_trade_risk_pct"]["updated_by"] == "migration"  # untouched
    seen = by_name(api.get(LIMITS, headers=auth(ray_session, Role.VIEWER)).json()["items"])
    assert seen["max_open_positions"]["value"] == 6

    (db_row,) = query("SELECT * FROM risk_limits WHERE name = 'max_open_positions'")
    (audit,) = audit_rows("max_open_positions")
    (other,) = audit_rows("capital_available")
    assert db_row["value"] == 6 and db_row["updated_by"] == ADMIN
    assert audit["action"] == "update_risk_limit"
    assert json.loads(audit["old_value"]) == 5 and json.loads(audit["new_value"]) == 6
    assert json.loads(other["old_value"]) == 10000 and json.loads(other["new_value"]) == 10001.5
    slack = timedelta(seconds=1)
    assert before - slack <= audit["logged_at"] <= after + slack
    assert audit["logged_at"] == other["logged_at"] == db_row["updated_at"]

    events = query(
        "SELECT kind, entity_id, payload FROM events WHERE stream = 'audit' "
        "AND kind = 'risk_limit_updated' AND entity_id = 'max_open_positions' ORDER BY seq"
    )
    payload = json.loads(events[-1]["payload"])
    assert payload == {
        "actor": ADMIN,
        "action": "update_risk_limit",
        "target": "max_open_positions",
        "old_value": 5.0,
        "new_value": 6.0,
    }

    back = api.put(
        LIMITS, json={"max_open_positions": 5, "capital_available": 10000}, headers=admin
    )
    assert back.status_code == 200
    assert {r["name"]: r["value"] for r in back.json()["items"]} == SEEDED_LIMITS


def test_an_admin_changes_an_exit_rule_as_object_or_bare_number(
    api: httpx.Client, ray_session: RaySession
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    count = audit_count()
    # a time stop of ~69 days never fires while later tests run, even if one slips by
    first = api.put(
        RULES, json={"time_stop_minutes": {"value": 100000, "enabled": True}}, headers=admin
    )
    assert first.status_code == 200, first.text
    bare = api.put(RULES, json={"time_stop_minutes": 99999, "stop_loss_pct": 0.3}, headers=admin)
    assert bare.status_code == 200, bare.text
    row = by_name(bare.json()["items"])["time_stop_minutes"]
    assert (row["value"], row["enabled"], row["updated_by"]) == (99999, True, ADMIN)
    assert by_name(bare.json()["items"])["stop_loss_pct"]["updated_by"] == "migration"

    trail = audit_rows("time_stop_minutes")[-2:]
    assert [a["action"] for a in trail] == ["update_exit_rule"] * 2
    assert [json.loads(a["old_value"]) for a in trail] == [
        {"value": 240.0, "enabled": False},
        {"value": 100000.0, "enabled": True},
    ]
    assert json.loads(trail[1]["new_value"]) == {"value": 99999.0, "enabled": True}
    assert audit_count() == count + 2  # the unchanged stop_loss_pct is not audited

    back = api.put(
        RULES, json={"time_stop_minutes": {"value": 240, "enabled": False}}, headers=admin
    )
    assert back.status_code == 200
    rules = by_name(back.json()["items"])
    assert {n: (r["value"], r["enabled"]) for n, r in rules.items()} == SEEDED_RULES


@pytest.mark.parametrize(
    ("role", "answer"),
    [
        (Role.TRADER, (403, "forbidden")),
        (Role.VIEWER, (403, "forbidden")),
        (None, (401, "unauthorized")),
        ("junk", (401, "invalid_token")),
    ],
)
@pytest.mark.parametrize(
    "change",
    [
        (LIMITS, {"max_positions_per_symbol": 3}),
        (RULES, {"stop_loss_pct": {"value": 0.9}}),
        (LIMITS, {"max_positions_per_symbol": -3}),  # refused before it is validated
    ],
)
def test_only_admins_change_settings(
    api: httpx.Client,
    ray_session: RaySession,
    role: Role | str | None,
    answer: tuple[int, str],
    change: tuple[str, dict[str, Any]],
) -> None:
    path, body = change
    headers = {"Authorization": "Bearer not.a.jwt"} if role == "junk" else {}
    if isinstance(role, Role):
        headers = auth(ray_session, role)
    count = audit_count()
    response = api.put(path, json=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == answer
    assert audit_count() == count


@pytest.mark.parametrize("path", [LIMITS, RULES])
def test_reads_need_a_token(api: httpx.Client, path: str) -> None:
    assert api.get(path).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        (LIMITS, {"max_open_position": 3}, {"max_open_position"}),
        (LIMITS, {"max_open_positions": -1}, {"max_open_positions"}),
        (LIMITS, {"per_trade_risk_pct": 1.5}, {"per_trade_risk_pct"}),
        (LIMITS, {"max_positions_per_symbol": 1.5}, {"max_positions_per_symbol"}),
        (
            LIMITS,
            {"capital_available": "lots", "per_trade_risk_pct": None},
            {
                "capital_available",
                "per_trade_risk_pct",
            },
        ),
        (LIMITS, {"max_open_positions": 6, "per_trade_risk_pct": 0}, {"per_trade_risk_pct"}),
        (LIMITS, {}, {"body"}),
        (LIMITS, [1], {"body"}),
        (RULES, {"stop_loss_pct": {"value": 1.5}}, {"stop_loss_pct.value"}),
        (RULES, {"stop_loss_pct": -0.1}, {"stop_loss_pct.value"}),
        (RULES, {"dte_threshold_days": 0.5}, {"dte_threshold_days.value"}),
        (RULES, {"take_profit": 0.5}, {"take_profit"}),
        (RULES, {"stop_loss_pct": {"enabled": "yes", "value": 0.2}}, {"stop_loss_pct.enabled"}),
        (RULES, {"profit_target_pct": True}, {"profit_target_pct.value"}),
        (RULES, {"profit_target_pct": {}}, {"profit_target_pct"}),
    ],
)
def test_bad_changes_are_400_with_field_detail_and_write_nothing(
    api: httpx.Client, ray_session: RaySession, path: str, body: Any, fields: set[str]
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    rows_before = api.get(path, headers=admin).json()["items"]
    count = audit_count()
    response = api.put(path, json=body, headers=admin)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "invalid_payload"
    assert {p["field"] for p in answer["detail"]} == fields
    assert all(p["problem"] for p in answer["detail"])
    assert api.get(path, headers=admin).json()["items"] == rows_before
    assert audit_count() == count


def update_settings(table: str, changes: Any) -> Any:
    import ray

    call = store().update_settings.remote(table, changes, ADMIN, datetime.now(UTC))
    return ray.get(call, timeout=RAY_TIMEOUT_S)


@pytest.mark.parametrize(
    ("table", "changes", "field", "words"),
    [
        ("risk_limits", {"per_trade_risk_pct": {"value": 2.0}}, "per_trade_risk_pct", "(0, 1]"),
        ("risk_limits", {"max_open_positions": {"value": -1}}, "max_open_positions", ">= 0"),
        ("risk_limits", {"nope": {"value": 1}}, "nope", "unknown"),
        ("risk_limits", {"max_open_positions": {"enabled": False}}, "max_open_positions", "keys"),
        ("exit_rules", {"stop_loss_pct": {"value": 0}}, "stop_loss_pct", "exit at once"),
        ("exit_rules", {"stop_loss_pct": {"value": True}}, "stop_loss_pct", "number"),
        ("exit_rules", {"stop_loss_pct": {"enabled": 1}}, "stop_loss_pct", "true or false"),
        ("exit_rules", {"nope": {"value": 1}}, "nope", "unknown"),
        ("exit_rules", {}, "body", "no changes"),
    ],
)
def test_the_store_checks_changes_by_building_the_engine_objects(
    api: httpx.Client, table: str, changes: Any, field: str, words: str
) -> None:
    count = audit_count()
    with pytest.raises(Rejected) as info:
        update_settings(table, changes)
    error = getattr(info.value, "cause", info.value)
    assert error.code == "invalid_payload"
    (problem,) = error.detail
    assert problem["field"] == field and words in problem["problem"]
    assert audit_count() == count


def test_the_store_changes_only_the_settings_tables(api: httpx.Client) -> None:
    with pytest.raises(Rejected) as info:
        update_settings("orders", {"status": {"value": 1}})
    assert getattr(info.value, "cause", info.value).code == "invalid_table"
