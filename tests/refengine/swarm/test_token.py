"""Join tokens: docker's format (swarmkit ca/config.go GenerateJoinToken, ParseJoinToken)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_runtime.swarm.errors import SwarmError
from reference_runtime.swarm.ids import ALPHABET
from reference_runtime.swarm.token import (
    INVALID_TOKEN, ca_digest, format_token, matches_ca, new_secret, parse_token, role_for_token,
)

CA = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
# The token docker's documentation shows (docs.docker.com swarm join-token): the shape to match.
DOCKER_DOCS_TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"


def test_token_has_dockers_shape():
    token = format_token(CA, new_secret())
    assert len(token) == len(DOCKER_DOCS_TOKEN) == 85
    assert token.startswith("SWMTKN-1-") and [len(p) for p in token.split("-")] == [6, 1, 50, 25]
    digest, secret = DOCKER_DOCS_TOKEN[9:59], DOCKER_DOCS_TOKEN[60:]
    assert parse_token(DOCKER_DOCS_TOKEN) == (digest, secret) and secret == "1awxwuwd3z9j1z3puu7rcgdbx"


def test_digest_is_the_sha256_of_the_served_bytes_in_base36():
    digest = ca_digest(CA)
    assert len(digest) == 50 and set(digest) <= set(ALPHABET)
    assert int(digest, 36) == int(hashlib.sha256(CA).hexdigest(), 16)
    assert ca_digest(CA) != ca_digest(CA.replace(b"\n", b"\r\n"))  # the bytes as served, PEM and all


def test_digest_and_secret_are_zero_padded():
    # a SHA-256 in base36 has 50 digits at most, and its first is 0 about one time in six
    digests = [ca_digest(str(i).encode()) for i in range(200)]
    assert all(len(d) == 50 for d in digests) and sum(d[0] == "0" for d in digests) > 5
    assert all(int(d, 36) == int(hashlib.sha256(str(i).encode()).hexdigest(), 16) for i, d in enumerate(digests))
    assert format_token(CA, "0" * 25).endswith("-" + "0" * 25)


def test_round_trip_and_ca_match():
    secret = new_secret()
    token = format_token(CA, secret)
    assert parse_token(token) == (ca_digest(CA), secret)
    assert matches_ca(token, CA)
    assert not matches_ca(token, CA + b"\n")
    assert not matches_ca("SWMTKN-1-bad", CA)


@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=2**128 - 1))
def test_round_trip_property(ca, number):
    from reference_runtime.swarm.ids import base36

    secret = base36(number, 25)
    assert parse_token(format_token(ca, secret)) == (ca_digest(ca), secret)


def test_secrets_are_fresh():
    secrets = {new_secret() for _ in range(100)}
    assert len(secrets) == 100 and all(set(s) <= set(ALPHABET) for s in secrets)


@pytest.mark.parametrize("text", [
    "",
    "SWMTKN-1-bad",
    "SWMTKN-1-" + "a" * 50,
    "SWMTKN-1-" + "1" * 50 + "-" + "b" * 24,
    "SWMTKN-1-" + "1" * 49 + "-" + "b" * 25,
    "SWMTKN-1-" + "1" * 50 + "-" + "b" * 25 + "-x",
    "SWMTKN-2-1-" + "1" * 50 + "-" + "b" * 25,  # FIPS tokens: no FIPS mode here
    "SWMTKN-3-" + "1" * 50 + "-" + "b" * 25,
    "swmtkn-1-" + "1" * 50 + "-" + "b" * 25,
    "SWMTKN-1-" + "1" * 49 + "A" + "-" + "b" * 25,
    "SWMTKN-1-" + "1" * 50 + "-" + "b" * 24 + "_",
    "SWMTKN-1-" + "z" * 50 + "-" + "b" * 25,  # a digest above 2**256
    " SWMTKN-1-" + "1" * 50 + "-" + "b" * 24,
])
def test_malformed_tokens_are_refused_with_dockers_words(text):
    with pytest.raises(SwarmError, match=f"^{INVALID_TOKEN}$"):
        parse_token(text)


def test_role_for_token():
    tokens = {"manager": format_token(CA, new_secret()), "worker": format_token(CA, new_secret())}
    assert role_for_token(tokens["manager"], tokens) == "manager"
    assert role_for_token(tokens["worker"], tokens) == "worker"
    assert role_for_token(format_token(CA, new_secret()), tokens) is None
    assert role_for_token("", tokens) is None
    assert role_for_token("SWMTKN-1-é", tokens) is None
