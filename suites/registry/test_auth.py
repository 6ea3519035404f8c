"""Authentication: Basic (htpasswd) and Bearer tokens, the challenges that
ask for them, scopes, and that nothing but /v2/ answers without them."""

from __future__ import annotations

import time

import httpx
import pytest

from conformance.registry_client import (OCI_MANIFEST, config_blob, digest, error_codes, image_manifest,
                                         parse_challenge)
from conformance import pki
from conformance.tokenserver import Access, TokenIssuer

from .conftest import HTPASSWD, MOUNT, TOKEN_AUTH, TOKEN_JWT, TOKEN_SCOPE, blob, describe


def every_endpoint(c: httpx.Client, repo: str, layer_digest: str, manifest_digest: str, upload: str):
    """(what, method, url, kwargs) for every API endpoint, on content that exists."""
    octets = {"headers": {"Content-Type": "application/octet-stream"}, "content": b"x"}
    manifest = {"headers": {"Content-Type": OCI_MANIFEST}, "content": image_manifest(config_blob(repo), [])}
    return [
        ("catalog", "GET", "/v2/_catalog", {}),
        ("tags", "GET", f"/v2/{repo}/tags/list", {}),
        ("manifest-get", "GET", f"/v2/{repo}/manifests/v1", {"headers": {"Accept": OCI_MANIFEST}}),
        ("manifest-head", "HEAD", f"/v2/{repo}/manifests/{manifest_digest}", {}),
        ("manifest-put", "PUT", f"/v2/{repo}/manifests/v2", manifest),
        ("manifest-delete", "DELETE", f"/v2/{repo}/manifests/{manifest_digest}", {}),
        ("blob-get", "GET", f"/v2/{repo}/blobs/{layer_digest}", {}),
        ("blob-head", "HEAD", f"/v2/{repo}/blobs/{layer_digest}", {}),
        ("blob-delete", "DELETE", f"/v2/{repo}/blobs/{layer_digest}", {}),
        ("upload-start", "POST", f"/v2/{repo}/blobs/uploads/", {"headers": {"Content-Length": "0"}}),
        ("upload-mount", "POST", f"/v2/{repo}-other/blobs/uploads/?mount={layer_digest}&from={repo}", {}),
        ("upload-status", "GET", upload, {}),
        ("upload-patch", "PATCH", upload, octets),
        ("upload-put", "PUT", upload + ("&" if "?" in upload else "?") + f"digest={digest(b'x')}", octets),
        ("upload-delete", "DELETE", upload, {}),
        ("referrers", "GET", f"/v2/{repo}/referrers/{manifest_digest}", {}),
    ]


def _assert_closed(reg, repo: str) -> None:
    layer = blob(2000, "closed")
    with reg.client() as c:
        _, mdigest = c.push_image(repo, "v1", label="closed", layers=[layer])
        upload = c.absolute(c.start_upload(repo).headers["Location"])
        endpoints = every_endpoint(c, repo, digest(layer), mdigest, upload)
    optional = {"catalog": "catalog", "referrers": "referrers"}  # endpoints a registry may lack altogether
    endpoints = [e for e in endpoints if e[0] not in optional or reg.profile.has(optional[e[0]])]
    answered = []
    with reg.client(anonymous=True) as anon:
        for what, method, url, kwargs in endpoints:
            r = anon.request(method, anon.absolute(url), **kwargs)
            if r.status_code != 401:
                answered.append(f"{what}: {describe(r)}")
    assert not answered, "answered without credentials:\n" + "\n".join(answered)
    with reg.client() as c:  # and nothing was changed by those requests
        got = c.get_manifest(repo, "v1")
        assert got.status_code == 200 and digest(got.content) == mdigest, describe(got)
        assert c.get(f"/v2/{repo}/blobs/{digest(layer)}").content == layer


@pytest.mark.spec(HTPASSWD, "with htpasswd auth, /v2/ without credentials gives 401 with WWW-Authenticate: Basic realm=<realm>")
@pytest.mark.requires("basic-auth")
def test_basic_challenge(registry_basic):
    with registry_basic.client(anonymous=True) as anon:
        r = anon.get("/v2/")
        assert r.status_code == 401, describe(r)
        scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
        assert scheme == "basic" and params.get("realm"), describe(r)
        if registry_basic.running:
            assert params["realm"] == "conformance-basic-realm", describe(r)
        assert "UNAUTHORIZED" in error_codes(r), describe(r)


@pytest.mark.spec(HTPASSWD, "a wrong password is refused with 401; the right one gives 200")
@pytest.mark.requires("basic-auth")
def test_basic_wrong_password_is_refused(registry_basic):
    with registry_basic.client(password="not-the-password") as bad, registry_basic.client() as good:
        r = bad.get("/v2/")
        assert r.status_code == 401, describe(r)
        assert good.get("/v2/").status_code == 200


@pytest.mark.spec(HTPASSWD, "with auth on, no endpoint but /v2/ answers a request without valid credentials (all give 401)")
@pytest.mark.requires("basic-auth")
def test_basic_no_endpoint_answers_without_credentials(registry_basic, repo):
    _assert_closed(registry_basic, repo)


@pytest.mark.spec(TOKEN_AUTH, "with token auth, no endpoint but /v2/ answers a request without a token (all give 401)")
@pytest.mark.requires("token-auth")
def test_token_no_endpoint_answers_without_a_token(registry_token, repo):
    _assert_closed(registry_token, repo)


@pytest.mark.spec(TOKEN_SCOPE, "401 carries Bearer realm, service and the scope the request needs (repository:<name>:<actions>)")
@pytest.mark.requires("token-auth")
@pytest.mark.parametrize("method,path,actions", [
    ("GET", "/v2/{repo}/tags/list", {"pull"}),
    ("GET", "/v2/{repo}/manifests/v1", {"pull"}),
    ("POST", "/v2/{repo}/blobs/uploads/", {"pull", "push"}),
], ids=["tags", "manifest", "upload"])
def test_bearer_challenge_names_realm_service_and_scope(registry_token, repo, method, path, actions):
    with registry_token.client(anonymous=True) as anon:
        r = anon.request(method, path.format(repo=repo), headers={"Content-Length": "0"} if method == "POST" else {})
        assert r.status_code == 401, describe(r)
        scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
        assert scheme == "bearer", describe(r)
        assert params.get("realm", "").startswith(("http://", "https://")) and params.get("service"), describe(r)
        kind, _, rest = params.get("scope", "").partition(":")
        name, _, wanted = rest.rpartition(":")
        assert (kind, name, set(wanted.split(","))) == ("repository", repo, actions), describe(r)
        if registry_token.running:
            assert params["realm"] == registry_token.running.token_server.realm, describe(r)
            assert params["service"] == registry_token.running.token_server.issuer.service, describe(r)


@pytest.mark.spec(TOKEN_AUTH, "a token lacking the needed action gets 401 with error=\"insufficient_scope\" and the scope needed")
@pytest.mark.requires("token-auth")
def test_insufficient_scope(registry_token, repo):
    if not registry_token.running:
        pytest.skip("needs the suite's own token issuer (--registry-impl)")
    issuer = registry_token.running.token_server.issuer
    token = issuer.token("alice", [Access("repository", repo, ("pull",))])
    with registry_token.client(anonymous=True, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 401, describe(r)
        scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
        assert scheme == "bearer" and params.get("error") == "insufficient_scope", describe(r)
        assert "push" in params.get("scope", ""), describe(r)


@pytest.mark.spec(TOKEN_JWT, "expired tokens, tokens from another issuer or for another service are refused with 401")
@pytest.mark.requires("token-auth")
@pytest.mark.parametrize("bad", ["expired", "wrong-issuer", "wrong-audience", "unsigned-by-trusted-ca"])
def test_bad_tokens_are_refused(registry_token, repo, bad):
    if not registry_token.running:
        pytest.skip("needs the suite's own token issuer (--registry-impl)")
    issuer = registry_token.running.token_server.issuer
    access = [Access("repository", repo, ("pull", "push"))]
    if bad == "expired":
        token = issuer.token("alice", access, lifetime=-3600, now=time.time() - 3600)
    elif bad == "wrong-issuer":
        token = issuer.token("alice", access, issuer="someone-else")
    elif bad == "wrong-audience":
        token = issuer.token("alice", access, audience="another-registry")
    else:
        token = TokenIssuer(pki.make_ca("untrusted"), issuer.issuer, issuer.service).token("alice", access)
    good = issuer.token("alice", access)
    with registry_token.client(anonymous=True, headers={"Authorization": f"Bearer {good}"}) as c:
        assert c.start_upload(repo).status_code == 202  # the same request with a good token works
    with registry_token.client(anonymous=True, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.start_upload(repo)
        assert r.status_code == 401, describe(r)


@pytest.mark.spec(TOKEN_AUTH, "a user granted nothing on a repository cannot read it: 401 (the token lacks the access), "
                              "no manifest, no blob")
@pytest.mark.requires("token-auth")
def test_token_user_cannot_read_other_repositories(registry_token, repo):
    if not registry_token.running:
        pytest.skip("needs two users with different grants (--registry-impl)")
    layer = blob(1000, "private")
    with registry_token.client() as alice:
        manifest, mdigest = alice.push_image(repo, "v1", label="private", layers=[layer])
    with registry_token.client(username="bob", password=registry_token.running.token_server.users["bob"]) as bob:
        for path in (f"/v2/{repo}/manifests/v1", f"/v2/{repo}/blobs/{digest(layer)}", f"/v2/{repo}/tags/list"):
            r = bob.get(path, headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 401, describe(r)
            assert parse_challenge(r.headers.get("WWW-Authenticate", ""))[0] == "bearer", describe(r)
            assert layer not in r.content and manifest not in r.content


@pytest.mark.spec(MOUNT, "a mount from a repository the caller cannot read is not done: either the fallback upload "
                         "session (202 + Location) or 401 insufficient_scope for pull on the source (token scope); "
                         "never 201, and the blob stays unknown in the target")
@pytest.mark.requires("token-auth")
def test_mount_from_an_unreadable_repository_is_not_done(registry_token, repo):
    if not registry_token.running:
        pytest.skip("needs two users with different grants (--registry-impl)")
    layer = blob(4000, "mount-private")
    bob_repo = "bob/" + repo.replace("/", "-")
    with registry_token.client() as alice:
        d = alice.push_blob(repo, layer)
    with registry_token.client(username="bob", password=registry_token.running.token_server.users["bob"]) as bob:
        r = bob.post(f"/v2/{bob_repo}/blobs/uploads/", params={"mount": d, "from": repo})
        # The two documented answers: the spec's "unable to mount the requested blob: SHOULD return a 202"
        # (an upload session), or the token protocol's 401 when the token lacks an access the request names
        # (distribution's challenge asks for pull on the source as well as pull,push on the target).
        if r.status_code == 202:
            assert r.headers.get("Location"), describe(r)
            bob.delete(bob.absolute(r.headers["Location"]))
        else:
            assert r.status_code == 401, f"expected 202 (upload session) or 401 (insufficient scope): {describe(r)}"
            scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
            assert scheme == "bearer" and params.get("error") == "insufficient_scope", describe(r)
            assert f"repository:{repo}:pull" in params.get("scope", "").split(), describe(r)
        head = bob.head(f"/v2/{bob_repo}/blobs/{d}")
        assert head.status_code == 404, describe(head)
        got = bob.get(f"/v2/{bob_repo}/blobs/{d}")
        assert got.status_code == 404 and layer not in got.content, describe(got)


def _assert_no_credentials_in_the_log(reg, repo: str, kind: str) -> None:
    if not reg.running:
        pytest.skip("needs the registry's log (--registry-impl)")
    secrets = {reg.endpoint.password}
    with reg.client() as c:
        c.push_image(repo, "v1", label="logs")
        with reg.client(password="wrong-" + reg.endpoint.password) as bad:
            bad.get(f"/v2/{repo}/tags/list")
        if kind == "token":
            secrets |= set(c.auth.tokens.values())
    log = reg.running.log_path.read_text(errors="replace")
    leaked = [s[:12] + "..." for s in secrets if s and s in log]
    assert not leaked, f"credentials in {reg.running.log_path}: {leaked}"
    assert "wrong-" + reg.endpoint.password not in log, f"a wrong password is in {reg.running.log_path}"


LOG_SPEC = "https://github.com/opencontainers/distribution-spec/blob/main/spec.md#workflow-categories"


@pytest.mark.spec(LOG_SPEC, "no password (right or wrong) ever appears in the registry's log")
@pytest.mark.requires("basic-auth")
def test_basic_credentials_never_appear_in_the_log(registry_basic, repo):
    _assert_no_credentials_in_the_log(registry_basic, repo, "basic")


@pytest.mark.spec(LOG_SPEC, "no password or token ever appears in the registry's log")
@pytest.mark.requires("token-auth")
def test_token_credentials_never_appear_in_the_log(registry_token, repo):
    _assert_no_credentials_in_the_log(registry_token, repo, "token")
