"""API tokens: HS256 JWTs that carry a role, checked against an injected `now`.

Roles are ordered `viewer < trader < admin`; a role satisfies every role at or below it.
Read endpoints need viewer, changes need admin (the edge decides which it needs).

`verify_token` accepts only tokens whose header says `alg: HS256` (checked before PyJWT
is asked, and PyJWT is given only HS256 too), so `alg: none`, HS384/HS512 and public-key
algorithms are refused whatever their signature. Time claims are checked here, not by
PyJWT (which would read the wall clock), with no leeway: a token is valid while
`iat <= now < exp` (and `nbf <= now` when present). Every failure raises
`Unauthorized("invalid_token", reason)`; the reason is for logs.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import jwt

from engine.clock import ensure_utc
from engine.errors import Fatal, Forbidden, Unauthorized

ALGORITHM = "HS256"
DEFAULT_TTL = timedelta(hours=24)
MAX_TOKEN_CHARS = 8192
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "jti")


class Role(Enum):
    """What a token may do; ordered `VIEWER < TRADER < ADMIN`."""

    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS.index(self.value)

    def satisfies(self, needed: Role) -> bool:
        """True when this role may do what `needed` may (it is `needed` or above it)."""
        return self.rank >= needed.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = ("viewer", "trader", "admin")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token's claims."""

    subject: str
    role: Role
    issued_at: datetime
    expires_at: datetime
    token_id: str


def _require_secret(secret: str) -> None:
    if not secret:
        raise Fatal("the JWT secret is empty")


def issue_token(
    secret: str,
    subject: str,
    role: Role,
    now: datetime,
    *,
    ttl: timedelta = DEFAULT_TTL,
    token_id: str | None = None,
) -> str:
    """An HS256 JWT for `subject` with `role`, valid from `now` for `ttl` (whole seconds).

    Claims: `sub`, `role`, `iat` (now, floored to the second), `exp` (`iat` + ttl), `jti`
    (`token_id`, or 128 random bits in hex). Raises ValueError for an empty subject or a
    ttl under one second, `Fatal` for an empty secret.
    """
    _require_secret(secret)
    if not subject:
        raise ValueError("subject must not be empty")
    ttl_s = math.floor(ttl.total_seconds())
    if ttl_s < 1:
        raise ValueError(f"ttl must be at least one second, got {ttl}")
    iat = math.floor(ensure_utc(now).timestamp())
    claims = {
        "sub": subject,
        "role": role.value,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": token_id if token_id is not None else secrets.token_hex(16),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized("invalid_token", reason)


def _decode(token: str, secret: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("malformed token")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise _invalid(f"algorithm {str(header.get('alg'))[:20]!r} refused")
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": list(REQUIRED_CLAIMS),
            },
        )
    except jwt.InvalidSignatureError:
        raise _invalid("bad signature") from None
    except jwt.PyJWTError as exc:
        raise _invalid(f"malformed token: {exc}") from None


def _timestamp(payload: dict[str, Any], name: str) -> datetime:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"claim {name} is not an integer")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid(f"claim {name} is out of range") from None


def _role(payload: dict[str, Any]) -> Role:
    try:
        return Role(payload["role"])
    except ValueError:
        raise _invalid("unknown role") from None


def _claims(payload: dict[str, Any]) -> TokenClaims:
    subject, token_id = payload["sub"], payload["jti"]
    if not isinstance(subject, str) or not subject or not isinstance(token_id, str):
        raise _invalid("claims sub and jti must be non-empty strings")
    issued_at = _timestamp(payload, "iat")
    expires_at = _timestamp(payload, "exp")
    return TokenClaims(subject, _role(payload), issued_at, expires_at, token_id)


def verify_token(token: str, secret: str, now: datetime) -> TokenClaims:
    """The claims of a valid token at `now`; `Unauthorized("invalid_token", reason)` else.

    Refused: malformed, any header `alg` but HS256, bad signature, a missing claim
    (`sub`, `role`, `iat`, `exp`, `jti`), an unknown role, `now >= exp`, `now < iat`,
    `now < nbf`. Raises `Fatal` for an empty secret.
    """
    _require_secret(secret)
    now = ensure_utc(now)
    payload = _decode(token, secret)
    claims = _claims(payload)
    if now >= claims.expires_at:
        raise _invalid("expired")
    if now < claims.issued_at:
        raise _invalid("issued in the future")
    if "nbf" in payload and now < _timestamp(payload, "nbf"):
        raise _invalid("not valid yet (nbf)")
    return claims


def require_role(claims: TokenClaims, needed: Role) -> None:
    """Raise `Forbidden("forbidden", ...)` unless the token's role satisfies `needed`."""
    if not claims.role.satisfies(needed):
        raise Forbidden(
            "forbidden", f"role {claims.role.value} cannot do what needs {needed.value}"
        )
