"""Join tokens in docker swarm's format (swarmkit ``ca.GenerateJoinToken`` and
``ParseJoinToken``). Pure.

``SWMTKN-1-<digest>-<secret>``: ``digest`` is the SHA-256 of the root CA
certificate as the managers serve it (PEM), read as a big-endian integer in
base36 zero-padded to 50 characters; ``secret`` is 128 random bits in base36,
zero-padded to 25. The digest lets a joining node check the CA it downloads
without trusting the network; the secret admits it and picks its role (a
cluster has one token per role).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from .errors import SwarmError
from .ids import ALPHABET, base36

PREFIX = "SWMTKN-1-"
DIGEST_LENGTH = 50  # 36**50 > 2**256
SECRET_LENGTH = 25  # 36**25 > 2**128
TOKEN_LENGTH = len(PREFIX) + DIGEST_LENGTH + 1 + SECRET_LENGTH
INVALID_TOKEN = "invalid join token"  # swarmkit's errInvalidJoinToken


def ca_digest(ca_pem: bytes) -> str:
    """The token's digest of a root CA certificate: the bytes that ``ca.root``
    serves, hashed as they are (swarmkit hashes the PEM bundle, not the DER).

    >>> ca_digest(b"")
    '5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p'
    """
    return base36(int.from_bytes(hashlib.sha256(ca_pem).digest(), "big"), DIGEST_LENGTH)


def new_secret() -> str:
    """A fresh secret: 128 random bits in base36.

    >>> len(new_secret())
    25
    """
    return base36(secrets.randbits(128), SECRET_LENGTH)


def format_token(ca_pem: bytes, secret: str) -> str:
    """The join token for the CA certificate ``ca_pem`` and ``secret``.

    >>> len(format_token(b"-----BEGIN CERTIFICATE-----", "0" * 25))
    85
    """
    return f"{PREFIX}{ca_digest(ca_pem)}-{secret}"


def parse_token(text: str) -> tuple[str, str]:
    """``(digest, secret)`` of a join token; SwarmError("invalid join token") for
    anything else, as docker answers. FIPS tokens (``SWMTKN-2-1-``) are refused:
    this swarm has no FIPS mode.

    >>> parse_token("SWMTKN-1-" + "1" * 50 + "-" + "b" * 25) == ("1" * 50, "b" * 25)
    True
    """
    parts = text.split("-")
    if len(parts) != 4 or parts[0] != "SWMTKN" or parts[1] != "1":
        raise SwarmError(INVALID_TOKEN)
    digest, secret = parts[2], parts[3]
    if len(digest) != DIGEST_LENGTH or len(secret) != SECRET_LENGTH:
        raise SwarmError(INVALID_TOKEN)
    # swarmkit lets other characters through to a digest mismatch; refusing them here
    # says what is wrong earlier, and keeps the digest a number below 2**256
    if not set(digest + secret) <= set(ALPHABET) or int(digest, 36) >> 256:
        raise SwarmError(INVALID_TOKEN)
    return digest, secret


def matches_ca(token: str, ca_pem: bytes) -> bool:
    """Whether ``token`` was made for the CA certificate ``ca_pem`` (False for a malformed token)."""
    try:
        digest, _ = parse_token(token)
    except SwarmError:
        return False
    return hmac.compare_digest(digest, ca_digest(ca_pem))


def role_for_token(token: str, tokens: Mapping[str, str]) -> str | None:
    """The role (a key of ``tokens``, e.g. "manager"/"worker") whose token ``token``
    is, comparing in constant time; None when it is none of them."""
    found = None
    for role, expected in tokens.items():
        # every token is compared, so the time does not tell which one matched; a role
        # without a token (a store not loaded yet: a leader just restarted, replaying
        # its log) admits nobody, not the empty token
        if hmac.compare_digest(token.encode(), expected.encode()) and expected:
            found = role
    return found
