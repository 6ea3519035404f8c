"""JWT verification as distribution 2.8 does it, and the tokens refregistry issues."""
import base64
import datetime
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conformance import pki
from reference_runtime.registry import tokens
from reference_runtime.registry.tokens import Access, TokenError, parse_scope, verify

NOW = 1_900_000_000.0


@pytest.fixture(scope="module")
def ca():
    return pki.make_ca(lifetime=datetime.timedelta(days=36500))


def leaf(ca, key):
    # pki.issue takes any key type for the subject; validity must cover NOW.
    return pki.issue(ca, "token signer", key=key, lifetime=datetime.timedelta(days=36500)).cert


def claims(**overrides):
    base = tokens.issue_claims(issuer="iss", service="svc", subject="alice",
                               access=[Access("repository", "a/b", ("pull", "push"))], now=NOW, expiration=300)
    base.update(overrides)
    return base


@pytest.mark.parametrize("make_key", [lambda: rsa.generate_private_key(65537, 2048),
                                      lambda: ec.generate_private_key(ec.SECP256R1())], ids=["RS256", "ES256"])
def test_roundtrip_through_a_ca(ca, make_key):
    key = make_key()
    token = tokens.sign(claims(), key, [leaf(ca, key)])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] in ("RS256", "ES256") and len(header["x5c"]) == 1
    result = verify(token, roots=[ca.cert], issuer="iss", service="svc", now=NOW)
    assert result.subject == "alice"
    assert result.allows("repository", "a/b", "push") and not result.allows("repository", "a/b", "delete")
    assert not result.allows("repository", "a/c", "pull")


def test_self_signed_signing_cert_as_root(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = leaf(ca, key)
    assert verify(tokens.sign(claims(), key, [cert]), roots=[cert], issuer="iss", service="svc", now=NOW)


def test_audience_list(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    token = tokens.sign(claims(aud=["other", "svc"]), key, [leaf(ca, key)])
    assert verify(token, roots=[ca.cert], issuer="iss", service="svc", now=NOW)


@pytest.fixture(scope="module")
def signer(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, leaf(ca, key)


@pytest.mark.parametrize("change,message", [
    ({"iss": "evil"}, "issuer"),
    ({"aud": "other"}, "audience"),
    ({"exp": int(NOW) - 61}, "expired"),
    ({"exp": None}, "expired"),
    ({"nbf": int(NOW) + 61}, "not valid yet"),
    ({"access": [{"type": "repository", "name": 3, "actions": []}]}, "access"),
])
def test_rejected_claims(ca, signer, change, message):
    key, cert = signer
    with pytest.raises(TokenError) as info:
        verify(tokens.sign(claims(**change), key, [cert]), roots=[ca.cert], issuer="iss", service="svc", now=NOW)
    assert message in str(info.value)


def test_leeway_of_a_minute(ca, signer):
    key, cert = signer
    assert verify(tokens.sign(claims(exp=int(NOW) - 30), key, [cert]), roots=[ca.cert], issuer="iss",
                  service="svc", now=NOW)


def test_untrusted_chain(signer):
    key, cert = signer
    other = pki.make_ca("another CA", lifetime=datetime.timedelta(days=36500))
    with pytest.raises(TokenError, match="trusted root"):
        verify(tokens.sign(claims(), key, [cert]), roots=[other.cert], issuer="iss", service="svc", now=NOW)


def test_signature_by_another_key(ca, signer):
    _key, cert = signer
    with pytest.raises(TokenError, match="signature"):
        verify(tokens.sign(claims(), ec.generate_private_key(ec.SECP256R1()), [cert]), roots=[ca.cert],
               issuer="iss", service="svc", now=NOW)


def test_tampered_claims(ca, signer):
    key, cert = signer
    header, _body, signature = tokens.sign(claims(), key, [cert]).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="mallory")).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        verify(f"{header}.{forged}.{signature}", roots=[ca.cert], issuer="iss", service="svc", now=NOW)


def test_expired_certificate(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue(ca, "short", key=key, lifetime=datetime.timedelta(days=2)).cert
    with pytest.raises(TokenError, match="not valid now"):
        verify(tokens.sign(claims(), key, [cert]), roots=[ca.cert], issuer="iss", service="svc", now=NOW)


@pytest.mark.parametrize("token,message", [("abc", "not a JWT"), ("a.b.c", "JSON"),
                                           (base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
                                            + ".e30.", "algorithm"),
                                           (base64.urlsafe_b64encode(b'{"alg":"ES256"}').decode().rstrip("=")
                                            + ".e30.", "names no signing key"),
                                           (base64.urlsafe_b64encode(b'{"alg":"ES256","x5c":"x"}').decode()
                                            .rstrip("=") + ".e30.", "x5c")])
def test_malformed_tokens(ca, token, message):
    with pytest.raises(TokenError, match=message):
        verify(token, roots=[ca.cert], issuer="iss", service="svc", now=NOW)


def test_scopes():
    assert parse_scope("repository:a/b:pull,push") == Access("repository", "a/b", ("pull", "push"))
    assert parse_scope("repository:host:5000/a:pull").name == "host:5000/a"
    assert parse_scope("registry:catalog:*") == Access("registry", "catalog", ("*",))
    for bad in ("repository", "repository:a", ":a:pull"):
        with pytest.raises(TokenError):
            parse_scope(bad)


def test_libtrust_key_id_matches_docker():
    """A public key and the kid dockerd's libtrust wrote for it (/etc/docker/key.json)."""
    jwk = {"kty": "EC", "crv": "P-256", "x": "G0CL2l9wtTZ_x6gTDfrc0fMjo_46GEldZJaJ1ZIrmNQ",
           "y": "lPs8ZE5HD10PSb_qhfq9vo0Yn-JIEntugz8I0pyUHmw"}
    assert tokens.key_id(tokens._jwk_public_key(jwk)) == "SEPW:YB5V:YC52:ZMN6:DDBP:LDES:MFBX:ILGO:QQS5:YXLB:25MV:GM4L"


def _header_token(key, header: dict, body: dict) -> str:
    """A JWT with a chosen header, signed ES256 without refregistry's signer."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    signing_input = f"{enc(header)}.{enc(body)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).rstrip(b"=").decode()


def test_kid_and_jwk_of_a_root_key(ca):
    root_kid = tokens.key_id(ca.cert.public_key())
    numbers = ca.key.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}
    for header in ({"alg": "ES256", "kid": root_kid}, {"alg": "ES256", "jwk": jwk}):
        assert verify(_header_token(ca.key, header, claims()), roots=[ca.cert], issuer="iss", service="svc", now=NOW)
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenError, match="untrusted key"):
        verify(_header_token(stranger, {"alg": "ES256", "kid": tokens.key_id(stranger.public_key())}, claims()),
               roots=[ca.cert], issuer="iss", service="svc", now=NOW)
    with pytest.raises(TokenError, match="signature"):
        verify(_header_token(stranger, {"alg": "ES256", "kid": root_kid}, claims()),
               roots=[ca.cert], issuer="iss", service="svc", now=NOW)
