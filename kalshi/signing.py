"""Kalshi request signing: RSA-PSS (SHA-256, MGF1-SHA-256, salt = digest length).

The signed message is ``timestamp_ms + METHOD + path``, where the path includes
``/trade-api/v2`` and excludes the query string and body. Keys are never logged, rendered or put
into exceptions.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Generator
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "KalshiAuth",
    "KeyLoadError",
    "HEADER_KEY",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "signing_message",
    "sign",
    "verify",
    "load_private_key",
    "load_public_key",
    "generate_private_key",
    "private_key_pem",
    "public_key_pem",
]

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"


class KeyLoadError(ValueError):
    """A key file or secret that cannot be read as an RSA key (the key itself is never shown)."""


# built once: the padding and hash objects are immutable descriptions, safe to share
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_SHA256 = hashes.SHA256()


def signing_message(timestamp_ms: int, method: str, path: str) -> bytes:
    """Return the bytes Kalshi signs: ``timestamp + METHOD + path`` without the query string."""
    return f"{int(timestamp_ms)}{method.upper()}{path.split('?', 1)[0]}".encode()


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Sign ``message`` with RSA-PSS SHA-256 and return the base64 signature."""
    signature = private_key.sign(message, _PSS, _SHA256)
    return base64.b64encode(signature).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """Return whether ``signature_b64`` is a valid RSA-PSS SHA-256 signature of ``message``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, message, _PSS, _SHA256)
    except InvalidSignature:
        return False
    return True


def load_private_key(
    source: str | bytes | Path, password: bytes | None = None
) -> rsa.RSAPrivateKey:
    """Load an RSA private key from a PEM file path, or from the PEM text itself (a secret)."""
    if isinstance(source, Path) or (isinstance(source, str) and "-----BEGIN" not in source):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"cannot read private key file {path}: {exc.strerror}") from None
    else:
        data = source.encode() if isinstance(source, str) else source
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        raise KeyLoadError("private key is not a readable PEM RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError("private key is not an RSA key")
    return key


def load_public_key(source: str | bytes | Path) -> rsa.RSAPublicKey:
    """Load an RSA public key from a PEM file path or PEM text."""
    if isinstance(source, Path) or (isinstance(source, str) and "-----BEGIN" not in source):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"cannot read public key file {source}: {exc.strerror}") from None
    else:
        data = source.encode() if isinstance(source, str) else source
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyLoadError("public key is not a readable PEM RSA key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError("public key is not an RSA key")
    return key


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """Generate a fresh RSA key (paper accounts and tests)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """Serialize a private key as unencrypted PKCS#8 PEM (for writing a 0600 key file)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    """Serialize the public half of a key as SubjectPublicKeyInfo PEM."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _default_now_ms() -> int:
    return time.time_ns() // 1_000_000


class KalshiAuth(httpx.Auth):
    """httpx auth that signs every request with the three KALSHI-ACCESS-* headers."""

    def __init__(
        self,
        key_id: str,
        private_key: rsa.RSAPrivateKey,
        now_ms: Callable[[], int] = _default_now_ms,
    ) -> None:
        if not key_id:
            raise KeyLoadError("API key id is empty")
        self._key_id = key_id
        self._private_key = private_key
        self._now_ms = now_ms

    @property
    def key_id(self) -> str:
        """The API key id (an identifier, not a secret, but still kept out of logs)."""
        return self._key_id

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        """Return the auth headers for one request (also used for the WebSocket handshake)."""
        ts = self._now_ms()
        return {
            HEADER_KEY: self._key_id,
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: sign(self._private_key, signing_message(ts, method, path)),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers_for(request.method, request.url.path))
        yield request

    def __repr__(self) -> str:
        return "KalshiAuth(key_id=<redacted>, private_key=<redacted>)"
