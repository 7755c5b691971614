"""TradingView alerts: a webhook body parsed into an `Alert`, with the secret kept apart.

TradingView cannot set headers and sends `text/plain` whenever the alert message is not
valid JSON, so the body is read whatever its Content-Type says:

- a JSON object (the usual alert template), or text/plain holding one;
- `key=value` lines (one pair per line, blank lines ignored);
- `application/x-www-form-urlencoded` pairs, when the Content-Type says so and the body
  is not JSON.

The body must be UTF-8 (a leading BOM is dropped) and at most `MAX_BODY_BYTES`. JSON
`NaN`/`Infinity` and a key given twice are refused. Unknown fields are ignored, so a
template may carry extra placeholders. A value still holding `{{...}}` is refused: it is
a TradingView placeholder the alert did not fill in (a strategy placeholder in a study).

Fields (JSON null counts as absent):

- `symbol` (required): upper-cased; 1-21 of `A-Z 0-9 . - / : _`. An exchange prefix
  (`NASDAQ:AAPL`) is kept as given, so it is part of the dedupe key.
- `direction`: `long`/`short`; `call`/`put` are synonyms of long/short. `buy`/`sell` are
  read as an *order side* (TradingView's `{{strategy.order.action}}`), see below.
- `timeframe` (required): TradingView's `{{interval}}` (`1`, `5`, `60`, `240` minutes;
  `30S`; `D`, `2D`; `W`; `M` = month) or the usual short forms (`5m`, `5min`, `1h`, `4H`,
  `1d`, `1w`, `1mo`). Canonical form: a count and one of `s m h d w mo`; seconds that
  make whole minutes become minutes, minutes that make whole hours become hours
  (`60` -> `1h`, `90` -> `90m`, `1440` -> `24h`, `D` -> `1d`). Lower-case `m` is minutes,
  upper-case `M` months, as on TradingView.
- `timestamp` (required): the bar's open time, TradingView's `{{time}}`: ISO 8601 with
  `Z` or an offset, or epoch milliseconds (a number or a string of digits). A time
  without a zone is refused rather than guessed; times outside 1990-2099 are refused
  (which also catches epoch *seconds* sent by mistake).
- `action`: `entry` (default) or `exit`.
- `market_position`, `prev_market_position`: `long`/`short`/`flat`, TradingView's
  `{{strategy.market_position}}` and `{{strategy.prev_market_position}}`.
- `price` (> 0, a number or numeric string), `strategy` (at most 64 printable
  characters; blank counts as absent), `secret` (a string; returned apart from the
  `Alert`, never stored in it).

Direction and action, resolved in this order:

1. An exit (`action` = exit, or `market_position` = flat, whatever `action` says) closes
   `prev_market_position` when that is long/short; else the `direction` field (long/
   short as given; with `market_position` present, a sell closes a long and a buy a
   short); else `market_position`. `buy`/`sell` on an exit without `market_position`
   is ambiguous and refused.
2. Without `market_position`: an entry in `direction` (`buy` = long, `sell` = short).
3. With `market_position` long/short: a sell while long (a buy while short) that leaves
   the same side open is a partial close, read as an exit of that side; otherwise an
   entry in `market_position`'s direction (new, add, or reversal). A `direction` that
   contradicts `market_position` is refused.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar
from urllib.parse import parse_qsl

from engine.errors import Rejected

MAX_BODY_BYTES = 65536
MAX_STRATEGY_CHARS = 64
MASK = "***"
INVALID_PAYLOAD = "invalid_payload"

Direction = Literal["long", "short"]
Action = Literal["entry", "exit"]
MarketPosition = Literal["long", "short", "flat"]
Problem = dict[str, str]
T = TypeVar("T")

_SYMBOL = re.compile(r"[A-Z0-9./:_-]{1,21}")
_TIMEFRAME = re.compile(r"([0-9]{1,5})?([A-Za-z]{0,3})")
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNITS = {
    "": "m",
    "s": "s",
    "S": "s",
    "m": "m",
    "min": "m",
    "h": "h",
    "H": "h",
    "d": "d",
    "D": "d",
    "w": "w",
    "W": "w",
    "M": "mo",
    "mo": "mo",
}
_DIRECTIONS: dict[str, tuple[Direction, bool]] = {
    "long": ("long", False),
    "short": ("short", False),
    "call": ("long", False),
    "put": ("short", False),
    "buy": ("long", True),
    "sell": ("short", True),
}
_ACTIONS: dict[str, Action] = {"entry": "entry", "exit": "exit"}
_POSITIONS: dict[str, MarketPosition] = {"long": "long", "short": "short", "flat": "flat"}


class PayloadTooLarge(Rejected):
    """The body is over `MAX_BODY_BYTES` (HTTP 413)."""

    status = 413


@dataclass(frozen=True, slots=True)
class Alert:
    """One TradingView alert, validated and in canonical form (see the module docstring).

    Constructing one directly validates the canonical forms too and raises `Rejected`
    (`invalid_payload`, a list of `{field, problem}`).
    """

    symbol: str
    direction: Direction
    timeframe: str
    bar_time: datetime
    action: Action = "entry"
    market_position: MarketPosition | None = None
    prev_market_position: MarketPosition | None = None
    price: float | None = None
    strategy: str | None = None

    def __post_init__(self) -> None:
        problems = _alert_problems(self)
        if problems:
            raise Rejected(INVALID_PAYLOAD, problems)

    @property
    def is_exit(self) -> bool:
        """True for an exit: `action` is exit or the strategy moved to flat."""
        return self.action == "exit" or self.market_position == "flat"

    @property
    def is_reversal(self) -> bool:
        """True when a strategy went from one side straight to the other (long <-> short)."""
        before, after = self.prev_market_position, self.market_position
        return before in ("long", "short") and after in ("long", "short") and before != after

    @property
    def dedupe_key(self) -> str:
        """`SYMBOL|direction|timeframe|bar time ISO`: equal for repeats of one bar's alert."""
        return f"{self.symbol}|{self.direction}|{self.timeframe}|{self.bar_time.isoformat()}"


@dataclass(frozen=True, slots=True)
class ParsedAlert:
    """A parsed body: the `Alert` and, apart from it, the `secret` it carried (if any)."""

    alert: Alert
    secret: str | None = field(default=None, repr=False)


def _alert_problems(alert: Alert) -> list[Problem]:
    checks: list[tuple[str, bool, str]] = [
        ("symbol", _SYMBOL.fullmatch(alert.symbol) is None, "must be 1-21 of A-Z 0-9 . - / : _"),
        ("direction", alert.direction not in ("long", "short"), "must be long or short"),
        ("timeframe", not _is_canonical_timeframe(alert.timeframe), "not a canonical timeframe"),
        ("timestamp", not _is_utc_in_range(alert.bar_time), "must be UTC within 1990-2099"),
        ("action", alert.action not in _ACTIONS, "must be entry or exit"),
        ("market_position", not _position_or_none(alert.market_position), _POSITION_PROBLEM),
        (
            "prev_market_position",
            not _position_or_none(alert.prev_market_position),
            _POSITION_PROBLEM,
        ),
        ("price", alert.price is not None and not _positive(alert.price), "must be > 0"),
        (
            "strategy",
            alert.strategy is not None and not _good_strategy(alert.strategy),
            _STRATEGY_PROBLEM,
        ),
    ]
    return [{"field": name, "problem": problem} for name, bad, problem in checks if bad]


_POSITION_PROBLEM = "must be long, short, flat or None"
_STRATEGY_PROBLEM = f"must be 1-{MAX_STRATEGY_CHARS} printable characters without outer spaces"


def _position_or_none(value: str | None) -> bool:
    return value is None or value in _POSITIONS


def _is_canonical_timeframe(text: str) -> bool:
    try:
        return canonical_timeframe(text) == text
    except ValueError:
        return False


def _is_utc_in_range(t: datetime) -> bool:
    return t.tzinfo is UTC and _EARLIEST <= t < _LATEST


def _positive(x: float) -> bool:
    return isinstance(x, float | int) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _good_strategy(text: str) -> bool:
    return 0 < len(text) <= MAX_STRATEGY_CHARS and text.isprintable() and text == text.strip()


# --- field parsers: each returns the canonical value or raises ValueError(problem) ---


def canonical_timeframe(raw: str) -> str:
    """TradingView's `{{interval}}` or a short form (`5m`, `1h`, `1d`) in canonical form.

    Raises ValueError naming the accepted forms.
    """
    text = raw.strip()
    match = _TIMEFRAME.fullmatch(text)
    if not text or match is None or match.group(2) not in _UNITS:
        raise ValueError(
            f"unknown timeframe {raw!r}: use minutes (1, 5, 60), 30S, D, W, M, or 5m, 1h, 1d"
        )
    count = int(match.group(1) or "1")
    if count == 0:
        raise ValueError("timeframe count must be >= 1")
    unit = _UNITS[match.group(2)]
    if unit == "s" and count % 60 == 0:
        count, unit = count // 60, "m"
    if unit == "m" and count % 60 == 0:
        count, unit = count // 60, "h"
    return f"{count}{unit}"


def timeframe_seconds(timeframe: str) -> int | None:
    """Length in seconds of a canonical timeframe; None for months (they vary)."""
    match = _TIMEFRAME.fullmatch(timeframe)
    if match is None or match.group(2) not in _UNIT_SECONDS:
        return None
    return int(match.group(1) or "1") * _UNIT_SECONDS[match.group(2)]


def parse_bar_time(raw: object) -> datetime:
    """ISO 8601 with a zone, or epoch milliseconds, as an aware UTC datetime.

    Raises ValueError: no zone, not a time, or outside 1990-2099.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be ISO 8601 text or epoch milliseconds")
    if isinstance(raw, str):
        text = _placeholder_free(raw)
        t = _from_ms(int(text)) if _EPOCH_MS.fullmatch(text) else _from_iso(text)
    elif isinstance(raw, float) and not raw.is_integer():
        raise ValueError("epoch milliseconds must be a whole number")
    else:
        t = _from_ms(int(raw))
    if not _EARLIEST <= t < _LATEST:
        raise ValueError(
            f"{t.isoformat()} is outside 1990-2099 (epoch seconds sent as milliseconds?)"
        )
    return t


def _from_ms(ms: int) -> datetime:
    # Exact integer arithmetic; the range check in the caller rejects absurd values.
    if not -(10**15) < ms < 10**15:
        raise ValueError("epoch milliseconds out of range")
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # before year 1: datetime cannot hold it
        raise ValueError("epoch milliseconds out of range") from None


def _from_iso(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not ISO 8601 or epoch milliseconds") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{text!r} has no time zone: add Z or an offset")
    try:
        return t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def _placeholder_free(raw: str) -> str:
    text = raw.strip()
    if "{{" in text:
        raise ValueError(f"TradingView placeholder not filled in: {text[:40]!r}")
    return text


def _text(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be a string")
    return _placeholder_free(raw)


def _symbol(raw: object) -> str:
    text = _text(raw).upper()
    if _SYMBOL.fullmatch(text) is None:
        raise ValueError("must be 1-21 characters of A-Z 0-9 . - / : _")
    return text


def _timeframe(raw: object) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    return canonical_timeframe(_text(raw))


def _choice(raw: object, choices: Iterable[str]) -> str:
    text = _text(raw).lower()
    options = tuple(choices)
    if text not in options:
        raise ValueError(f"must be one of {', '.join(options)}; got {text[:40]!r}")
    return text


def _price(raw: object) -> float:
    if isinstance(raw, str):
        try:
            raw = float(_placeholder_free(raw))
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("must be a number")
    value = float(raw)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a finite number > 0")
    return value


def _strategy(raw: object) -> str | None:
    text = _text(raw)
    if not text:
        return None
    if len(text) > MAX_STRATEGY_CHARS:
        raise ValueError(f"at most {MAX_STRATEGY_CHARS} characters")
    if not text.isprintable():
        raise ValueError("must be printable text")
    return text


def _secret(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be a string")
    return raw


# --- body decoding ---


class _JsonObject(dict[str, object]):
    """A decoded JSON object that remembers keys it was given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_hook(pairs: list[tuple[str, object]]) -> _JsonObject:
    obj = _JsonObject()
    dups: list[str] = []
    for key, value in pairs:
        if key in obj:
            dups.append(key)
        obj[key] = value
    obj.duplicates = tuple(dict.fromkeys(dups))
    return obj


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _load_json(text: str) -> object:
    """`json.loads` without NaN/Infinity; ValueError for bad JSON, too deep or too big."""
    try:
        return json.loads(text, object_pairs_hook=_object_hook, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _body_problem(problem: str) -> Rejected:
    return Rejected(INVALID_PAYLOAD, [{"field": "body", "problem": problem}])


def _body_text(body: bytes) -> str:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            "payload_too_large", {"limit_bytes": MAX_BODY_BYTES, "size_bytes": len(body)}
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _body_problem(f"not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise _body_problem("empty")
    return text


def _is_form(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def _pairs_to_fields(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, object], list[str]]:
    fields: dict[str, object] = {}
    dups: list[str] = []
    for key, value in pairs:
        if key in fields:
            dups.append(key)
        fields[key] = value
    return fields, list(dict.fromkeys(dups))


def _line_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    # Only \n (and \r\n) end a line: a secret may hold other Unicode line breaks.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise _body_problem(f"neither a JSON object nor key=value lines (line {number})")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _form_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text.strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _body_problem("not valid form-encoded pairs") from None


def _decode(body: bytes, content_type: str | None) -> tuple[dict[str, object], list[str]]:
    """The body as a field mapping and the keys given more than once."""
    text = _body_text(body)
    try:
        value = _load_json(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "[", '"'):
            raise _body_problem(f"invalid JSON: {exc}") from None
        pairs = _form_pairs(text) if _is_form(content_type) else _line_pairs(text)
        return _pairs_to_fields(pairs)
    if not isinstance(value, _JsonObject):
        raise _body_problem(f"JSON must be an object, got {type(value).__name__}")
    return dict(value), list(value.duplicates)


def decode_fields(body: bytes, content_type: str | None) -> dict[str, object]:
    """The body as a mapping of field name to value, whatever the Content-Type.

    Lets the edge read `secret` and authenticate before it validates the fields. Raises
    `PayloadTooLarge` over `MAX_BODY_BYTES`, `Rejected("invalid_payload", [...])` for an
    empty, non-UTF-8 or undecodable body, non-object JSON, or keys given twice.
    """
    fields, dups = _decode(body, content_type)
    if dups:
        raise Rejected(INVALID_PAYLOAD, [_twice(key) for key in dups])
    return fields


def _twice(key: str) -> Problem:
    return {"field": key, "problem": "given more than once"}


def secret_field(fields: Mapping[str, object]) -> str | None:
    """The `secret` a decoded body carries, or None when absent or not a string."""
    value = fields.get("secret")
    return value if isinstance(value, str) else None


# --- fields to alert ---


@dataclass(frozen=True, slots=True)
class _DirectionField:
    direction: Direction  # for an order side: the direction a buy (long) or sell opens
    word: str
    is_order_side: bool


class _FieldProblem(ValueError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.name = name


def _direction(raw: object) -> _DirectionField:
    word = _choice(raw, _DIRECTIONS)
    direction, is_side = _DIRECTIONS[word]
    return _DirectionField(direction, word, is_side)


def _action(raw: object) -> Action:
    return _ACTIONS[_choice(raw, _ACTIONS)]


def _position(raw: object) -> MarketPosition:
    return _POSITIONS[_choice(raw, _POSITIONS)]


class _Collector:
    """Parses fields one by one, noting every problem instead of stopping at the first."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self.fields = fields
        self.problems: list[Problem] = []

    def take(self, name: str, parser: Callable[[object], T], required: bool = False) -> T | None:
        raw = self.fields.get(name)
        if raw is None:
            if required:
                self.note(name, "required")
            return None
        try:
            return parser(raw)
        except ValueError as exc:
            self.note(name, str(exc))
            return None

    def note(self, name: str, problem: str) -> None:
        self.problems.append({"field": name, "problem": problem})

    def failed(self, *names: str) -> bool:
        return any(p["field"] in names for p in self.problems)


def _opposite(direction: Direction) -> Direction:
    return "short" if direction == "long" else "long"


def _closed_side(
    d: _DirectionField | None, mp: MarketPosition | None, prev: MarketPosition | None
) -> Direction:
    if prev is not None and prev != "flat":
        return prev
    if d is not None and not d.is_order_side:
        return d.direction
    if d is not None and mp is not None:
        return _opposite(d.direction)  # a sell closes a long, a buy closes a short
    if d is not None:
        raise _FieldProblem(
            "direction",
            f"{d.word} is an order side: for an exit give long or short (the side to close) "
            "or market_position",
        )
    if mp is not None and mp != "flat":
        return mp
    raise _FieldProblem("direction", "required: the side to close (or prev_market_position)")


def _strategy_move(
    d: _DirectionField | None, mp: Direction, prev: MarketPosition | None
) -> tuple[Direction, Action]:
    if d is None or d.direction == mp:
        return mp, "entry"
    if not d.is_order_side:
        raise _FieldProblem("direction", f"{d.word} contradicts market_position {mp}")
    if prev is None or prev == mp:
        return mp, "exit"  # an order against the side that stays open: a partial close
    raise _FieldProblem("direction", f"a {d.word} cannot move the position from {prev} to {mp}")


def _resolve(
    d: _DirectionField | None,
    action: Action | None,
    mp: MarketPosition | None,
    prev: MarketPosition | None,
) -> tuple[Direction, Action]:
    """The alert's direction and action from the direction/action/position fields."""
    if action == "exit" or mp == "flat":
        return _closed_side(d, mp, prev), "exit"
    if mp is None:
        if d is None:
            raise _FieldProblem("direction", "required")
        return d.direction, "entry"
    return _strategy_move(d, mp, prev)


def _resolve_noting(
    c: _Collector,
    d: _DirectionField | None,
    action: Action | None,
    mp: MarketPosition | None,
    prev: MarketPosition | None,
) -> tuple[Direction, Action] | None:
    if c.failed("direction", "action", "market_position", "prev_market_position"):
        return None  # a field it depends on is already reported
    try:
        return _resolve(d, action, mp, prev)
    except _FieldProblem as exc:
        c.note(exc.name, str(exc))
        return None


def alert_from_fields(fields: Mapping[str, object]) -> ParsedAlert:
    """Validate decoded fields (see `decode_fields`) into a `ParsedAlert`.

    Raises `Rejected("invalid_payload", [{field, problem}, ...])` listing every problem.
    """
    c = _Collector(fields)
    symbol = c.take("symbol", _symbol, required=True)
    direction = c.take("direction", _direction)
    timeframe = c.take("timeframe", _timeframe, required=True)
    bar_time = c.take("timestamp", parse_bar_time, required=True)
    action = c.take("action", _action)
    mp = c.take("market_position", _position)
    prev = c.take("prev_market_position", _position)
    price = c.take("price", _price)
    strategy = c.take("strategy", _strategy)
    secret = c.take("secret", _secret)
    resolved = _resolve_noting(c, direction, action, mp, prev)
    if symbol is None or timeframe is None or bar_time is None or resolved is None:
        raise Rejected(INVALID_PAYLOAD, c.problems)
    if c.problems:
        raise Rejected(INVALID_PAYLOAD, c.problems)
    alert = Alert(symbol, resolved[0], timeframe, bar_time, resolved[1], mp, prev, price, strategy)
    return ParsedAlert(alert, secret)


def parse_alert(body: bytes, content_type: str | None) -> ParsedAlert:
    """Parse a raw webhook body into an `Alert` and its secret, whatever the Content-Type.

    Raises `PayloadTooLarge` over `MAX_BODY_BYTES`; otherwise only
    `Rejected("invalid_payload", [{"field": ..., "problem": ...}, ...])`, listing every
    problem found (field `body` when the body itself cannot be read).
    """
    fields, dups = _decode(body, content_type)
    try:
        parsed = alert_from_fields(fields)
    except Rejected as exc:
        raise Rejected(INVALID_PAYLOAD, [_twice(k) for k in dups] + list(exc.detail)) from None
    if dups:
        raise Rejected(INVALID_PAYLOAD, [_twice(k) for k in dups])
    return parsed


# --- masking for the event log ---

_SENSITIVE_PART = r"secret|token|passw(?:or)?d|passphrase|api[-_]?key|authorization|signature"
_SENSITIVE_KEY = re.compile(_SENSITIVE_PART, re.IGNORECASE)
# In text that did not decode: a sensitive key, `=` or `:`, then either a complete JSON
# string followed by a delimiter, or everything up to the end of the line (over-masking
# is harmless, leaving part of a secret is not).
_SENSITIVE_TEXT = re.compile(
    rf"""(?P<key>["']?[\w.-]*(?:{_SENSITIVE_PART})[\w.-]*["']?)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\\r\n]|\\.)*"(?=\s*(?:[,}\]]|$))|[^\r\n]*)""",
    re.IGNORECASE | re.MULTILINE,
)


def is_sensitive_key(key: str) -> bool:
    """True for a key whose value is never logged: it names a secret, token, password,
    passphrase, API key, authorization or signature (case-insensitive, anywhere in it)."""
    return _SENSITIVE_KEY.search(key) is not None


def _replace_known(text: str, known: tuple[str, ...]) -> str:
    for value in known:
        text = text.replace(value, MASK)
    return text


def _mask_mapping(mapping: Mapping[str, object], known: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in mapping.items():
        name = str(key)
        out[_mask_text(name, known)] = MASK if is_sensitive_key(name) else _mask_tree(value, known)
    return out


def _mask_tree(value: object, known: tuple[str, ...]) -> object:
    if isinstance(value, dict):
        return _mask_mapping(value, known)
    if isinstance(value, list):
        return [_mask_tree(v, known) for v in value]
    if isinstance(value, str):
        # A value may itself hold `secret=...` text (a mangled body, a pasted template).
        return _mask_text(value, known)
    return value


def _mask_text(text: str, known: tuple[str, ...]) -> str:
    masked = _SENSITIVE_TEXT.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    return _replace_known(masked, known)


def masked_payload(
    body: bytes, content_type: str | None = None, also_mask: Iterable[str] = ()
) -> dict[str, object] | str:
    """The body as it may be written to the event log: nothing secret left in it.

    A body that decodes (as `decode_fields` reads it) comes back as a mapping in which the
    value of every sensitive key (`is_sensitive_key`), at any depth, is `MASK`. Any other
    body comes back as text with each sensitive `key=value` / `"key": value` masked to
    the end of its JSON string or line; keys and string values of a decoded body get the
    same text masking. Every occurrence of a value in `also_mask` (the
    configured secrets, say) is replaced by `MASK` too. A body over `MAX_BODY_BYTES` is
    not kept: a short note of its size stands in for it.
    """
    known = tuple(sorted({s for s in also_mask if s}, key=len, reverse=True))
    if len(body) > MAX_BODY_BYTES:
        return f"<{len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit: not kept>"
    try:
        fields, _ = _decode(body, content_type)
        return _mask_mapping(fields, known)
    except (Rejected, RecursionError):
        return _mask_text(body.decode("utf-8", errors="replace"), known)
