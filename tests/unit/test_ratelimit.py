"""Per-key token buckets: exact answers, Retry-After, the window bound, bounded memory.

The reference is an independent token-bucket model in exact `Fraction` arithmetic (tokens
refill continuously, capped at `burst`; a request takes one whole token). For requests in
time order it must agree with the limiter on every answer, wait and remaining count. The
window bound is checked directly on the allowed times, for any order of arrival.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.clock import ClockError
from engine.errors import RateLimited
from engine.ratelimit import BucketPolicy, Decision, KeyedRateLimiter

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_policy_validation() -> None:
    for rate, burst in ((0.0, 1), (-1.0, 1), (math.inf, 1), (math.nan, 1), (1.0, 0), (1.0, 1.5)):
        with pytest.raises(ValueError):
            BucketPolicy(rate, burst)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        KeyedRateLimiter(BucketPolicy(1.0, 1), max_keys=0)


@pytest.mark.parametrize(
    ("rate", "micros"),
    [(1.0, 1_000_000), (0.5, 2_000_000), (3.0, 333_334), (0.1, 10_000_000), (1e9, 1)],
)
def test_the_interval_is_one_over_rate_rounded_up_to_a_microsecond(
    rate: float, micros: int
) -> None:
    assert BucketPolicy(rate, 1).interval == timedelta(microseconds=micros)


def test_a_burst_then_one_a_second() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(rate_per_s=1.0, burst=3))
    assert [limiter.allow("s1", T0) for _ in range(3)] == [
        Decision(True, 0.0, 2),
        Decision(True, 0.0, 1),
        Decision(True, 0.0, 0),
    ]
    refused = limiter.allow("s1", T0)
    assert refused == Decision(False, 1.0, 0)
    assert refused.retry_after_header == "1"
    assert limiter.allow("s1", at(0.999999)) == Decision(False, 0.000001, 0)
    assert limiter.allow("s1", at(1.0)) == Decision(True, 0.0, 0)
    assert limiter.allow("s1", at(2.5)).allowed
    assert limiter.allow("s1", at(2.5)) == Decision(False, 0.5, 0)
    assert limiter.allow("s1", at(100)) == Decision(True, 0.0, 2)


def test_keys_are_independent() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(rate_per_s=0.5, burst=1))
    assert limiter.allow("strategy-a", T0).allowed
    assert not limiter.allow("strategy-a", T0).allowed
    assert limiter.allow("strategy-b", T0).allowed


def test_check_raises_rate_limited_with_retry_after() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(rate_per_s=0.25, burst=1))
    assert limiter.check("k", T0).allowed
    with pytest.raises(RateLimited) as info:
        limiter.check("k", at(1))
    assert info.value.status == 429
    assert info.value.code == "rate_limited"
    assert info.value.retry_after == 3.0
    assert "k" not in str(info.value.detail)


def test_retry_after_header_rounds_up() -> None:
    assert Decision(False, 0.2, 0).retry_after_header == "1"
    assert Decision(False, 2.0, 0).retry_after_header == "2"
    assert Decision(False, 2.000001, 0).retry_after_header == "3"


def test_now_must_be_aware() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(1.0, 1))
    with pytest.raises(ClockError):
        limiter.allow("k", datetime(2024, 1, 2, 14, 30))


def test_full_buckets_are_dropped_when_the_table_fills() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(rate_per_s=1.0, burst=2), max_keys=3)
    for key in "abc":
        assert limiter.allow(key, T0).allowed
    assert len(limiter) == 3
    assert limiter.allow("d", at(10)).allowed
    assert len(limiter) == 1  # a, b, c had full buckets again: nothing lost


def test_least_recently_used_keys_go_when_every_bucket_is_busy() -> None:
    limiter = KeyedRateLimiter(BucketPolicy(rate_per_s=1 / 60, burst=2), max_keys=3)
    for key in "abc":
        assert limiter.allow(key, T0).allowed
    assert limiter.allow("d", at(1)).allowed
    assert len(limiter) == 3
    # "a" was dropped; it still gets exactly what it had left (one request, not a burst).
    assert limiter.allow("a", at(1)).allowed
    assert not limiter.allow("a", at(1)).allowed


@dataclass
class _ModelBucket:
    tokens: Fraction
    last: int


def _model(policy: BucketPolicy, requests: list[tuple[str, int]]) -> list[Decision]:
    """Continuous token buckets in exact arithmetic; times in microseconds, in order."""
    interval = math.ceil(Fraction(1_000_000) / Fraction(policy.rate_per_s))
    buckets: dict[str, _ModelBucket] = {}
    out = []
    for key, t in requests:
        bucket = buckets.setdefault(key, _ModelBucket(Fraction(policy.burst), t))
        bucket.tokens = min(
            Fraction(policy.burst), bucket.tokens + Fraction(t - bucket.last, interval)
        )
        bucket.last = t
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            out.append(Decision(True, 0.0, math.floor(bucket.tokens)))
        else:
            wait_us = (1 - bucket.tokens) * interval
            assert wait_us.denominator == 1
            out.append(Decision(False, int(wait_us) / 1_000_000, 0))
    return out


policies = st.builds(
    BucketPolicy,
    rate_per_s=st.sampled_from([0.1, 0.5, 1.0, 3.0, 7.0, 1 / 3, 100.0]),
    burst=st.integers(1, 6),
)
gaps_us = st.integers(0, 3_000_000)


@given(policies, st.lists(st.tuples(st.sampled_from("abc"), gaps_us), max_size=80))
def test_in_time_order_it_agrees_with_the_token_bucket_model(
    policy: BucketPolicy, raw: list[tuple[str, int]]
) -> None:
    requests, t = [], 0
    for key, gap in raw:
        t += gap
        requests.append((key, t))
    limiter = KeyedRateLimiter(policy)
    got = [limiter.allow(key, T0 + timedelta(microseconds=t)) for key, t in requests]
    assert got == _model(policy, requests)


def _assert_window_bound(policy: BucketPolicy, allowed: dict[str, list[int]]) -> None:
    rate = Fraction(policy.rate_per_s)
    for times in allowed.values():
        times.sort()
        # The tightest windows start and end on allowed requests.
        for i in range(len(times)):
            for j in range(i, len(times)):
                window_s = Fraction(times[j] - times[i], 1_000_000)
                assert j - i + 1 <= policy.burst + rate * window_s


@given(
    policies,
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 20_000_000)), max_size=60),
    st.sampled_from([1, 2, 10_000]),
)
def test_any_window_allows_at_most_burst_plus_rate_times_length(
    policy: BucketPolicy, requests: list[tuple[str, int]], max_keys: int
) -> None:
    # Arrival order is arbitrary (times go back and forth), and with max_keys < 3 keys
    # are dropped and come back: the bound must hold regardless.
    limiter = KeyedRateLimiter(policy, max_keys=max_keys)
    allowed: dict[str, list[int]] = defaultdict(list)
    for key, t in requests:
        if limiter.allow(key, T0 + timedelta(microseconds=t)).allowed:
            allowed[key].append(t)
        assert len(limiter) <= max_keys
    _assert_window_bound(policy, allowed)


@given(policies, st.lists(gaps_us, min_size=1, max_size=30))
def test_retry_after_is_exactly_when_the_request_would_pass(
    policy: BucketPolicy, gaps: list[int]
) -> None:
    limiter = KeyedRateLimiter(policy)
    t = T0
    for gap in gaps:
        t += timedelta(microseconds=gap)
        decision = limiter.allow("k", t)
        if decision.allowed:
            continue
        wait = timedelta(seconds=decision.retry_after_s)
        assert wait > timedelta(0)
        assert not limiter.allow("k", t + wait - timedelta(microseconds=1)).allowed
        assert limiter.allow("k", t + wait).allowed
        t += wait
