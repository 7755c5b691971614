"""Our errors cross a Ray actor call with their type and fields intact."""

from __future__ import annotations

import pytest

from engine.errors import Conflict, Fatal, RateLimited, Retryable
from tests.integration.conftest import RAY_TIMEOUT_S, RaySession


class Raiser:
    def raise_it(self, kind: str) -> None:
        if kind == "conflict":
            raise Conflict("duplicate_key", {"table": "orders", "columns": ["client_id"]})
        if kind == "rate":
            raise RateLimited("rate_limited", {"limit": 8}, retry_after=7.5)
        if kind == "retry":
            raise Retryable("vendor timed out", retry_after=2.0)
        raise Fatal("database corrupted", "restore from backup")


@pytest.mark.parametrize(
    ("kind", "cls", "fields"),
    [
        (
            "conflict",
            Conflict,
            {
                "code": "duplicate_key",
                "detail": {"table": "orders", "columns": ["client_id"]},
            },
        ),
        ("rate", RateLimited, {"code": "rate_limited", "detail": {"limit": 8}, "retry_after": 7.5}),
        ("retry", Retryable, {"message": "vendor timed out", "retry_after": 2.0}),
        ("fatal", Fatal, {"message": "database corrupted", "hint": "restore from backup"}),
    ],
)
def test_errors_survive_an_actor_call(
    ray_session: RaySession, kind: str, cls: type[Exception], fields: dict[str, object]
) -> None:
    import ray

    actor = ray.remote(num_cpus=0)(Raiser).remote()
    try:
        with pytest.raises(cls) as info:
            ray.get(actor.raise_it.remote(kind), timeout=RAY_TIMEOUT_S)
        original = getattr(info.value, "cause", info.value)
        assert type(original) is cls
        for name, value in fields.items():
            assert getattr(original, name) == value
            assert getattr(info.value, name) == value
    finally:
        ray.kill(actor)
