"""Who may post a webhook: shared secret, URL token, HMAC signature, source addresses.

TradingView cannot set headers, so its alerts authenticate with the `secret` field of the
body (the primary way). Other senders may instead put a token in the URL or sign the
body with HMAC-SHA256 in a header (GitHub style: `sha256=<hex>`). An optional allowlist
of source addresses (CIDR blocks allowed) narrows who may connect at all; TradingView
posts from the four addresses in `TRADINGVIEW_SOURCE_ADDRESSES`. Behind a proxy the edge
must pass the client address the proxy reports, not the proxy's own.

Secrets are compared in constant time: both sides are hashed with SHA-256 first, so the
comparison takes the same time whatever the lengths, then `hmac.compare_digest` compares
the digests. An empty expected secret never matches anything.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from functools import lru_cache

from engine.errors import Fatal

# TradingView's documented webhook source addresses.
TRADINGVIEW_SOURCE_ADDRESSES: tuple[str, ...] = (
    "52.89.214.238",
    "34.212.75.30",
    "54.218.53.128",
    "52.32.178.7",
)
SIGNATURE_PREFIX = "sha256="

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()


def check_secret(given: str | None, expected: str) -> bool:
    """True when `given` equals `expected` (constant time); None or an empty `expected`
    never matches."""
    if given is None or not expected:
        return False
    return hmac.compare_digest(_digest(given), _digest(expected))


def check_url_token(given: str | None, expected: str) -> bool:
    """True when the token from the URL equals `expected`; same rules as `check_secret`."""
    return check_secret(given, expected)


def hmac_signature(secret: bytes, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of `body` keyed with `secret`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_signature(header_value: str | None, secret: bytes, body: bytes) -> bool:
    """True when the header carries the HMAC-SHA256 of `body` under `secret`.

    Accepts `sha256=<hex>` or bare hex, either case, surrounding spaces ignored. A missing
    or malformed header, or an empty `secret`, never matches. Constant time in the value.
    """
    if header_value is None or not secret:
        return False
    text = header_value.strip()
    if text[: len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        text = text[len(SIGNATURE_PREFIX) :]
    if _HEX_DIGEST.fullmatch(text) is None:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    return hmac.compare_digest(bytes.fromhex(text), expected)


def parse_allowlist(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The allowlist as networks (`52.89.214.238`, `10.0.0.0/8`, `2001:db8::/32`).

    Raises `Fatal` naming the first entry that is not an address or CIDR block: a bad
    allowlist is a configuration error.
    """
    return _networks(tuple(entries))


@lru_cache(maxsize=32)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise Fatal(
                f"webhook allowlist entry {entry!r} is not an address or CIDR block"
            ) from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # `::ffff:52.89.214.238` is the IPv4 peer it wraps
    return address


def source_allowed(address: str, allowlist: tuple[str, ...]) -> bool:
    """True when `address` is in one of the allowlist's addresses or CIDR blocks.

    An empty allowlist allows every source; an unparsable `address` is never allowed
    (unless the allowlist is empty). Raises `Fatal` for a bad allowlist entry.
    """
    if not allowlist:
        return True
    peer = _address(address)
    if peer is None:
        return False
    return any(peer in network for network in _networks(allowlist))
