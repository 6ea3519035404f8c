"""Auth of a running refregistry: htpasswd (Basic) over TLS, and token (Bearer)
with refregistry's own token endpoint and with tokens minted elsewhere the way
distribution's token spec describes (x5c chain to rootcertbundle)."""
import base64
import json
import os
import ssl
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from conformance import pki
from conformance.htpasswd import write_htpasswd

from refregistry_testlib import Pusher, error_codes, sha256, start_server, stop_server

USERS = {"alice": "wonderland-Secret-1", "bob": "builder-Secret-2"}


def trust(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def es256_token(key, chain, claims: dict) -> str:
    """An ES256 JWT made independently of refregistry's own signer."""
    header = {"typ": "JWT", "alg": "ES256",
              "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture(scope="module")
def tls_htpasswd(tmp_path_factory):
    directory = tmp_path_factory.mktemp("htpasswd")
    ca = pki.make_ca()
    cert, key = pki.write_pem(pki.issue(ca, "refregistry", dns=["localhost"], ips=["127.0.0.1"]), directory, "server")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    htpasswd = write_htpasswd(directory / "htpasswd", USERS)
    server = start_server(directory / "srv", {
        "http": {"tls": {"certificate": str(cert), "key": str(key)}},
        "auth": {"htpasswd": {"realm": "test-realm", "path": str(htpasswd)}}})
    server.ca = directory / "ca.crt"
    yield server
    stop_server(server.process)


def test_htpasswd_challenge_and_login(tls_htpasswd):
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd)) as anonymous:
        r = anonymous.get("/v2/")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="test-realm"'
        assert error_codes(r) == ["UNAUTHORIZED"]
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("alice", "wrong")) as wrong:
        assert wrong.get("/v2/").status_code == 401
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("carol", "x")) as nobody:
        assert nobody.get("/v2/").status_code == 401
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("alice", USERS["alice"])) as c:
        assert c.get("/v2/").status_code == 200
        digest, _ = Pusher(c).image("secure/app", "v1", [b"secret layer"])
        assert c.get("/v2/secure/app/manifests/v1").headers["Docker-Content-Digest"] == digest
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("bob", USERS["bob"])) as c:
        assert c.get(f"/v2/secure/app/manifests/{digest}").status_code == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/v2/_catalog"), ("GET", "/v2/secure/app/tags/list"), ("GET", "/v2/secure/app/manifests/v1"),
    ("HEAD", "/v2/secure/app/manifests/v1"), ("PUT", "/v2/secure/app/manifests/v2"),
    ("DELETE", "/v2/secure/app/manifests/v1"), ("GET", f"/v2/secure/app/blobs/{sha256(b'secret layer')}"),
    ("POST", "/v2/secure/app/blobs/uploads/"), ("GET", "/v2/secure/app/referrers/" + sha256(b"x")),
    ("GET", "/v2/Invalid/tags/list"), ("GET", "/v2/no/such/endpoint"), ("GET", "/"),
])
def test_nothing_but_401_without_credentials(tls_htpasswd, method, path):
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd)) as c:
        r = c.request(method, path)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")


def test_credentials_never_logged(tls_htpasswd):
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("alice", USERS["alice"])) as c:
        c.get("/v2/_catalog")
    with httpx.Client(base_url=tls_htpasswd.url, verify=trust(tls_htpasswd), auth=("alice", "typo-Secret")) as c:
        c.get("/v2/_catalog")
    log = tls_htpasswd.log_text()
    assert "GET /v2/_catalog" in log
    for secret in (*USERS.values(), "typo-Secret", base64.b64encode(f"alice:{USERS['alice']}".encode()).decode()):
        assert secret not in log


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("token")
    ca = pki.make_ca("token CA")
    signer = pki.issue(ca, "refregistry token signer")
    cert, key = pki.write_pem(signer, directory, "signer")
    (directory / "roots.pem").write_bytes(ca.cert_pem)
    htpasswd = write_htpasswd(directory / "htpasswd", USERS)
    server = start_server(directory / "srv", {"auth": {"token": {
        "realm": "http://127.0.0.1/auth/token", "service": "refregistry-test", "issuer": "test-issuer",
        "rootcertbundle": str(directory / "roots.pem"), "signingkey": str(key), "signingcert": str(cert),
        "htpasswd": str(htpasswd), "expiration": 120}}})
    server.ca = ca
    yield server
    stop_server(server.process)


def get_token(server, scopes: list[str], auth=None) -> httpx.Response:
    return httpx.get(f"{server.url}/auth/token", params=[("service", "refregistry-test")] +
                     [("scope", s) for s in scopes], auth=auth)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_challenges(token_server):
    r = httpx.get(f"{token_server.url}/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="http://127.0.0.1/auth/token",service="refregistry-test"'
    r = httpx.get(f"{token_server.url}/v2/some/repo/manifests/latest")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert r.headers["WWW-Authenticate"] == ('Bearer realm="http://127.0.0.1/auth/token",service="refregistry-test",'
                                             'scope="repository:some/repo:pull"')
    r = httpx.post(f"{token_server.url}/v2/some/repo/blobs/uploads/")
    assert 'scope="repository:some/repo:pull,push"' in r.headers["WWW-Authenticate"]


def test_token_endpoint_flow(token_server):
    r = get_token(token_server, ["repository:tok/app:pull,push"], auth=("alice", USERS["alice"]))
    assert r.status_code == 200
    body = r.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 120 and body["issued_at"].endswith("Z")
    with httpx.Client(base_url=token_server.url, headers=bearer(body["token"])) as c:
        assert c.get("/v2/").status_code == 200
        digest, _ = Pusher(c).image("tok/app", "v1", [b"token layer"])
        assert c.get("/v2/tok/app/manifests/v1").headers["Docker-Content-Digest"] == digest
        r = c.get("/v2/tok/other/tags/list")
        assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="repository:tok/other:pull"' in r.headers["WWW-Authenticate"]
        r = c.delete("/v2/tok/app/manifests/v1")
        assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_pull_only_token_cannot_push(token_server):
    token = get_token(token_server, ["repository:tok/ro:pull"], auth=("bob", USERS["bob"])).json()["token"]
    r = httpx.post(f"{token_server.url}/v2/tok/ro/blobs/uploads/", headers=bearer(token))
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert 'scope="repository:tok/ro:pull,push"' in r.headers["WWW-Authenticate"]


def test_anonymous_token_grants_nothing(token_server):
    r = get_token(token_server, ["repository:tok/app:pull,push"])
    assert r.status_code == 200
    token = r.json()["token"]
    assert httpx.get(f"{token_server.url}/v2/", headers=bearer(token)).status_code == 200
    r = httpx.get(f"{token_server.url}/v2/tok/app/tags/list", headers=bearer(token))
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_token_endpoint_oauth_password_grant(token_server):
    r = httpx.post(f"{token_server.url}/auth/token", data={
        "grant_type": "password", "username": "alice", "password": USERS["alice"], "client_id": "test",
        "service": "refregistry-test", "scope": "repository:tok/oauth:pull,push"})
    assert r.status_code == 200 and r.json()["scope"] == "repository:tok/oauth:pull,push"
    token = r.json()["access_token"]
    r = httpx.post(f"{token_server.url}/v2/tok/oauth/blobs/uploads/", headers=bearer(token))
    assert r.status_code == 202
    r = httpx.post(f"{token_server.url}/auth/token", data={"grant_type": "password", "username": "alice",
                                                            "password": "wrong", "service": "refregistry-test"})
    assert r.status_code == 401
    r = httpx.post(f"{token_server.url}/auth/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 400 and error_codes(r) == ["UNSUPPORTED"]


def test_token_endpoint_refuses_bad_credentials(token_server):
    r = get_token(token_server, ["repository:tok/app:pull"], auth=("alice", "nope"))
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    r = httpx.get(f"{token_server.url}/auth/token", params={"service": "another"}, auth=("alice", USERS["alice"]))
    assert r.status_code == 403


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"iss": "test-issuer", "sub": "ext", "aud": "refregistry-test", "exp": now + 300, "nbf": now - 5,
            "iat": now, "jti": b64url(os.urandom(8)),
            "access": [{"type": "repository", "name": "ext/app", "actions": ["pull", "push"]},
                       {"type": "registry", "name": "catalog", "actions": ["*"]}]}
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def external_signer(token_server):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, pki.issue(token_server.ca, "an external token service", key=key).cert


def test_tokens_minted_elsewhere_are_accepted(token_server, external_signer):
    key, cert = external_signer
    token = es256_token(key, [cert], claims())
    with httpx.Client(base_url=token_server.url, headers=bearer(token)) as c:
        Pusher(c).image("ext/app", "v1", [b"external"])
        assert c.get("/v2/_catalog").json()["repositories"] == sorted(c.get("/v2/_catalog").json()["repositories"])
        assert "ext/app" in c.get("/v2/_catalog").json()["repositories"]


@pytest.mark.parametrize("change", [{"exp": int(time.time()) - 3600}, {"iss": "evil"}, {"aud": "other"},
                                    {"nbf": int(time.time()) + 3600}])
def test_bad_tokens_are_refused(token_server, external_signer, change):
    key, cert = external_signer
    r = httpx.get(f"{token_server.url}/v2/ext/app/tags/list", headers=bearer(es256_token(key, [cert], claims(**change))))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert error_codes(r) == ["UNAUTHORIZED"]


def test_untrusted_signer_is_refused(token_server):
    stranger = pki.make_ca("stranger")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue(stranger, "stranger signer", key=key).cert
    r = httpx.get(f"{token_server.url}/v2/ext/app/tags/list", headers=bearer(es256_token(key, [cert], claims())))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = httpx.get(f"{token_server.url}/v2/ext/app/tags/list", headers=bearer("garbage"))
    assert r.status_code == 401


def test_mount_needs_pull_on_the_source(token_server, external_signer):
    key, cert = external_signer
    owner = es256_token(key, [cert], claims(access=[{"type": "repository", "name": "mnt/src",
                                                     "actions": ["pull", "push"]}]))
    digest = Pusher(httpx.Client(base_url=token_server.url, headers=bearer(owner))).blob("mnt/src", b"private")
    no_source = es256_token(key, [cert], claims(access=[{"type": "repository", "name": "mnt/dst",
                                                         "actions": ["pull", "push"]}]))
    r = httpx.post(f"{token_server.url}/v2/mnt/dst/blobs/uploads/", params={"mount": digest, "from": "mnt/src"},
                   headers=bearer(no_source))
    assert r.status_code == 202
    both = es256_token(key, [cert], claims(access=[
        {"type": "repository", "name": "mnt/dst", "actions": ["pull", "push"]},
        {"type": "repository", "name": "mnt/src", "actions": ["pull"]}]))
    r = httpx.post(f"{token_server.url}/v2/mnt/dst/blobs/uploads/", params={"mount": digest, "from": "mnt/src"},
                   headers=bearer(both))
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/mnt/dst/blobs/{digest}"
