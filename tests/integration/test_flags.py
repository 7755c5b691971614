"""Feature flags and the experiment split on the real app: roles, validation, audit, and a
FeatureFlagsActor that sees an admin's change within 5 s of the run's clock.

Later test files run with variant B off, so a module fixture puts every flag and the split
back to their seeded values (all off, no whitelist, split 0), whatever happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.errors import Rejected
from engine.flags import KNOWN_FLAGS
from engine.tokens import Role, issue_token
from tests.integration.conftest import RAY_TIMEOUT_S, SIM_START, RaySession

FLAGS = "/feature-flags"
EXPERIMENT = "/experiment-settings"
ADMIN = "itest-flags-admin"
SEEDED_FLAGS = {name: (False, None) for name in KNOWN_FLAGS}


def auth(session: RaySession, role: Role, subject: str = "t") -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, subject, role, datetime.now(UTC))}"}


def query(sql: str, *params: Any) -> list[dict[str, Any]]:
    import ray

    from actors.system import store_handle

    table = ray.get(store_handle().query.remote(sql, list(params)), timeout=RAY_TIMEOUT_S)
    return list(table.to_pylist())


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in items}


def flag_states(items: list[dict[str, Any]]) -> dict[str, tuple[bool, list[str] | None]]:
    return {row["name"]: (row["enabled"], row["whitelist"]) for row in items}


def split(items: list[dict[str, Any]]) -> float:
    return float(by_name(items)["split_pct"]["value"])


def audit_count() -> int:
    return int(query("SELECT count(*) AS n FROM audit_log")[0]["n"])


def audit_rows(target: str) -> list[dict[str, Any]]:
    return query(
        "SELECT * FROM audit_log WHERE target = ? AND actor = ? ORDER BY audit_id", target, ADMIN
    )


@pytest.fixture(scope="module", autouse=True)
def restore_seeded(api: httpx.Client, ray_session: RaySession) -> Iterator[None]:
    yield
    admin = auth(ray_session, Role.ADMIN, "itest-restore")
    body = {name: {"enabled": False, "whitelist": []} for name in KNOWN_FLAGS}
    back = api.post(FLAGS, json=body, headers=admin)
    assert back.status_code == 200, back.text
    assert flag_states(back.json()["items"]) == SEEDED_FLAGS
    back = api.put(EXPERIMENT, json={"split_pct": 0}, headers=admin)
    assert back.status_code == 200, back.text
    assert split(back.json()["items"]) == 0


def test_the_post_body_names_exactly_the_known_flags() -> None:
    from api.routes.flags import FlagChanges

    assert set(FlagChanges.model_fields) == set(KNOWN_FLAGS)


def test_a_viewer_reads_the_seeded_flags_and_split(
    api: httpx.Client, ray_session: RaySession
) -> None:
    viewer = auth(ray_session, Role.VIEWER)
    flags, settings = api.get(FLAGS, headers=viewer), api.get(EXPERIMENT, headers=viewer)
    assert flags.status_code == settings.status_code == 200
    assert flag_states(flags.json()["items"]) == SEEDED_FLAGS
    row = by_name(flags.json()["items"])["enable_variant_b"]
    assert set(row) == {"name", "enabled", "description", "whitelist", "updated_by", "updated_at"}
    # seeded values (earlier test files may have changed and restored them: who did is
    # theirs, so updated_by is only required to be there)
    assert row["description"] and row["updated_by"] and row["updated_at"]
    (setting,) = settings.json()["items"]
    assert (setting["name"], setting["value"]) == ("split_pct", 0)
    assert setting["description"] and setting["updated_by"]


def test_an_admin_patches_a_flag_with_an_audit_row_and_event(
    api: httpx.Client, ray_session: RaySession
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    untouched = by_name(api.get(FLAGS, headers=auth(ray_session, Role.VIEWER)).json()["items"])
    before = datetime.now(UTC)
    response = api.patch(
        f"{FLAGS}/enable_orb", json={"enabled": True, "whitelist": ["spy", "QQQ"]}, headers=admin
    )
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    row = response.json()
    assert (row["name"], row["enabled"], row["whitelist"]) == ("enable_orb", True, ["QQQ", "SPY"])
    assert row["updated_by"] == ADMIN
    seen = by_name(api.get(FLAGS, headers=auth(ray_session, Role.VIEWER)).json()["items"])
    assert seen["enable_orb"]["enabled"] is True
    assert seen["enable_variant_b"] == untouched["enable_variant_b"]  # untouched

    (audit,) = audit_rows("enable_orb")
    assert audit["action"] == "update_feature_flag"
    assert json.loads(audit["old_value"]) == {"enabled": False, "whitelist": None}
    assert json.loads(audit["new_value"]) == {"enabled": True, "whitelist": ["QQQ", "SPY"]}
    slack = timedelta(seconds=1)
    assert before - slack <= audit["logged_at"] <= after + slack
    (db_row,) = query("SELECT * FROM feature_flags WHERE name = 'enable_orb'")
    assert db_row["updated_at"] == audit["logged_at"]

    events = query(
        "SELECT payload FROM events WHERE stream = 'audit' AND kind = 'feature_flag_updated' "
        "AND entity_id = 'enable_orb' ORDER BY seq"
    )
    assert json.loads(events[-1]["payload"]) == {
        "actor": ADMIN,
        "action": "update_feature_flag",
        "target": "enable_orb",
        "old_value": {"enabled": False, "whitelist": None},
        "new_value": {"enabled": True, "whitelist": ["QQQ", "SPY"]},
    }

    count = audit_count()
    same = api.patch(f"{FLAGS}/enable_orb", json={"whitelist": ["SPY", "qqq"]}, headers=admin)
    assert same.status_code == 200 and audit_count() == count  # nothing changed: no audit
    back = api.patch(f"{FLAGS}/enable_orb", json={"enabled": False, "whitelist": []}, headers=admin)
    assert back.status_code == 200
    assert (back.json()["enabled"], back.json()["whitelist"]) == (False, None)


def test_an_admin_posts_several_flags_as_a_map_or_a_list(
    api: httpx.Client, ray_session: RaySession
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    count = audit_count()
    on = api.post(
        FLAGS, json={"enable_strat": True, "enable_ttm": {"enabled": True}}, headers=admin
    )
    assert on.status_code == 200, on.text
    states = flag_states(on.json()["items"])
    assert states["enable_strat"] == states["enable_ttm"] == (True, None)
    assert states["enable_variant_b"] == (False, None)
    off = api.post(
        FLAGS,
        json=[{"name": "enable_strat", "enabled": False}, {"name": "enable_ttm", "enabled": False}],
        headers=admin,
    )
    assert off.status_code == 200, off.text
    assert flag_states(off.json()["items"]) == SEEDED_FLAGS
    assert audit_count() == count + 4
    trail = audit_rows("enable_ttm")[-2:]
    assert [json.loads(a["new_value"])["enabled"] for a in trail] == [True, False]


def test_an_admin_rolls_the_split_out_with_audit_rows(
    api: httpx.Client, ray_session: RaySession
) -> None:
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    for pct in (5, 10, 25, 50):
        response = api.put(EXPERIMENT, json={"split_pct": pct}, headers=admin)
        assert response.status_code == 200, response.text
        assert split(response.json()["items"]) == pct
    trail = audit_rows("split_pct")[-4:]
    assert {a["action"] for a in trail} == {"update_experiment_setting"}
    assert [(json.loads(a["old_value"]), json.loads(a["new_value"])) for a in trail] == [
        (0.0, 5.0),
        (5.0, 10.0),
        (10.0, 25.0),
        (25.0, 50.0),
    ]
    (setting,) = query("SELECT * FROM experiment_settings")
    assert (setting["value"], setting["updated_by"]) == (50.0, ADMIN)
    back = api.put(EXPERIMENT, json={"split_pct": 0}, headers=admin)
    assert back.status_code == 200 and split(back.json()["items"]) == 0


CHANGES = [
    ("post", FLAGS, {"enable_variant_b": True}),
    ("patch", f"{FLAGS}/enable_variant_b", {"enabled": True}),
    ("patch", f"{FLAGS}/enable_risk", {"enabled": False}),  # refused before the 404
    ("put", EXPERIMENT, {"split_pct": 50}),
]


@pytest.mark.parametrize(
    ("role", "answer"),
    [
        (Role.TRADER, (403, "forbidden")),
        (Role.VIEWER, (403, "forbidden")),
        (None, (401, "unauthorized")),
    ],
)
@pytest.mark.parametrize("change", CHANGES)
def test_only_admins_change_flags_and_the_split(
    api: httpx.Client,
    ray_session: RaySession,
    role: Role | None,
    answer: tuple[int, str],
    change: tuple[str, str, dict[str, Any]],
) -> None:
    method, path, body = change
    headers = auth(ray_session, role) if role is not None else {}
    count = audit_count()
    response = api.request(method, path, json=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == answer
    assert audit_count() == count


@pytest.mark.parametrize("path", [FLAGS, EXPERIMENT])
def test_reads_need_a_token(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert (response.status_code, response.json()["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (("post", FLAGS, {"enable_risk": False}), {"enable_risk"}),
        (("post", FLAGS, {"enable_variant_b": True, "enable_agents": True}), {"enable_agents"}),
        (("post", FLAGS, [{"name": "enable_risk", "enabled": False}]), {"enable_risk"}),
        (("post", FLAGS, [{"enabled": True}]), {"body"}),
        (("post", FLAGS, {}), {"body"}),
        (("post", FLAGS, {"enable_orb": "yes"}), {"enable_orb"}),
        (("post", FLAGS, {"enable_orb": {"enabled": 1}}), {"enable_orb.enabled"}),
        (("post", FLAGS, {"enable_orb": {"whitelist": "SPY"}}), {"enable_orb.whitelist"}),
        (("post", FLAGS, {"enable_orb": {"whitelist": ["SP Y"]}}), {"enable_orb"}),  # the engine
        (("patch", f"{FLAGS}/enable_orb", {}), {"body"}),
        (("patch", f"{FLAGS}/enable_orb", {"enabled": True, "colour": "red"}), {"colour"}),
        (("put", EXPERIMENT, {"split_pct": 101}), {"split_pct"}),
        (("put", EXPERIMENT, {"split_pct": -5}), {"split_pct"}),
        (("put", EXPERIMENT, {"split_pct": 10.5}), {"split_pct"}),
        (("put", EXPERIMENT, {"split_pct": "10"}), {"split_pct"}),
        (("put", EXPERIMENT, {"split_pct": 10, "unit": "signal"}), {"unit"}),
    ],
)
def test_bad_changes_are_400_with_field_detail_and_write_nothing(
    api: httpx.Client,
    ray_session: RaySession,
    call: tuple[str, str, Any],
    fields: set[str],
) -> None:
    method, path, body = call
    admin = auth(ray_session, Role.ADMIN, ADMIN)
    listing = EXPERIMENT if path == EXPERIMENT else FLAGS
    rows_before = api.get(listing, headers=admin).json()["items"]
    count = audit_count()
    response = api.request(method, path, json=body, headers=admin)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "invalid_payload"
    assert {p["field"] for p in answer["detail"]} == fields
    assert all(p["problem"] for p in answer["detail"])
    assert api.get(listing, headers=admin).json()["items"] == rows_before
    assert audit_count() == count


@pytest.mark.parametrize("name", ["enable_risk", "enable_technical", "nope"])
def test_patching_an_unknown_flag_is_404(
    api: httpx.Client, ray_session: RaySession, name: str
) -> None:
    count = audit_count()
    response = api.patch(
        f"{FLAGS}/{name}", json={"enabled": False}, headers=auth(ray_session, Role.ADMIN, ADMIN)
    )
    assert response.status_code == 404, response.text
    answer = response.json()
    assert answer["error"] == "unknown_flag" and name in answer["detail"]
    assert audit_count() == count


def test_no_store_write_can_create_a_flag_for_the_risk_agent(api: httpx.Client) -> None:
    import ray

    from actors.system import store_handle

    call = store_handle().update_settings.remote(
        "feature_flags", {"enable_risk": {"enabled": False}}, ADMIN, datetime.now(UTC)
    )
    with pytest.raises(Rejected) as info:
        ray.get(call, timeout=RAY_TIMEOUT_S)
    error = getattr(info.value, "cause", info.value)
    (problem,) = error.detail
    assert error.code == "invalid_payload" and problem["field"] == "enable_risk"
    assert "unknown feature flag" in problem["problem"]
    assert query("SELECT count(*) AS n FROM feature_flags WHERE name = 'enable_risk'")[0]["n"] == 0


@pytest.fixture
def flags_rig(api: httpx.Client) -> Iterator[tuple[Any, Any]]:
    """A sim clock of its own and a FeatureFlagsActor over the session's Store."""
    import ray

    from actors.clock import ClockActor, RemoteClock
    from actors.flags import FeatureFlagsActor
    from actors.system import store_handle

    opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 100}
    clock = ray.remote(ClockActor).options(**opts).remote(SIM_START)
    flags = ray.remote(FeatureFlagsActor).options(**opts).remote(store_handle(), RemoteClock(clock))
    yield clock, flags
    for handle in (flags, clock):
        ray.kill(handle)


def test_the_flags_actor_sees_a_change_within_5_s_of_clock_time(
    api: httpx.Client, ray_session: RaySession, flags_rig: tuple[Any, Any]
) -> None:
    import ray

    clock, actor = flags_rig

    def current() -> Any:
        return ray.get(actor.current.remote(), timeout=RAY_TIMEOUT_S)

    def move_to(t: datetime) -> None:
        ray.get(clock.advance_to.remote(t), timeout=RAY_TIMEOUT_S)

    first = current()
    assert first.read_at == SIM_START
    assert not first.flags.enabled("enable_variant_b", "SPY")
    assert first.experiment.split_pct == 0

    admin = auth(ray_session, Role.ADMIN, ADMIN)
    on = api.patch(f"{FLAGS}/enable_variant_b", json={"enabled": True}, headers=admin)
    assert on.status_code == 200, on.text
    assert api.put(EXPERIMENT, json={"split_pct": 25}, headers=admin).status_code == 200

    move_to(SIM_START + timedelta(seconds=4.9))
    assert current() == first  # a snapshot younger than 5 s of clock time is reused
    move_to(SIM_START + timedelta(seconds=5))
    seen = current()
    assert seen.read_at == SIM_START + timedelta(seconds=5)
    assert seen.flags.enabled("enable_variant_b", "SPY") and seen.experiment.split_pct == 25
    assert seen.flags.agent_enabled("risk", "SPY")

    off = api.patch(f"{FLAGS}/enable_variant_b", json={"enabled": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert current().flags.enabled("enable_variant_b", "SPY")  # same clock time: cached
    forced = ray.get(actor.refresh.remote(), timeout=RAY_TIMEOUT_S)
    assert not forced.flags.enabled("enable_variant_b", "SPY")
    assert current() == forced
    assert api.put(EXPERIMENT, json={"split_pct": 0}, headers=admin).status_code == 200
