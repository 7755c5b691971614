"""JWT bearer tokens with roles for every route except the webhook and health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from engine.errors import Unauthorized
from engine.tokens import Role, TokenClaims, require_role, verify_token


def require(role: Role) -> Callable[[Request], Awaitable[TokenClaims]]:
    """A dependency: the caller's verified claims, with at least `role` (401 / 403)."""

    async def dependency(request: Request) -> TokenClaims:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("unauthorized", "a bearer token is required")
        backend = request.app.state.backend
        claims = verify_token(token.strip(), backend.jwt_secret, backend.clock.now())
        require_role(claims, role)
        return claims

    return dependency
