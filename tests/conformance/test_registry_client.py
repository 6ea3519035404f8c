"""Pure registry helpers: digests, manifests, header parsing, config, names."""

import json

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import strategies
from conformance.registry_client import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, config_blob, content_range, digest,
                                         digest_matches, error_codes, error_shape_problems, image_manifest,
                                         index_manifest, next_link, parse_challenge)
from conformance.registry_plugin import repository_name
from conformance.registry_server import registry_config


def response(status, body, content_type="application/json"):
    return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode(),
                          headers={"Content-Type": content_type})


def test_digest_matches_in_its_own_algorithm():
    assert digest_matches(digest(b"a", "sha512"), b"a") and digest_matches(digest(b"a"), b"a")
    assert not digest_matches(digest(b"a"), b"b") and not digest_matches(None, b"a") and not digest_matches("md5:x", b"a")


def test_manifests_name_their_blobs_with_the_right_types():
    config, layer = config_blob("x"), b"layer"
    doc = json.loads(image_manifest(config, [layer], media_type=DOCKER_MANIFEST))
    assert doc["config"] == {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest(config), "size": len(config)}
    assert doc["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    child = image_manifest(config, [])
    index = json.loads(index_manifest([(child, "application/vnd.oci.image.manifest.v1+json")] * 2, media_type=DOCKER_LIST))
    assert index["mediaType"] == DOCKER_LIST and [m["digest"] for m in index["manifests"]] == [digest(child)] * 2
    assert index["manifests"][0]["platform"] != index["manifests"][1]["platform"]
    assert json.loads(index_manifest([]))["mediaType"] == OCI_INDEX


@pytest.mark.parametrize("header,expected", [
    ('Basic realm="Registry Realm"', ("basic", {"realm": "Registry Realm"})),
    ('Bearer realm="https://a/token",service="r",scope="repository:x/y:pull,push",error="insufficient_scope"',
     ("bearer", {"realm": "https://a/token", "service": "r", "scope": "repository:x/y:pull,push", "error": "insufficient_scope"})),
    ("Bearer realm=https://a/token, service=r", ("bearer", {"realm": "https://a/token", "service": "r"})),
])
def test_parse_challenge(header, expected):
    assert parse_challenge(header) == expected


@pytest.mark.parametrize("header,expected", [
    ('</v2/x/tags/list?n=2&last=b>; rel="next"', "/v2/x/tags/list?n=2&last=b"),
    ('<https://r/v2/_catalog?last=a&n=1>; rel=next', "https://r/v2/_catalog?last=a&n=1"),
    ('</x>; rel="prev"', None), (None, None),
])
def test_next_link(header, expected):
    assert next_link(header) == expected


@pytest.mark.parametrize("header,expected", [("0-99", (0, 99)), ("bytes 10-19/100", (10, 19)), ("bytes=0-0", (0, 0)), ("x", None), (None, None)])
def test_content_range(header, expected):
    assert content_range(header) == expected


def test_error_shape():
    good = response(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown", "detail": {}}]})
    assert error_shape_problems(good) == [] and error_codes(good) == ["BLOB_UNKNOWN"]
    assert error_shape_problems(response(404, b"404 page not found\n", "text/plain"))[0].startswith("body is not JSON")
    assert "no non-empty 'errors'" in error_shape_problems(response(400, {"errors": []}))[0]
    assert "UPPER_CASE" in error_shape_problems(response(400, {"errors": [{"code": "bad-code", "message": ""}]}))[0]
    assert error_codes(response(400, b"<html>", "text/html")) == []


def test_registry_config_uses_distributions_keys(tmp_path):
    cfg = registry_config("127.0.0.1:1", tmp_path, delete=False, tls=(tmp_path / "c", tmp_path / "k"),
                          htpasswd=tmp_path / "h")
    assert yaml.safe_load(yaml.safe_dump(cfg)) == {
        "version": 0.1,
        "http": {"addr": "127.0.0.1:1", "tls": {"certificate": str(tmp_path / "c"), "key": str(tmp_path / "k")}},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path)}, "delete": {"enabled": False}},
        "auth": {"htpasswd": {"realm": "conformance-basic-realm", "path": str(tmp_path / "h")}},
    }
    token = {"realm": "http://t/token", "service": "s", "issuer": "i", "rootcertbundle": "/b"}
    assert registry_config("a:1", tmp_path, token=token)["auth"] == {"token": token}


@settings(max_examples=200, derandomize=True)
@given(st.text(max_size=80))
def test_repository_name_is_always_valid(test_name):
    name = repository_name("conformance", "ab12w0", test_name)
    assert strategies.NAME_RE.fullmatch(name), name


@settings(max_examples=150, derandomize=True)
@given(valid=strategies.repository_names(), invalid=strategies.invalid_repository_names(),
       tag=strategies.tags(), bad_tag=strategies.invalid_tags())
def test_strategies_generate_what_they_promise(valid, invalid, tag, bad_tag):
    assert strategies.NAME_RE.fullmatch(valid) and len(valid) <= 255
    assert not strategies.NAME_RE.fullmatch(invalid) or len(invalid) > 255
    assert strategies.TAG_RE.fullmatch(tag)
    assert not strategies.TAG_RE.fullmatch(bad_tag)
    for text in (invalid, bad_tag):
        assert not set(text) & set("?#@:"), text
    assert "/" not in bad_tag and bad_tag.strip(".")
