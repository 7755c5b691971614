"""POST /webhook and the read API on the real app, over real HTTP, with real Ray and DuckDB."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import pytest

from engine.tokens import Role, issue_token
from tests.integration.conftest import (
    HMAC_SECRET,
    RAY_TIMEOUT_S,
    URL_TOKEN,
    WEBHOOK_SECRET,
    RaySession,
)

_bars = count()


def alert(**overrides: Any) -> dict[str, Any]:
    """A fresh bar each call, so tests never dedupe against each other by accident."""
    bar = datetime(2013, 10, 7, 13, 30, tzinfo=UTC) + timedelta(minutes=next(_bars))
    body = {
        "symbol": "SPY",
        "direction": "long",
        "timeframe": "1",
        "timestamp": bar.isoformat().replace("+00:00", "Z"),
        "secret": WEBHOOK_SECRET,
        "strategy": "itest",
    }
    body.update(overrides)
    return body


def token(session: RaySession, role: Role = Role.VIEWER) -> dict[str, str]:
    secret = session.settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {issue_token(secret, 't', role, datetime.now(UTC))}"}


def test_a_valid_alert_is_durable_before_201_and_has_a_trail(
    api: httpx.Client, ray_session: RaySession
) -> None:
    response = api.post("/webhook", json=alert())
    assert response.status_code == 201
    signal_id = response.json()["signal_id"]
    trail = api.get(f"/signals/{signal_id}", headers=token(ray_session))
    assert trail.status_code == 200
    body = trail.json()
    assert body["signal"]["symbol"] == "SPY" and body["signal"]["status"] == "received"
    assert [e["kind"] for e in body["events"]] == ["signal_received"]
    listed = api.get("/signals", params={"symbol": "spy"}, headers=token(ray_session)).json()
    assert signal_id in [s["signal_id"] for s in listed["items"]]


def test_text_plain_json_body_is_accepted(api: httpx.Client) -> None:
    body = json.dumps(alert(direction="put"))
    response = api.post("/webhook", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201


def test_a_duplicate_gets_200_and_the_original_id(api: httpx.Client) -> None:
    first = api.post("/webhook", json=(payload := alert()))
    again = api.post("/webhook", json=payload)
    assert again.status_code == 200
    assert again.json() == {"signal_id": first.json()["signal_id"], "duplicate": True}


def test_fifty_concurrent_duplicates_yield_exactly_one_signal(
    api: httpx.Client, ray_session: RaySession
) -> None:
    payload = alert(strategy="burst-dupes")

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as client:
            return await asyncio.gather(*(client.post("/webhook", json=payload) for _ in range(50)))

    responses = asyncio.run(fire())
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(200) == 49
    assert len({r.json()["signal_id"] for r in responses}) == 1


def test_invalid_fields_are_all_listed_in_a_400(api: httpx.Client) -> None:
    response = api.post("/webhook", json=alert(direction="sideways", timestamp="yesterday"))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_payload"
    assert {p["field"] for p in body["detail"]} >= {"direction", "timestamp"}


def test_a_bad_secret_is_401_without_field_details(api: httpx.Client) -> None:
    response = api.post("/webhook", json=alert(secret="wrong", direction="sideways"))
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_a_body_over_64_kb_is_413(api: httpx.Client) -> None:
    response = api.post("/webhook", json=alert(padding="x" * 70_000))
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_url_token_and_hmac_signature_authenticate_other_senders(api: httpx.Client) -> None:
    no_secret = alert()
    del no_secret["secret"]
    assert api.post(f"/webhook/{URL_TOKEN}", json=no_secret).status_code == 201
    assert api.post("/webhook/not-the-token", json=alert(secret=None)).status_code in (400, 401)
    raw = json.dumps({k: v for k, v in alert().items() if k != "secret"}).encode()
    sig = hmac.new(HMAC_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Tandem-Signature": f"sha256={sig}", "Content-Type": "application/json"}
    assert api.post("/webhook", content=raw, headers=headers).status_code == 201
    headers["X-Tandem-Signature"] = "sha256=" + "0" * 64
    assert api.post("/webhook", content=raw, headers=headers).status_code == 401


def test_too_many_for_one_strategy_is_429_and_other_strategies_still_pass(
    api: httpx.Client,
) -> None:
    statuses = [api.post("/webhook", json=alert(strategy="flood")).status_code for _ in range(65)]
    assert statuses[:60] == [201] * 60
    assert set(statuses[60:]) == {429}
    limited = api.post("/webhook", json=alert(strategy="flood"))
    assert limited.headers["Retry-After"].isdigit()
    assert api.post("/webhook", json=alert(strategy="calm")).status_code == 201


def test_every_request_is_in_the_event_log_with_secrets_masked(api: httpx.Client) -> None:
    import ray

    from actors.system import store_handle

    api.post("/webhook", json=alert(secret="a-wrong-secret-value"))
    table = ray.get(
        store_handle().query.remote(
            "SELECT payload FROM events WHERE kind = 'webhook_request' ORDER BY seq"
        ),
        timeout=RAY_TIMEOUT_S,
    )
    payloads = [json.loads(p) for p in table.column("payload").to_pylist()]
    statuses = {p["status"] for p in payloads}
    assert {201, 200, 400, 401, 413}.issubset(statuses)
    text = json.dumps(payloads)
    assert WEBHOOK_SECRET not in text
    assert "a-wrong-secret-value" not in text


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer not.a.jwt"}, 401), ({"Authorization": "Basic x"}, 401)],
)
def test_reads_need_a_valid_token(api: httpx.Client, headers: dict[str, str], status: int) -> None:
    response = api.get("/signals", headers=headers)
    assert response.status_code == status
    assert response.json()["error"] in ("unauthorized", "invalid_token")


def test_an_unknown_signal_is_a_typed_404(api: httpx.Client, ray_session: RaySession) -> None:
    response = api.get("/signals/999999", headers=token(ray_session))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_while_draining_new_webhooks_get_503_and_only_an_admin_may_drain(
    api: httpx.Client, ray_session: RaySession
) -> None:
    assert api.post("/drain", headers=token(ray_session, Role.VIEWER)).status_code == 403
    assert api.post("/drain", headers=token(ray_session, Role.TRADER)).status_code == 403
    assert api.post("/drain").status_code == 401
    admin = token(ray_session, Role.ADMIN)
    assert api.post("/drain", headers=admin).json() == {"draining": True}
    try:
        refused = api.post("/webhook", json=alert())
        assert refused.status_code == 503
        assert refused.json()["error"] == "unavailable"
    finally:
        assert api.delete("/drain", headers=admin).json() == {"draining": False}
    assert api.post("/webhook", json=alert()).status_code == 201
