from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from engine.errors import (
    Conflict,
    Fatal,
    Forbidden,
    NotFound,
    RateLimited,
    Rejected,
    Retryable,
    TandemError,
    Unauthorized,
)

details = st.none() | st.text(max_size=20) | st.dictionaries(st.text(max_size=5), st.integers())


@given(code=st.text(min_size=1, max_size=20), detail=details)
def test_rejected_family_round_trips_through_pickle(code: str, detail: object) -> None:
    for cls in (Rejected, NotFound, Conflict, Unauthorized, Forbidden):
        back = pickle.loads(pickle.dumps(cls(code, detail)))
        assert type(back) is cls
        assert (back.code, back.detail, back.status) == (code, detail, cls.status)


@given(
    message=st.text(max_size=30),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e4),
    hint=st.none() | st.text(max_size=10),
)
def test_retryable_fatal_and_rate_limited_keep_their_fields(
    message: str, retry_after: float | None, hint: str | None
) -> None:
    r = pickle.loads(pickle.dumps(Retryable(message, retry_after)))
    assert (r.message, r.retry_after) == (message, retry_after)
    f = pickle.loads(pickle.dumps(Fatal(message, hint)))
    assert (f.message, f.hint) == (message, hint)
    rl = pickle.loads(pickle.dumps(RateLimited("too_many", {"limit": 8}, retry_after)))
    assert (rl.code, rl.detail, rl.retry_after, rl.status) == (
        "too_many",
        {"limit": 8},
        retry_after,
        429,
    )


def test_errors_are_grouped_by_what_the_caller_does() -> None:
    assert issubclass(Retryable, TandemError)
    assert issubclass(Fatal, TandemError)
    assert all(issubclass(c, Rejected) for c in (NotFound, Conflict, RateLimited))
    assert not issubclass(Retryable, Rejected)
    assert [c.status for c in (Rejected, Unauthorized, Forbidden, NotFound, Conflict)] == [
        400,
        401,
        403,
        404,
        409,
    ]
