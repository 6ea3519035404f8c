"""The token issuer: scopes, grants, and JWS tokens distribution can verify."""

import base64
import json

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography import x509

from conformance import pki
from conformance.tokenserver import Access, TokenIssuer, TokenServer, decode_claims, grant, parse_scope


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("scope,expected", [
    ("repository:a/b:pull,push", Access("repository", "a/b", ("pull", "push"))),
    ("repository:localhost:5000/a:pull", Access("repository", "localhost:5000/a", ("pull",))),
    ("registry:catalog:*", Access("registry", "catalog", ("*",))),
    ("nonsense", None),
    ("repository::pull", None),
])
def test_parse_scope(scope, expected):
    assert parse_scope(scope) == expected


def test_grant_is_the_intersection_with_the_acl():
    acl = [("bob/*", ("pull", "push"))]
    assert grant(acl, Access("repository", "bob/x", ("pull", "push", "delete"))) == Access("repository", "bob/x", ("pull", "push"))
    assert grant(acl, Access("repository", "alice/x", ("pull",))) is None
    assert grant([("registry:catalog", ("*",))], Access("registry", "catalog", ("*",))) == Access("registry", "catalog", ("*",))


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_token_is_signed_by_a_key_chaining_to_the_ca(algorithm):
    ca = pki.make_ca()
    issuer = TokenIssuer(ca, issuer="iss", service="svc", algorithm=algorithm)
    token = issuer.token("alice", [Access("repository", "a", ("pull",))], lifetime=60, now=1000)
    header_b64, claims_b64, sig_b64 = token.split(".")
    header = json.loads(b64d(header_b64))
    assert header["alg"] == algorithm and header["typ"] == "JWT"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    leaf.verify_directly_issued_by(ca.cert)
    signature, signed = b64d(sig_b64), f"{header_b64}.{claims_b64}".encode()
    if algorithm == "ES256":
        assert len(signature) == 64  # raw r||s as JWS wants, not DER
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        leaf.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))
    else:
        leaf.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    claims = decode_claims(token)
    assert (claims["iss"], claims["aud"], claims["sub"], claims["exp"], claims["iat"]) == ("iss", "svc", "alice", 1060, 1000)
    assert claims["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]


@pytest.fixture
def server():
    issuer = TokenIssuer(pki.make_ca(), issuer="iss", service="svc")
    s = TokenServer(issuer, {"alice": "pw"}, {"alice": [("a/*", ("pull",))]}).start()
    yield s
    s.stop()


def test_server_grants_what_the_acl_allows(server):
    r = httpx.get(server.realm, params={"service": "svc", "scope": "repository:a/x:pull,push"}, auth=("alice", "pw"))
    assert r.status_code == 200
    assert decode_claims(r.json()["token"])["access"] == [{"type": "repository", "name": "a/x", "actions": ["pull"]}]


def test_server_refuses_wrong_passwords_and_gives_anonymous_nothing(server):
    assert httpx.get(server.realm, params={"service": "svc"}, auth=("alice", "nope")).status_code == 401
    anon = httpx.get(server.realm, params={"service": "svc", "scope": "repository:a/x:pull"})
    assert anon.status_code == 200 and decode_claims(anon.json()["token"])["access"] == []
    assert httpx.get(server.realm, params={"service": "other"}, auth=("alice", "pw")).status_code == 400
