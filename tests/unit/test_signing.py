from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KalshiAuth,
    KeyLoadError,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    sign,
    signing_message,
    verify,
)


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


def test_signing_message_excludes_query_and_uppercases_method():
    assert signing_message(1700000000000, "get", "/trade-api/v2/portfolio/orders?limit=5") == (
        b"1700000000000GET/trade-api/v2/portfolio/orders"
    )


def test_signature_verifies_with_cryptography_pss_digest_length(key):
    message = signing_message(1, "POST", "/trade-api/v2/portfolio/events/orders")
    signature = base64.b64decode(sign(key, message))
    # raises InvalidSignature if the padding parameters were wrong
    key.public_key().verify(
        signature,
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    assert verify(key.public_key(), message, sign(key, message))


def test_verify_rejects_other_message_other_key_and_garbage(key):
    message = b"1GET/trade-api/v2/x"
    signature = sign(key, message)
    assert not verify(key.public_key(), b"2GET/trade-api/v2/x", signature)
    assert not verify(generate_private_key().public_key(), message, signature)
    assert not verify(key.public_key(), message, "not base64!!")


def test_auth_flow_signs_path_with_prefix_and_without_query(key):
    auth = KalshiAuth("key-123", key, now_ms=lambda: 1234)
    request = httpx.Request("GET", "https://x.test/trade-api/v2/markets?limit=2")
    signed = next(auth.auth_flow(request))
    assert signed.headers[HEADER_KEY] == "key-123"
    assert signed.headers[HEADER_TIMESTAMP] == "1234"
    assert verify(
        key.public_key(), b"1234GET/trade-api/v2/markets", signed.headers[HEADER_SIGNATURE]
    )


def test_keys_load_from_path_and_text_and_never_show_in_errors(tmp_path, key):
    pem = private_key_pem(key)
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    assert load_private_key(path).private_numbers() == key.private_numbers()
    assert load_private_key(pem.decode()).private_numbers() == key.private_numbers()
    assert (
        load_public_key(public_key_pem(key).decode()).public_numbers()
        == key.public_key().public_numbers()
    )
    broken = pem.decode().replace("A", "B", 5)
    with pytest.raises(KeyLoadError) as err:
        load_private_key(broken)
    assert "BEGIN" not in str(err.value)
    assert broken[40:80] not in str(err.value)
    with pytest.raises(KeyLoadError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    assert "redacted" in repr(KalshiAuth("key-123", key))
