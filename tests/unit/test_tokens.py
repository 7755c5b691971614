"""API tokens: round trip, expiry on the injected clock, forged and tampered tokens, roles.

Forged tokens are built by hand here (base64url JSON and Python's `hmac`), independently
of PyJWT, so a refusal cannot be an artefact of the library building them.
"""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import ClockError
from engine.errors import Fatal, Forbidden, Unauthorized
from engine.tokens import (
    DEFAULT_TTL,
    Role,
    TokenClaims,
    issue_token,
    require_role,
    verify_token,
)

SECRET = "test-jwt-secret-" + "0123456789abcdef" * 4  # 80 bytes: no PyJWT key warnings
NOW = datetime(2024, 1, 2, 14, 30, 15, 500_000, tzinfo=UTC)
IAT = 1_704_205_815  # NOW floored to the second, hand-computed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(obj: object) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _forge(header: dict[str, object], claims: dict[str, object], key: bytes, digest: str) -> str:
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "sub": "alice",
        "role": "admin",
        "iat": IAT,
        "exp": IAT + 3600,
        "jti": "t-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


def _refused(token: str, now: datetime = NOW, secret: str = SECRET) -> str:
    with pytest.raises(Unauthorized) as info:
        verify_token(token, secret, now)
    assert info.value.code == "invalid_token"
    assert info.value.status == 401
    return str(info.value.detail)


def test_round_trip() -> None:
    token = issue_token(SECRET, "alice", Role.TRADER, NOW, token_id="tok-1")
    assert verify_token(token, SECRET, NOW) == TokenClaims(
        subject="alice",
        role=Role.TRADER,
        issued_at=datetime(2024, 1, 2, 14, 30, 15, tzinfo=UTC),
        expires_at=datetime(2024, 1, 3, 14, 30, 15, tzinfo=UTC),
        token_id="tok-1",
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload == {
        "sub": "alice",
        "role": "trader",
        "iat": IAT,
        "exp": IAT + 86400,
        "jti": "tok-1",
    }


def test_a_hand_signed_hs256_token_is_accepted() -> None:
    token = _forge({"alg": "HS256", "typ": "JWT"}, _claims(), SECRET.encode(), "sha256")
    assert verify_token(token, SECRET, NOW).role is Role.ADMIN


def test_token_ids_are_random_by_default() -> None:
    first = verify_token(issue_token(SECRET, "a", Role.VIEWER, NOW), SECRET, NOW)
    second = verify_token(issue_token(SECRET, "a", Role.VIEWER, NOW), SECRET, NOW)
    assert first.token_id != second.token_id
    assert len(first.token_id) == 32
    assert timedelta(hours=24) == DEFAULT_TTL


def test_expiry_is_checked_against_the_injected_now_without_leeway() -> None:
    token = issue_token(SECRET, "alice", Role.VIEWER, NOW, ttl=timedelta(hours=1))
    exp = datetime(2024, 1, 2, 15, 30, 15, tzinfo=UTC)
    assert verify_token(token, SECRET, exp - timedelta(microseconds=1)).expires_at == exp
    assert _refused(token, exp) == "expired"
    assert _refused(token, NOW + timedelta(days=2)) == "expired"
    # A token that expired long ago by the wall clock is fine at an injected past `now`.
    old = issue_token(SECRET, "alice", Role.VIEWER, datetime(2001, 1, 1, tzinfo=UTC))
    assert verify_token(old, SECRET, datetime(2001, 1, 1, 12, tzinfo=UTC)).subject == "alice"


def test_a_token_issued_after_now_is_refused() -> None:
    token = issue_token(SECRET, "alice", Role.VIEWER, NOW)
    assert _refused(token, NOW - timedelta(seconds=1)) == "issued in the future"


def test_not_before_is_honoured() -> None:
    token = _forge({"alg": "HS256"}, _claims(nbf=IAT + 60), SECRET.encode(), "sha256")
    assert "nbf" in _refused(token)
    assert verify_token(token, SECRET, NOW + timedelta(seconds=60)).subject == "alice"


def test_alg_none_is_refused() -> None:
    for alg in ("none", "None", "NONE"):
        token = f"{_json_b64({'alg': alg, 'typ': 'JWT'})}.{_json_b64(_claims())}."
        assert "refused" in _refused(token)


@pytest.mark.parametrize(("alg", "digest"), [("HS512", "sha512"), ("HS384", "sha384")])
def test_other_hmac_algorithms_are_refused(alg: str, digest: str) -> None:
    token = _forge({"alg": alg, "typ": "JWT"}, _claims(), SECRET.encode(), digest)
    assert "refused" in _refused(token)
    by_pyjwt = jwt.encode(_claims(), SECRET, algorithm=alg)
    assert "refused" in _refused(by_pyjwt)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", ""])
def test_other_algorithm_headers_are_refused_even_with_a_valid_hs256_signature(alg: str) -> None:
    # The classic confusion attack: a public-key alg in the header, HMAC under the secret.
    token = _forge({"alg": alg}, _claims(), SECRET.encode(), "sha256")
    assert "refused" in _refused(token)


def test_a_missing_alg_is_refused() -> None:
    token = _forge({"typ": "JWT"}, _claims(), SECRET.encode(), "sha256")
    _refused(token)


def test_a_wrong_secret_is_refused() -> None:
    token = issue_token(SECRET, "alice", Role.ADMIN, NOW)
    assert _refused(token, secret=SECRET + "x") == "bad signature"


def test_a_tampered_payload_is_refused() -> None:
    token = issue_token(SECRET, "mallory", Role.VIEWER, NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    assert _refused(f"{header}.{_json_b64(claims)}.{signature}") == "bad signature"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert _refused(f"{header}.{payload}.{flipped}") == "bad signature"


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": ...},
        {"role": ...},
        {"iat": ...},
        {"exp": ...},
        {"jti": ...},
        {"role": "root"},
        {"role": "ADMIN"},
        {"sub": ""},
        {"sub": 7},
        {"jti": 7},
        {"exp": float(IAT + 3600)},
        {"exp": str(IAT + 3600)},
        {"exp": True},
        {"iat": 10**20},
        {"aud": "someone-else"},
    ],
)
def test_bad_claims_are_refused(changes: dict[str, object]) -> None:
    token = _forge({"alg": "HS256", "typ": "JWT"}, _claims(**changes), SECRET.encode(), "sha256")
    _refused(token)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9..", "x" * 9000, "é.é.é"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    _refused(token)


@given(st.text(max_size=200))
def test_verify_raises_only_unauthorized_on_arbitrary_text(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify_token(token, SECRET, NOW)


@given(
    st.dictionaries(
        st.sampled_from(["sub", "role", "iat", "exp", "jti", "nbf", "aud"]),
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    )
)
def test_verify_answers_claims_or_unauthorized_for_any_signed_payload(
    claims: dict[str, object],
) -> None:
    token = _forge({"alg": "HS256"}, claims, SECRET.encode(), "sha256")
    try:
        verified = verify_token(token, SECRET, NOW)
    except Unauthorized:
        return
    assert verified.issued_at <= NOW < verified.expires_at
    assert verified.role.value == claims["role"]


def test_secrets_subjects_and_ttls_are_checked() -> None:
    with pytest.raises(Fatal):
        issue_token("", "alice", Role.ADMIN, NOW)
    with pytest.raises(Fatal):
        verify_token("a.b.c", "", NOW)
    with pytest.raises(ValueError):
        issue_token(SECRET, "", Role.ADMIN, NOW)
    with pytest.raises(ValueError):
        issue_token(SECRET, "alice", Role.ADMIN, NOW, ttl=timedelta(milliseconds=999))
    with pytest.raises(ClockError):
        issue_token(SECRET, "alice", Role.ADMIN, datetime(2024, 1, 2))
    with pytest.raises(ClockError):
        verify_token(issue_token(SECRET, "a", Role.ADMIN, NOW), SECRET, datetime(2024, 1, 2))


def test_roles_are_ordered_viewer_trader_admin() -> None:
    assert sorted([Role.ADMIN, Role.VIEWER, Role.TRADER]) == [Role.VIEWER, Role.TRADER, Role.ADMIN]
    assert Role.VIEWER < Role.TRADER < Role.ADMIN
    assert Role.ADMIN >= Role.ADMIN > Role.VIEWER
    assert Role.VIEWER <= Role.VIEWER
    assert [Role(v) for v in ("viewer", "trader", "admin")] == list(Role)
    with pytest.raises(TypeError):
        _ = Role.ADMIN < "viewer"


@pytest.mark.parametrize(
    ("have", "needed", "ok"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.TRADER, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.TRADER, Role.VIEWER, True),
        (Role.TRADER, Role.TRADER, True),
        (Role.TRADER, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.TRADER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_require_role(have: Role, needed: Role, ok: bool) -> None:
    claims = verify_token(issue_token(SECRET, "u", have, NOW), SECRET, NOW)
    assert have.satisfies(needed) is ok
    if ok:
        require_role(claims, needed)
        return
    with pytest.raises(Forbidden) as info:
        require_role(claims, needed)
    assert (info.value.status, info.value.code) == (403, "forbidden")
