"""Repository names and tags: the spec's grammars, checked with generated
valid and invalid values, and the manifest size limit."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings

from conformance import strategies
from conformance.registry_client import OCI_MANIFEST, config_blob, digest, error_codes, error_shape_problems, image_manifest

from .conftest import ERROR_CODES, NAMES, PUSH_MANIFESTS, describe

# Registry round trips per example: few, and the same ones on every run (a
# deviation recorded against them must fail every time).
EXAMPLES = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.spec(NAMES, "every name matching [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/...)* can be pushed to and pulled from")
@EXAMPLES
@given(name=strategies.repository_names())
@example(name="a")
@example(name="a__b--c.d/e-f_g")
def test_valid_repository_names_are_accepted(registry, repo, name):
    full = f"{repo}/{name}"
    with registry.client() as c:
        config = config_blob(full)
        c.push_blob(full, config)
        manifest = image_manifest(config, [])
        put = c.push_manifest(full, "v1", manifest, OCI_MANIFEST)
        assert put.status_code == 201, describe(put)
        got = c.get_manifest(full, "v1")
        assert got.status_code == 200 and got.content == manifest, describe(got)


@pytest.mark.spec(ERROR_CODES, "NAME_INVALID: a name outside the grammar (or 256+ characters) is refused with 400 NAME_INVALID "
                               "(distribution's api.md, initiate blob upload: 400 Invalid Name or Digest)")
@EXAMPLES
@given(name=strategies.invalid_repository_names())
@example(name="Upper")
@example(name="a..b")
def test_invalid_repository_names_are_refused(registry, repo, name):
    full = f"{repo}/{name}"
    with registry.client() as c:
        r = c.post(f"/v2/{full}/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 400, describe(r)
        assert "NAME_INVALID" in error_codes(r), describe(r)


@pytest.mark.spec(NAMES, "every tag matching [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} can be pushed, listed and pulled")
@EXAMPLES
@given(tag=strategies.tags())
@example(tag="_")
@example(tag="A" * 128)
def test_valid_tags_are_accepted(registry, repo, tag):
    with registry.client() as c:
        config = config_blob(repo)
        manifest = image_manifest(config, [])
        if c.head(f"/v2/{repo}/blobs/{digest(config)}").status_code != 200:
            c.push_blob(repo, config)
        put = c.push_manifest(repo, tag, manifest, OCI_MANIFEST)
        assert put.status_code == 201, describe(put)
        got = c.get_manifest(repo, tag)
        assert got.status_code == 200 and got.content == manifest, describe(got)
        listed = c.get(f"/v2/{repo}/tags/list")
        assert tag in listed.json().get("tags", []), describe(listed)


@pytest.mark.spec(ERROR_CODES, "TAG_INVALID: a manifest PUT under a tag outside the grammar is refused; the tag is not created")
@EXAMPLES
@given(tag=strategies.invalid_tags())
@example(tag="-leading-dash")
@example(tag="a" * 129)
def test_invalid_tags_are_refused(registry, repo, tag):
    with registry.client() as c:
        config = config_blob(repo)
        if c.head(f"/v2/{repo}/blobs/{digest(config)}").status_code != 200:
            c.push_blob(repo, config)
        put = c.push_manifest(repo, tag, image_manifest(config, []), OCI_MANIFEST)
        assert put.status_code == 400, describe(put)
        assert "TAG_INVALID" in error_codes(put), describe(put)


@pytest.mark.spec(PUSH_MANIFESTS, "a manifest over the 4 MiB limit is refused with 413 Payload Too Large and not stored")
def test_manifest_over_4_mib_gives_413(registry, repo):
    config = config_blob("big")
    with registry.client() as c:
        c.push_blob(repo, config)
        big = image_manifest(config, [], annotations={"padding": "x" * (4 * 1024 * 1024 + 1024)})
        put = c.push_manifest(repo, "big", big, OCI_MANIFEST)
        assert put.status_code == 413, describe(put)
        assert not error_shape_problems(put), describe(put)
        assert c.get_manifest(repo, digest(big)).status_code == 404
