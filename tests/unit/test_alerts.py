"""Webhook alert parsing: every field's forms, direction resolution, body formats, masking."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.alerts import (
    MASK,
    MAX_BODY_BYTES,
    Alert,
    ParsedAlert,
    PayloadTooLarge,
    alert_from_fields,
    canonical_timeframe,
    decode_fields,
    is_sensitive_key,
    masked_payload,
    parse_alert,
    parse_bar_time,
    secret_field,
    timeframe_seconds,
)
from engine.errors import Rejected

BAR = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
BAR_MS = 1_704_205_800_000  # 2024-01-02T14:30:00Z, hand-computed: 1704067200 + 86400 + 52200
BASE = {
    "symbol": "AAPL",
    "direction": "long",
    "timeframe": "5",
    "timestamp": "2024-01-02T14:30:00Z",
}


def _parse(ct: str | None = None, **fields: object) -> ParsedAlert:
    body = {**BASE, **fields}
    return parse_alert(json.dumps({k: v for k, v in body.items() if v is not ...}).encode(), ct)


def _problems(body: bytes, ct: str | None = None) -> list[dict[str, str]]:
    with pytest.raises(Rejected) as info:
        parse_alert(body, ct)
    assert info.value.code == "invalid_payload"
    assert info.value.status == 400
    detail = info.value.detail
    assert isinstance(detail, list)
    assert all(set(p) == {"field", "problem"} for p in detail)
    return list(detail)


def _bad_fields(**fields: object) -> list[str]:
    body = {k: v for k, v in {**BASE, **fields}.items() if v is not ...}
    return [p["field"] for p in _problems(json.dumps(body).encode())]


# --- body formats ---


def test_a_full_json_body_parses_to_canonical_values() -> None:
    body = {
        **BASE,
        "symbol": "aapl",
        "direction": "call",
        "timeframe": "60",
        "action": "entry",
        "price": 185.25,
        "strategy": " ORB v2 ",
        "secret": "s3cret",
        "extra": {"ignored": True},
    }
    parsed = parse_alert(json.dumps(body).encode(), "application/json")
    assert parsed.secret == "s3cret"
    assert parsed.alert == Alert(
        symbol="AAPL",
        direction="long",
        timeframe="1h",
        bar_time=BAR,
        action="entry",
        price=185.25,
        strategy="ORB v2",
    )
    assert parsed.alert.dedupe_key == "AAPL|long|1h|2024-01-02T14:30:00+00:00"
    assert not parsed.alert.is_exit


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "text/plain; charset=utf-8",
        "application/json",
        "application/x-www-form-urlencoded",
        "x/unknown",
    ],
)
def test_json_is_read_whatever_the_content_type(content_type: str | None) -> None:
    body = json.dumps(BASE).encode()
    assert parse_alert(body, content_type).alert.symbol == "AAPL"


def test_a_utf8_bom_and_surrounding_whitespace_are_fine() -> None:
    body = b"\xef\xbb\xbf \n" + json.dumps(BASE).encode() + b"\n\n"
    assert parse_alert(body, "text/plain").alert.timeframe == "5m"


def test_key_value_lines_are_a_body_format() -> None:
    body = (
        b"symbol = spy\n\ndirection=put\ntimeframe=D\ntimestamp=1704205800000\n"
        b"price=470.5\nsecret=a=b"
    )
    parsed = parse_alert(body, "text/plain")
    assert parsed.alert == Alert("SPY", "short", "1d", BAR, price=470.5)
    assert parsed.secret == "a=b"


def test_form_encoded_pairs_are_read_when_the_content_type_says_so() -> None:
    body = urlencode({**BASE, "secret": "a&b=c"}).encode()
    parsed = parse_alert(body, "application/x-www-form-urlencoded; charset=utf-8")
    assert parsed.alert.symbol == "AAPL"
    assert parsed.secret == "a&b=c"


@pytest.mark.parametrize(
    ("body", "problem_part"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1, 2]", "object"),
        (b'"AAPL long"', "object"),
        (b"42", "object"),
        (b"null", "object"),
        (b'{"symbol": "AAPL",', "invalid JSON"),
        (b'{"price": NaN}', "invalid JSON"),
        (b'{"price": Infinity}', "invalid JSON"),
        (b"[" * 20000, "invalid JSON"),
        (b"AAPL long please", "key=value"),
        (b"symbol=AAPL\njust words", "line 2"),
    ],
)
def test_an_unreadable_body_is_one_body_problem(body: bytes, problem_part: str) -> None:
    problems = _problems(body)
    assert len(problems) == 1
    assert problems[0]["field"] == "body"
    assert problem_part in problems[0]["problem"]


def test_a_bad_form_body_is_a_body_problem() -> None:
    problems = _problems(b"symbol", "application/x-www-form-urlencoded")
    assert [p["field"] for p in problems] == ["body"]


def test_a_body_over_the_limit_is_payload_too_large() -> None:
    body = json.dumps({**BASE, "pad": "x" * MAX_BODY_BYTES}).encode()
    with pytest.raises(PayloadTooLarge) as info:
        parse_alert(body, None)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"
    assert MAX_BODY_BYTES == 65536


def test_a_body_at_the_limit_is_read() -> None:
    raw = json.dumps({**BASE, "pad": ""}).encode()
    body = json.dumps({**BASE, "pad": "x" * (MAX_BODY_BYTES - len(raw))}).encode()
    assert len(body) == MAX_BODY_BYTES
    assert parse_alert(body, None).alert.symbol == "AAPL"


def test_keys_given_twice_are_refused_in_json_and_lines() -> None:
    body = b'{"symbol": "AAPL", "symbol": "MSFT", "direction": "long", "timeframe": "5", '
    body += b'"timestamp": 1704205800000, "secret": "a", "secret": "b"}'
    problems = _problems(body)
    assert problems == [
        {"field": "symbol", "problem": "given more than once"},
        {"field": "secret", "problem": "given more than once"},
    ]
    lines = b"symbol=AAPL\ndirection=long\ntimeframe=5\ntimestamp=1704205800000\ndirection=short"
    assert [p["field"] for p in _problems(lines)] == ["direction"]
    with pytest.raises(Rejected):
        decode_fields(body, None)


def test_duplicates_inside_nested_objects_are_not_field_problems() -> None:
    body = json.dumps(BASE)[:-1] + ', "meta": {"a": 1, "a": 2}}'
    assert parse_alert(body.encode(), None).alert.symbol == "AAPL"


def test_every_problem_is_listed_not_just_the_first() -> None:
    body = {
        "symbol": "AA PL",
        "direction": "up",
        "timeframe": "7x",
        "timestamp": "2024-01-02T14:30:00",
        "action": "close",
        "price": -1,
        "strategy": 7,
        "secret": 123,
    }
    fields = [p["field"] for p in _problems(json.dumps(body).encode())]
    assert fields == [
        "symbol",
        "direction",
        "timeframe",
        "timestamp",
        "action",
        "price",
        "strategy",
        "secret",
    ]


def test_missing_required_fields_are_each_reported() -> None:
    problems = _problems(b'{"note": "hello"}')
    assert problems == [
        {"field": "symbol", "problem": "required"},
        {"field": "timeframe", "problem": "required"},
        {"field": "timestamp", "problem": "required"},
        {"field": "direction", "problem": "required"},
    ]


def test_json_null_counts_as_absent() -> None:
    parsed = _parse(price=None, strategy=None, action=None, secret=None)
    assert parsed.alert.price is None
    assert parsed.alert.action == "entry"
    assert parsed.secret is None
    assert _bad_fields(symbol=None) == ["symbol"]


def test_unfilled_tradingview_placeholders_are_named() -> None:
    problems = _problems(
        json.dumps(
            {**BASE, "direction": "{{strategy.order.action}}", "timestamp": "{{time}}"}
        ).encode()
    )
    assert [p["field"] for p in problems] == ["direction", "timestamp"]
    assert all("placeholder" in p["problem"] for p in problems)


# --- symbol ---


@pytest.mark.parametrize(
    ("raw", "symbol"),
    [
        ("aapl", "AAPL"),
        (" spy ", "SPY"),
        ("BRK.B", "BRK.B"),
        ("NASDAQ:AAPL", "NASDAQ:AAPL"),
        ("BTC/USDT", "BTC/USDT"),
        ("BTC-PERP", "BTC-PERP"),
        ("ES_F", "ES_F"),
        ("X" * 21, "X" * 21),
    ],
)
def test_valid_symbols(raw: str, symbol: str) -> None:
    assert _parse(symbol=raw).alert.symbol == symbol


@pytest.mark.parametrize("raw", ["", "   ", "X" * 22, "AA PL", "ES1!", "ÄPFEL", 123, ["AAPL"]])
def test_invalid_symbols(raw: object) -> None:
    assert _bad_fields(symbol=raw) == ["symbol"]


# --- direction ---


@pytest.mark.parametrize(
    ("raw", "direction"),
    [
        ("long", "long"),
        ("LONG", "long"),
        ("call", "long"),
        ("Call", "long"),
        ("buy", "long"),
        ("short", "short"),
        ("put", "short"),
        ("PUT", "short"),
        ("sell", "short"),
    ],
)
def test_direction_synonyms_for_entries(raw: str, direction: str) -> None:
    alert = _parse(direction=raw).alert
    assert alert.direction == direction
    assert alert.action == "entry"


@pytest.mark.parametrize("raw", ["up", "", "longs", 1, True])
def test_invalid_directions(raw: object) -> None:
    assert _bad_fields(direction=raw) == ["direction"]


# --- action, market positions, exits ---


def test_action_exit_closes_the_given_direction() -> None:
    alert = _parse(action="EXIT", direction="put").alert
    assert (alert.action, alert.direction, alert.is_exit) == ("exit", "short", True)


def test_an_order_side_on_a_plain_exit_is_ambiguous() -> None:
    for side in ("buy", "sell"):
        assert _bad_fields(action="exit", direction=side) == ["direction"]


def test_an_exit_may_name_the_closed_side_by_prev_market_position_alone() -> None:
    alert = _parse(action="exit", direction=..., prev_market_position="short").alert
    assert (alert.direction, alert.is_exit) == ("short", True)


@pytest.mark.parametrize(
    ("direction", "prev", "closed"),
    [
        ("sell", "long", "long"),
        ("buy", "long", "long"),  # prev_market_position wins over the order side
        ("buy", "short", "short"),
        ("sell", ..., "long"),  # a sell to flat closes a long
        ("buy", ..., "short"),  # a buy to flat closes a short
        ("long", ..., "long"),
        ("put", ..., "short"),
        (..., "long", "long"),
        ("sell", "flat", "long"),
    ],
)
def test_a_move_to_flat_is_an_exit_of_the_side_closed(
    direction: object, prev: object, closed: str
) -> None:
    alert = _parse(
        direction=direction, market_position="flat", prev_market_position=prev, action="entry"
    ).alert
    assert alert.is_exit
    assert alert.action == "exit"
    assert alert.direction == closed


def test_a_move_to_flat_needs_some_side_to_close() -> None:
    assert _bad_fields(direction=..., market_position="flat") == ["direction"]


def test_strategy_entries_take_the_market_position_direction() -> None:
    new = _parse(direction="buy", market_position="long", prev_market_position="flat").alert
    assert (new.direction, new.action, new.is_reversal) == ("long", "entry", False)
    add = _parse(direction="sell", market_position="short", prev_market_position="short").alert
    assert (add.direction, add.action) == ("short", "entry")
    bare = _parse(direction=..., market_position="short").alert
    assert (bare.direction, bare.action) == ("short", "entry")


def test_a_reversal_is_an_entry_on_the_new_side() -> None:
    alert = _parse(direction="sell", market_position="short", prev_market_position="long").alert
    assert (alert.direction, alert.action, alert.is_reversal) == ("short", "entry", True)


def test_a_partial_close_is_an_exit_of_the_side_left_open() -> None:
    for prev in ("long", ...):
        alert = _parse(direction="sell", market_position="long", prev_market_position=prev).alert
        assert (alert.direction, alert.action, alert.is_exit) == ("long", "exit", True)
    short = _parse(direction="buy", market_position="short", prev_market_position="short").alert
    assert (short.direction, short.action) == ("short", "exit")


def test_contradictions_with_market_position_are_refused() -> None:
    assert _bad_fields(direction="call", market_position="short") == ["direction"]
    assert _bad_fields(direction="sell", market_position="long", prev_market_position="flat") == [
        "direction"
    ]


@pytest.mark.parametrize("field", ["action", "market_position", "prev_market_position"])
@pytest.mark.parametrize("raw", ["close", "neutral", "", 1])
def test_invalid_action_and_positions(field: str, raw: object) -> None:
    assert _bad_fields(**{field: raw}) == [field]


# --- timeframe ---


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("1", "1m"),
        ("5", "5m"),
        ("15", "15m"),
        ("45", "45m"),
        ("60", "1h"),
        ("90", "90m"),
        ("240", "4h"),
        ("1440", "24h"),
        ("30S", "30s"),
        ("60S", "1m"),
        ("3600S", "1h"),
        ("D", "1d"),
        ("1D", "1d"),
        ("2D", "2d"),
        ("W", "1w"),
        ("1W", "1w"),
        ("M", "1mo"),
        ("3M", "3mo"),
        ("5m", "5m"),
        ("5min", "5m"),
        ("1h", "1h"),
        ("4H", "4h"),
        ("1d", "1d"),
        ("1w", "1w"),
        ("1mo", "1mo"),
        (" 15 ", "15m"),
        (15, "15m"),
    ],
)
def test_timeframes_are_canonical(raw: object, canonical: str) -> None:
    assert _parse(timeframe=raw).alert.timeframe == canonical


@pytest.mark.parametrize(
    "raw", ["", "0", "0D", "x", "5y", "1.5h", "-5", "123456", "5 m", True, 2.5]
)
def test_invalid_timeframes(raw: object) -> None:
    assert _bad_fields(timeframe=raw) == ["timeframe"]


@given(
    st.integers(min_value=1, max_value=99999),
    st.sampled_from(["", "S", "s", "m", "min", "h", "H", "D", "d", "W", "w", "M", "mo"]),
)
def test_canonical_timeframe_is_idempotent_and_keeps_the_length(count: int, unit: str) -> None:
    once = canonical_timeframe(f"{count}{unit}")
    assert canonical_timeframe(once) == once
    seconds = {"": 60, "S": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "H": 3600}
    seconds |= {"D": 86400, "d": 86400, "W": 604800, "w": 604800}
    if unit in seconds:
        assert timeframe_seconds(once) == count * seconds[unit]
    else:
        assert timeframe_seconds(once) is None


# --- timestamp ---


@pytest.mark.parametrize(
    "raw",
    [
        "2024-01-02T14:30:00Z",
        "2024-01-02T14:30:00+00:00",
        "2024-01-02T20:00:00+05:30",
        "2024-01-02T09:30:00-05:00",
        "2024-01-02 14:30:00Z",
        "20240102T143000Z",
        BAR_MS,
        str(BAR_MS),
        float(BAR_MS),
    ],
)
def test_timestamps_iso_or_epoch_ms_give_the_same_utc_bar_time(raw: object) -> None:
    alert = _parse(timestamp=raw).alert
    assert alert.bar_time == BAR
    assert alert.bar_time.tzinfo is UTC
    assert alert.dedupe_key == "AAPL|long|5m|2024-01-02T14:30:00+00:00"


@pytest.mark.parametrize(
    "raw",
    [
        "2024-01-02T14:30:00",  # no zone: refused, not guessed
        "2024-01-02",
        "yesterday",
        BAR_MS // 1000,  # epoch seconds
        str(BAR_MS // 1000),
        BAR_MS + 0.5,
        "1989-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        -1,
        10**20,
        True,
        [BAR_MS],
        "١٧٠٤٢٠٥٨٠٠٠٠٠",  # non-ASCII digits
    ],
)
def test_invalid_timestamps(raw: object) -> None:
    assert _bad_fields(timestamp=raw) == ["timestamp"]


def test_a_missing_zone_says_how_to_fix_it() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        parse_bar_time("2024-01-02T14:30:00")


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2099, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
)
def test_epoch_ms_and_iso_of_one_instant_give_one_dedupe_key(t: datetime) -> None:
    ms = (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    by_ms = _parse(timestamp=ms).alert
    by_iso = _parse(timestamp=t.isoformat().replace("+00:00", "Z")).alert
    by_offset = _parse(timestamp=t.astimezone(UTC).isoformat()).alert
    assert by_ms.bar_time == by_iso.bar_time == by_offset.bar_time == t
    assert by_ms.dedupe_key == by_iso.dedupe_key == by_offset.dedupe_key


# --- price, strategy, secret ---


@pytest.mark.parametrize(("raw", "price"), [(1, 1.0), (0.01, 0.01), ("185.25", 185.25)])
def test_valid_prices(raw: object, price: float) -> None:
    assert _parse(price=raw).alert.price == price


@pytest.mark.parametrize("raw", [0, -1, "abc", "nan", "inf", "", True, [1]])
def test_invalid_prices(raw: object) -> None:
    assert _bad_fields(price=raw) == ["price"]


def test_a_price_overflowing_to_infinity_is_refused() -> None:
    body = json.dumps(BASE)[:-1] + ', "price": 1e400}'
    assert [p["field"] for p in _problems(body.encode())] == ["price"]


def test_strategy_length_and_blank() -> None:
    assert _parse(strategy="s" * 64).alert.strategy == "s" * 64
    assert _parse(strategy="   ").alert.strategy is None
    assert _bad_fields(strategy="s" * 65) == ["strategy"]
    assert _bad_fields(strategy="a\nb") == ["strategy"]
    assert _bad_fields(strategy=["x"]) == ["strategy"]


def test_the_secret_is_kept_apart_and_never_shown() -> None:
    parsed = _parse(secret="hunter2-very-secret")
    assert parsed.secret == "hunter2-very-secret"
    assert "hunter2" not in repr(parsed)
    assert not hasattr(parsed.alert, "secret")


def test_the_secret_can_be_read_before_the_fields_are_validated() -> None:
    fields = decode_fields(b'{"symbol": "??", "secret": "abc"}', "text/plain")
    assert secret_field(fields) == "abc"
    assert secret_field({"secret": 1}) is None
    assert secret_field({}) is None


# --- Alert built directly ---


def test_an_alert_built_directly_is_validated() -> None:
    Alert("AAPL", "long", "5m", BAR)
    bad: list[dict[str, object]] = [
        {"symbol": "aapl"},
        {"direction": "call"},
        {"timeframe": "5"},
        {"bar_time": datetime(2024, 1, 2, 14, 30)},
        {"bar_time": datetime(2024, 1, 2, 14, 30, tzinfo=UTC) + timedelta(days=365 * 100)},
        {"action": "close"},
        {"market_position": "up"},
        {"price": 0.0},
        {"price": float("nan")},
        {"strategy": ""},
        {"strategy": " padded "},
    ]
    for change in bad:
        args: dict[str, object] = {
            "symbol": "AAPL",
            "direction": "long",
            "timeframe": "5m",
            "bar_time": BAR,
        }
        with pytest.raises(Rejected):
            Alert(**{**args, **change})  # type: ignore[arg-type]


def test_is_exit_also_follows_market_position_on_a_direct_alert() -> None:
    assert Alert("AAPL", "long", "5m", BAR, market_position="flat").is_exit
    assert not Alert("AAPL", "long", "5m", BAR, market_position="long").is_exit


# --- properties ---


@given(st.binary(max_size=300))
def test_parse_raises_only_rejected_on_arbitrary_bytes(body: bytes) -> None:
    for content_type in (None, "application/x-www-form-urlencoded"):
        try:
            parse_alert(body, content_type)
        except Rejected as exc:
            assert exc.code == "invalid_payload"
            assert all(isinstance(p["problem"], str) for p in exc.detail)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["long", "sell", "flat", "exit", "D", "60", "2024-01-02T14:30:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
field_names = st.sampled_from(
    [*BASE, "action", "market_position", "prev_market_position", "price", "strategy", "secret"]
)


@given(st.dictionaries(field_names, json_values))
def test_any_json_object_gives_an_alert_or_a_list_of_field_problems(
    body: dict[str, object],
) -> None:
    try:
        parsed = parse_alert(json.dumps(body).encode(), None)
    except Rejected as exc:
        assert exc.code == "invalid_payload"
        assert exc.detail
        assert {p["field"] for p in exc.detail} <= set(body) | {
            "symbol",
            "direction",
            "timeframe",
            "timestamp",
        }
        return
    assert parsed.alert.direction in ("long", "short")
    assert parsed.alert.is_exit == (parsed.alert.action == "exit")


# --- masking ---


def test_masking_a_json_body_hides_every_sensitive_key_at_any_depth() -> None:
    body = {
        **BASE,
        "secret": "s1",
        "Api-Key": "k1",
        "auth": {"password": "p1", "list": [{"refresh_token": "t1"}, "plain"]},
        "client_secret": {"nested": "deep"},
    }
    masked = masked_payload(json.dumps(body).encode(), "text/plain")
    assert masked == {
        **BASE,
        "secret": MASK,
        "Api-Key": MASK,
        "auth": {"password": MASK, "list": [{"refresh_token": MASK}, "plain"]},
        "client_secret": MASK,
    }


def test_masking_lines_and_form_bodies() -> None:
    assert masked_payload(b"symbol=AAPL\nsecret=abc") == {"symbol": "AAPL", "secret": MASK}
    form = masked_payload(b"symbol=AAPL&token=abc", "application/x-www-form-urlencoded")
    assert form == {"symbol": "AAPL", "token": MASK}


def test_masking_text_that_does_not_decode() -> None:
    masked = masked_payload(b'{"symbol": "AAPL", "secret": "ab\\"c", "x": 1')
    assert masked == '{"symbol": "AAPL", "secret": ***, "x": 1'
    assert masked_payload(b"hello secret=abc&x=1\nnext") == "hello secret=***\nnext"
    assert masked_payload(b"\xff password: hunter2") == "\ufffd password: ***"
    assert masked_payload(b"[1, 2]") == "[1, 2]"


def test_masking_also_replaces_known_secret_values_anywhere() -> None:
    body = json.dumps({**BASE, "strategy": "oops-s3cret-here"}).encode()
    masked = masked_payload(body, also_mask=["s3cret", ""])
    assert isinstance(masked, dict)
    assert masked["strategy"] == f"oops-{MASK}-here"
    assert masked_payload(b"garbage s3cret", also_mask=["s3cret"]) == f"garbage {MASK}"


def test_an_oversized_body_is_not_kept() -> None:
    masked = masked_payload(b"secret=" + b"x" * MAX_BODY_BYTES)
    assert isinstance(masked, str)
    assert "x" not in masked
    assert str(MAX_BODY_BYTES + 7) in masked


def test_sensitive_key_names() -> None:
    for key in ("secret", "SECRET", "webhook_secret", "token", "password", "passwd", "apikey"):
        assert is_sensitive_key(key)
    for key in ("api-key", "API_KEY", "Authorization", "x-signature", "passphrase"):
        assert is_sensitive_key(key)
    for key in ("symbol", "dedupe_key", "strategy", "price"):
        assert not is_sensitive_key(key)


MARK = "Zq~"  # no other generated text contains "~", so the mark finds only the secret
secret_values = st.text(min_size=1, max_size=20).map(lambda s: MARK + s)
plain_values = st.text(alphabet=st.characters(blacklist_characters="~"), max_size=10)


def _contains(masked: dict[str, object] | str, secret: str) -> bool:
    text = masked if isinstance(masked, str) else json.dumps(masked, ensure_ascii=False)
    return secret in text


@given(secret_values, plain_values, st.sampled_from(["secret", "token", "password"]))
def test_masked_json_never_holds_the_secret(secret: str, other: str, key: str) -> None:
    body = {"symbol": other, key: secret, "nested": {"auth": {key: secret}}}
    for dumped in (json.dumps(body), json.dumps(body, ensure_ascii=False)):
        raw = dumped.encode("utf-8", errors="surrogatepass")
        assert not _contains(masked_payload(raw), secret)
        assert not _contains(masked_payload(raw[:-1]), secret)  # truncated: text masking
        assert not _contains(masked_payload(raw + b"\xff"), secret)  # and not UTF-8


encodable = st.characters(codec="utf-8", blacklist_characters="\r\n")


@given(
    st.text(alphabet=encodable, min_size=1, max_size=20).map(lambda s: MARK + s),
    st.text(alphabet=encodable, max_size=10).filter(lambda s: "~" not in s),
)
def test_masked_text_never_holds_the_secret(secret: str, other: str) -> None:
    for body in (
        f"symbol={other}\nsecret={secret}",
        f"secret={secret}\nnot a pair",
        f"x {other} password: {secret}",
        urlencode({"symbol": other, "secret": secret}),
    ):
        raw = body.encode("utf-8", errors="surrogatepass")
        assert not _contains(masked_payload(raw), secret)
        assert not _contains(masked_payload(raw, "application/x-www-form-urlencoded"), secret)
        assert not _contains(masked_payload(raw, None, also_mask=[secret]), secret)


def test_a_timestamp_before_year_one_is_a_field_problem_not_a_crash() -> None:
    """Found by hypothesis: -62135596800001 ms is one millisecond before 0001-01-01."""
    with pytest.raises(Rejected) as caught:
        alert_from_fields(
            {"symbol": "SPY", "direction": "long", "timeframe": "5", "timestamp": -62135596800001}
        )
    assert {
        "field": "timestamp",
        "problem": "epoch milliseconds out of range",
    } in caught.value.detail
