"""Webhook authentication: secrets, URL tokens, HMAC signatures, source allowlists.

Only answers are checked, never timing. HMAC is checked against published vectors and
against Python's `hmac` computed independently here.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Fatal
from engine.webhook_auth import (
    TRADINGVIEW_SOURCE_ADDRESSES,
    check_secret,
    check_signature,
    check_url_token,
    hmac_signature,
    parse_allowlist,
    source_allowed,
)

FOX = b"The quick brown fox jumps over the lazy dog"
FOX_SHA256 = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
# RFC 4231, test case 2.
JEFE_SHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@pytest.mark.parametrize("check", [check_secret, check_url_token])
def test_equal_secrets_match_and_others_do_not(check: object) -> None:
    assert callable(check)
    assert check("s3cret-value", "s3cret-value") is True
    assert check("s3cret-valuE", "s3cret-value") is False
    assert check("s3cret-value ", "s3cret-value") is False
    assert check("s3cret", "s3cret-value") is False
    assert check("", "s3cret-value") is False
    assert check(None, "s3cret-value") is False
    assert check("ünïcødé-🔑", "ünïcødé-🔑") is True


@pytest.mark.parametrize("check", [check_secret, check_url_token])
def test_an_empty_expected_secret_never_matches(check: object) -> None:
    assert callable(check)
    assert check("", "") is False
    assert check(None, "") is False
    assert check("anything", "") is False


@given(st.text(), st.text())
def test_check_secret_is_string_equality_with_a_nonempty_secret(given_: str, expected: str) -> None:
    # st.text() includes lone surrogates (JSON can carry them): no error, just an answer.
    assert check_secret(given_, expected) == (given_ == expected and expected != "")
    assert check_secret(expected, expected) == (expected != "")


def test_hmac_signature_matches_published_vectors() -> None:
    assert hmac_signature(b"key", FOX) == FOX_SHA256
    assert hmac_signature(b"Jefe", b"what do ya want for nothing?") == JEFE_SHA256


@given(st.binary(min_size=1, max_size=80), st.binary(max_size=300))
def test_hmac_signature_matches_pythons_hmac(secret: bytes, body: bytes) -> None:
    reference = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert hmac_signature(secret, body) == reference
    assert check_signature(reference, secret, body)
    assert check_signature("sha256=" + reference, secret, body)
    assert check_signature("SHA256=" + reference.upper(), secret, body)
    assert not check_signature(reference, secret + b"x", body)
    assert not check_signature(reference, secret, body + b"x")


@pytest.mark.parametrize(
    "header",
    [
        FOX_SHA256,
        "sha256=" + FOX_SHA256,
        "  sha256=" + FOX_SHA256 + "\n",
        "Sha256=" + FOX_SHA256.upper(),
    ],
)
def test_signature_header_forms_accepted(header: str) -> None:
    assert check_signature(header, b"key", FOX) is True


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        FOX_SHA256[:-1],
        FOX_SHA256 + "0",
        FOX_SHA256[:-1] + "9",
        "sha1=" + FOX_SHA256,
        "sha256=sha256=" + FOX_SHA256,
        "sha256 = " + FOX_SHA256,
        " ".join(FOX_SHA256[i : i + 2] for i in range(0, 64, 2)),
        "g" * 64,
        "é" * 64,
        "sha256=" + "\u0661" * 64,
    ],
)
def test_signature_headers_refused(header: str | None) -> None:
    assert check_signature(header, b"key", FOX) is False


def test_an_empty_signing_secret_never_matches() -> None:
    header = hmac.new(b"", FOX, hashlib.sha256).hexdigest()
    assert check_signature(header, b"", FOX) is False


@given(st.text(max_size=80))
def test_check_signature_never_raises(header: str) -> None:
    assert check_signature(header, b"key", FOX) is (header.strip().lower() in _FOX_FORMS)


_FOX_FORMS = {FOX_SHA256, "sha256=" + FOX_SHA256}


def test_tradingview_addresses_are_the_documented_four() -> None:
    assert TRADINGVIEW_SOURCE_ADDRESSES == (
        "52.89.214.238",
        "34.212.75.30",
        "54.218.53.128",
        "52.32.178.7",
    )
    for address in TRADINGVIEW_SOURCE_ADDRESSES:
        assert source_allowed(address, TRADINGVIEW_SOURCE_ADDRESSES)
    assert not source_allowed("52.89.214.239", TRADINGVIEW_SOURCE_ADDRESSES)
    assert not source_allowed("127.0.0.1", TRADINGVIEW_SOURCE_ADDRESSES)


def test_an_empty_allowlist_allows_everyone() -> None:
    assert source_allowed("203.0.113.9", ())
    assert source_allowed("not an address", ())


def test_cidr_blocks_ipv6_and_mapped_addresses() -> None:
    allow = ("10.0.0.0/8", "2001:db8::/32", " 192.0.2.7 ", *TRADINGVIEW_SOURCE_ADDRESSES)
    assert source_allowed("10.255.1.2", allow)
    assert not source_allowed("11.0.0.1", allow)
    assert source_allowed("192.0.2.7", allow)
    assert source_allowed("2001:db8:1::5", allow)
    assert not source_allowed("2001:db9::1", allow)
    assert source_allowed("::ffff:52.89.214.238", allow)
    assert source_allowed(" 10.0.0.1 ", allow)
    assert not source_allowed("", allow)
    assert not source_allowed("10.0.0.1:443", allow)
    assert not source_allowed("localhost", allow)


def test_a_bad_allowlist_entry_is_a_configuration_error() -> None:
    with pytest.raises(Fatal, match=re.escape("10.0.0.0/33")):
        source_allowed("10.0.0.1", ("10.0.0.0/8", "10.0.0.0/33"))
    with pytest.raises(Fatal):
        parse_allowlist(("tradingview.com",))
    assert parse_allowlist(("10.1.2.3/8",)) == (ipaddress.ip_network("10.0.0.0/8"),)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_ipv4_cidr_membership_matches_bit_arithmetic(addr: int, net: int, prefix: int) -> None:
    shift = 32 - prefix
    block = f"{ipaddress.IPv4Address(net >> shift << shift)}/{prefix}"
    expected = addr >> shift == net >> shift
    assert source_allowed(str(ipaddress.IPv4Address(addr)), (block,)) is expected
