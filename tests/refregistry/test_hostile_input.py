"""refregistry against hostile input (issue 9, item 6): token ``x5c`` chains
whose issuers are not CAs or exceed their path length, and JSON nested deeper
than any real manifest or token, which must get a 400, never a 500."""
from __future__ import annotations

import datetime
import json

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reference_runtime.registry import tokens
from reference_runtime.registry.manifests import MAX_JSON_DEPTH, ManifestError, json_depth, parse_manifest
from reference_runtime.registry.tokens import Access, TokenError, verify
from refregistry_testlib import error_codes, sha256

NOW = 1_900_000_000.0
LONG = datetime.timedelta(days=36500)
RFC5280 = "https://www.rfc-editor.org/rfc/rfc5280#section-6.1.4"


def cert(subject: str, key, issuer: tuple[str, object] | None, *, ca: bool | None, path_length: int | None = None):
    """A certificate for *key*, signed by *issuer* (name, key) or self-signed; *ca* None omits BasicConstraints."""
    issuer_name, issuer_key = issuer or (subject, key)
    start = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc) - datetime.timedelta(days=1)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + LONG))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                                        critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def root():
    key = new_key()
    return key, cert("root", key, None, ca=True)


def claims():
    return tokens.issue_claims(issuer="iss", service="svc", subject="alice",
                               access=[Access("repository", "a/b", ("pull",))], now=NOW, expiration=300)


def chain_token(root, intermediates: list[dict], *, include_root: bool = False) -> str:
    """A token signed by a leaf under *intermediates* (top first: {ca, path_length}) under *root*."""
    root_key, root_cert = root
    parent = ("root", root_key)
    certs = []
    for i, spec in enumerate(intermediates):
        key = new_key()
        certs.insert(0, cert(f"intermediate {i}", key, parent, **spec))
        parent = (f"intermediate {i}", key)
    leaf_key = new_key()
    chain = [cert("token signer", leaf_key, parent, ca=False), *certs] + ([root_cert] if include_root else [])
    return tokens.sign(claims(), leaf_key, chain)


def check(token: str, root) -> tokens.Claims:
    return verify(token, roots=[root[1]], issuer="iss", service="svc", now=NOW)


@pytest.mark.spec(RFC5280, "every issuer in the path is a CA (BasicConstraints cA TRUE) and within its pathLen")
@pytest.mark.parametrize("intermediates,include_root", [
    ([], False),
    ([{"ca": True}], False),
    ([{"ca": True}], True),
    ([{"ca": True, "path_length": 1}, {"ca": True, "path_length": 0}], False),
    ([{"ca": True, "path_length": 2}, {"ca": True}, {"ca": True}], True),
], ids=["leaf-only", "one-ca", "one-ca-with-root", "pathlen-exact", "pathlen-room"])
def test_valid_chains_are_accepted(root, intermediates, include_root):
    assert check(chain_token(root, intermediates, include_root=include_root), root).subject == "alice"


@pytest.mark.spec(RFC5280, "a certificate that is not a CA cannot issue certificates")
@pytest.mark.parametrize("intermediates", [
    [{"ca": False}],
    [{"ca": None}],
    [{"ca": True}, {"ca": False}],
    [{"ca": False}, {"ca": True}],
], ids=["not-ca", "no-basic-constraints", "lower-not-ca", "upper-not-ca"])
def test_an_intermediate_that_is_not_a_ca_is_refused(root, intermediates):
    with pytest.raises(TokenError, match="is not a CA"):
        check(chain_token(root, intermediates), root)


@pytest.mark.spec(RFC5280, "pathLenConstraint bounds the intermediates that may follow a CA")
@pytest.mark.parametrize("intermediates,include_root", [
    ([{"ca": True, "path_length": 0}, {"ca": True}], False),
    ([{"ca": True, "path_length": 1}, {"ca": True}, {"ca": True}], True),
], ids=["intermediate-pathlen-0", "intermediate-pathlen-1"])
def test_a_chain_longer_than_a_path_length_is_refused(root, intermediates, include_root):
    with pytest.raises(TokenError, match="path length is limited to"):
        check(chain_token(root, intermediates, include_root=include_root), root)


@pytest.mark.spec(RFC5280, "the trust anchor's own pathLenConstraint applies to the chain under it")
def test_the_roots_path_length_applies():
    key = new_key()
    anchor = (key, cert("root", key, None, ca=True, path_length=0))
    assert check(chain_token(anchor, []), anchor)
    with pytest.raises(TokenError, match="path length is limited to 0"):
        check(chain_token(anchor, [{"ca": True}]), anchor)
    with pytest.raises(TokenError, match="path length is limited to 0"):
        check(chain_token(anchor, [{"ca": True}], include_root=True), anchor)


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def test_json_depth_is_counted_without_recursion():
    assert json_depth(1) == 0 and json_depth({"a": [1, {"b": []}]}) == 4
    assert json_depth(json.loads(deep(500))) == 500


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 5000, 200_000])
def test_deep_manifest_json_is_a_manifest_error(depth):
    body = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":' \
        + deep(depth) + "}}"
    with pytest.raises(ManifestError, match="nests deeper than"):
        parse_manifest(body.encode(), None)


@pytest.mark.parametrize("part", [0, 1], ids=["header", "claims"])
def test_deep_token_json_is_a_token_error(part):
    segments = ["e30", "e30", "AA"]
    segments[part] = tokens._b64encode(deep(100_000).encode())
    with pytest.raises(TokenError, match="nests deeper than"):
        verify(".".join(segments), roots=[], issuer="iss", service="svc", now=NOW)


MANIFEST_PUT = "https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests"


@pytest.mark.spec(MANIFEST_PUT, "an invalid manifest is refused with 400 MANIFEST_INVALID")
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 1_000_000])
def test_deep_manifest_put_is_manifest_invalid(plain, depth):
    body = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":'
            + deep(depth) + "}").encode()
    with httpx.Client(base_url=plain.url, timeout=60) as client:
        response = client.put("/v2/hostile/json/manifests/latest", content=body,
                              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert response.status_code == 400, f"deep manifest PUT answered {response.status_code}: {response.text[:300]}"
        assert error_codes(response) == ["MANIFEST_INVALID"], response.text[:300]
        digest = sha256(body)
        assert client.get(f"/v2/hostile/json/manifests/{digest}").status_code == 404
        # the server is still healthy
        assert client.get("/v2/").status_code == 200
