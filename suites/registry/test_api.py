"""The API's common ground: the version check, and the error body of every 4xx."""

from __future__ import annotations

import pytest

from conformance.registry_client import (API_VERSION, OCI_MANIFEST, config_blob, digest, error_codes,
                                         error_shape_problems, image_manifest)

from .conftest import API_VERSION_CHECK, DETERMINING_SUPPORT, ERROR_CODES, blob, describe


@pytest.mark.spec(DETERMINING_SUPPORT, "GET /v2/ answers 200 when the registry implements the API")
def test_v2_answers_200(registry):
    with registry.client() as c:
        r = c.get("/v2/")
        assert r.status_code == 200, describe(r)


@pytest.mark.spec(API_VERSION_CHECK, "200 and 401 answers carry Docker-Distribution-API-Version: registry/2.0")
def test_api_version_header(registry):
    with registry.client() as c:
        r = c.get("/v2/")
        assert r.headers.get("Docker-Distribution-API-Version") == API_VERSION, describe(r)


@pytest.mark.spec(API_VERSION_CHECK, "the 401 of an auth-enabled registry also carries Docker-Distribution-API-Version")
@pytest.mark.requires("basic-auth")
def test_api_version_header_on_401(registry_basic):
    with registry_basic.client(anonymous=True) as c:
        r = c.get("/v2/")
        assert r.status_code == 401, describe(r)
        assert r.headers.get("Docker-Distribution-API-Version") == API_VERSION, describe(r)


def _bad_request(c, repo: str, case: str):
    """One request that must fail, the status the spec (or distribution's api.md) gives it, and the error code."""
    data = blob(100, "errors")
    octets = {"Content-Type": "application/octet-stream"}
    if case == "unknown-blob":
        return c.get(f"/v2/{repo}/blobs/{digest(b'missing' + data)}"), 404, "BLOB_UNKNOWN"
    if case == "unknown-manifest":
        c.push_blob(repo, data)  # the repository exists, the tag does not
        return c.get(f"/v2/{repo}/manifests/nosuchtag", headers={"Accept": OCI_MANIFEST}), 404, "MANIFEST_UNKNOWN"
    if case == "unknown-repository":
        return c.get(f"/v2/{repo}/never-pushed/tags/list"), 404, "NAME_UNKNOWN"
    if case == "unknown-upload":
        location = c.absolute(c.start_upload(repo).headers["Location"])
        c.delete(location)
        return c.get(location), 404, "BLOB_UPLOAD_UNKNOWN"
    if case == "invalid-manifest":
        put = c.put(f"/v2/{repo}/manifests/bad", content=b"{not json", headers={"Content-Type": OCI_MANIFEST})
        return put, 400, "MANIFEST_INVALID"
    if case == "invalid-digest":
        location = c.start_upload(repo).headers["Location"]
        return c.put(c.absolute(location, digest="sha256:xyz"), content=data, headers=octets), 400, "DIGEST_INVALID"
    if case == "invalid-name":
        return c.post(f"/v2/{repo}/UPPER-case/blobs/uploads/", headers={"Content-Length": "0"}), 400, "NAME_INVALID"
    if case == "manifest-blob-unknown":
        manifest = image_manifest(config_blob("errors"), [data])
        return c.push_manifest(repo, "m", manifest, OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN"
    raise AssertionError(f"no request for case {case}")


CASES = ["unknown-blob", "unknown-manifest", "unknown-repository", "unknown-upload", "invalid-manifest",
         "invalid-digest", "invalid-name", "manifest-blob-unknown"]


@pytest.mark.spec(ERROR_CODES, '4xx bodies: {"errors":[{"code","message","detail"}]} with the code the condition names, '
                               'on the status the endpoint documents (404 unknown content, 400 invalid input)')
@pytest.mark.parametrize("case", CASES)
def test_error_body_shape_on_4xx(registry, repo, case):
    with registry.client() as c:
        response, status, code = _bad_request(c, repo, case)
        assert response.status_code == status, describe(response)
        assert not error_shape_problems(response), f"{error_shape_problems(response)}: {describe(response)}"
        assert code in error_codes(response), describe(response)
