"""Discovery: tag lists and the catalog with n/last pagination and Link
headers; the referrers API."""

from __future__ import annotations

import json
import random

import pytest

from conformance.registry_client import (OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, canonical, config_blob, descriptor,
                                         digest, error_shape_problems, image_manifest, next_link)

from .conftest import CATALOG, LIST_TAGS, PAGINATION, PUSH_WITH_SUBJECT, REFERRERS, describe

TAGS = ["a", "b1", "b2", "c", "v1.0", "v10", "v2", "z_last"]
PAGE_LIMIT = 40  # bound on Link hops


def tagged_repo(c, repo: str) -> None:
    config = config_blob(repo)
    c.push_blob(repo, config)
    manifest = image_manifest(config, [])
    for tag in random.Random(repo).sample(TAGS, len(TAGS)):  # pushed out of order on purpose
        r = c.push_manifest(repo, tag, manifest, OCI_MANIFEST)
        assert r.status_code == 201, describe(r)


def walk(c, first: str, key: str) -> list[list[str]]:
    """Follow Link rel=next from ``first``; the pages' ``key`` lists."""
    pages, url = [], first
    for _ in range(PAGE_LIMIT):
        r = c.get(c.absolute(url))
        assert r.status_code == 200, describe(r)
        pages.append(r.json().get(key) or [])
        url = next_link(r.headers.get("Link"))
        if not url:
            return pages
    raise AssertionError(f"more than {PAGE_LIMIT} pages from {first}")


@pytest.mark.spec(LIST_TAGS, "the tag list is in lexical order")
def test_tags_are_listed_in_lexical_order(registry, repo):
    with registry.client() as c:
        tagged_repo(c, repo)
        r = c.get(f"/v2/{repo}/tags/list")
        assert r.status_code == 200, describe(r)
        assert r.json() == {"name": repo, "tags": sorted(TAGS)}, describe(r)


@pytest.mark.spec(LIST_TAGS, "n=<int> gives exactly n tags while more remain, with Link rel=\"next\" to the rest")
def test_n_pages_through_all_tags_with_link(registry, repo):
    with registry.client() as c:
        tagged_repo(c, repo)
        first = c.get(f"/v2/{repo}/tags/list", params={"n": 3})
        assert first.json().get("tags") == sorted(TAGS)[:3], describe(first)
        assert next_link(first.headers.get("Link")), f"no Link rel=next on a partial page: {describe(first)}"
        pages = walk(c, f"/v2/{repo}/tags/list?n=3", "tags")
        assert [t for page in pages for t in page] == sorted(TAGS), pages
        assert all(len(page) == 3 for page in pages[:-1]) and 0 < len(pages[-1]) <= 3, pages


@pytest.mark.spec(LIST_TAGS, "last=<tag> starts the list after that tag (exclusive)")
@pytest.mark.parametrize("last,n", [("b1", None), ("b1", 2), ("b15", 2), ("z_last", 5)])
def test_last_is_exclusive(registry, repo, last, n):
    with registry.client() as c:
        tagged_repo(c, repo)
        params = {"last": last, **({"n": n} if n else {})}
        r = c.get(f"/v2/{repo}/tags/list", params=params)
        assert r.status_code == 200, describe(r)
        expected = [t for t in sorted(TAGS) if t > last][:n]
        assert (r.json().get("tags") or []) == expected, describe(r)


@pytest.mark.spec(LIST_TAGS, "n=0 MUST return an empty list and MUST NOT include a Link header")
def test_n_zero_gives_an_empty_list_without_link(registry, repo):
    with registry.client() as c:
        tagged_repo(c, repo)
        r = c.get(f"/v2/{repo}/tags/list", params={"n": 0})
        assert r.status_code == 200, describe(r)
        assert (r.json().get("tags") or []) == [], describe(r)
        assert "Link" not in r.headers, describe(r)


@pytest.mark.spec(PAGINATION, "a negative n is refused with 400 and an error body (PAGINATION_NUMBER_INVALID)")
def test_negative_n_is_refused(registry, repo):
    with registry.client() as c:
        tagged_repo(c, repo)
        r = c.get(f"/v2/{repo}/tags/list", params={"n": -1})
        assert r.status_code == 400, describe(r)
        assert not error_shape_problems(r), describe(r)


def catalog_repos(c, repo: str) -> list[str]:
    names = [f"{repo}/r{i}" for i in (3, 1, 2)]
    for name in names:
        c.push_blob(name, config_blob(name))
        manifest = image_manifest(config_blob(name), [])
        assert c.push_manifest(name, "v1", manifest, OCI_MANIFEST).status_code == 201
    return sorted(names)


@pytest.mark.spec(CATALOG, "_catalog lists repositories in lexical order; n and last page it with Link rel=\"next\"")
@pytest.mark.requires("catalog")
def test_catalog_pagination(registry, repo):
    with registry.client() as c:
        ours = catalog_repos(c, repo)
        first = c.get("/v2/_catalog", params={"n": 2, "last": repo + "/"})
        assert first.status_code == 200, describe(first)
        assert first.json().get("repositories") == ours[:2], describe(first)
        link = next_link(first.headers.get("Link"))
        assert link, f"no Link rel=next on a full page: {describe(first)}"
        second = c.get(c.absolute(link))
        assert second.status_code == 200, describe(second)
        assert (second.json().get("repositories") or [])[:1] == ours[2:], describe(second)


@pytest.mark.spec(CATALOG, "_catalog with n=0 gives an empty list and no Link")
@pytest.mark.requires("catalog")
def test_catalog_n_zero(registry, repo):
    with registry.client() as c:
        catalog_repos(c, repo)
        r = c.get("/v2/_catalog", params={"n": 0})
        assert r.status_code == 200, describe(r)
        assert (r.json().get("repositories") or []) == [] and "Link" not in r.headers, describe(r)


@pytest.mark.spec(PAGINATION, "_catalog with a negative n is refused with 400 and an error body")
@pytest.mark.requires("catalog")
def test_catalog_negative_n_is_refused(registry):
    with registry.client() as c:
        r = c.get("/v2/_catalog", params={"n": -1})
        assert r.status_code == 400, describe(r)
        assert not error_shape_problems(r), describe(r)


EMPTY = b"{}"


def artifact(c, repo: str, subject: bytes, artifact_type: str, label: str) -> bytes:
    c.push_blob(repo, EMPTY)
    layer = label.encode()
    c.push_blob(repo, layer)
    body = canonical({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor(EMPTY, OCI_EMPTY), "layers": [descriptor(layer, "application/octet-stream")],
        "subject": descriptor(subject, OCI_MANIFEST), "annotations": {"conformance": label},
    })
    r = c.push_manifest(repo, digest(body), body, OCI_MANIFEST)
    assert r.status_code == 201, describe(r)
    assert r.headers.get("OCI-Subject") == digest(subject), f"OCI-Subject missing or wrong: {describe(r)}"
    return body


@pytest.mark.spec(REFERRERS, "referrers of an unknown subject: 200, an empty image index, Content-Type the index type")
@pytest.mark.requires("referrers")
def test_referrers_of_unknown_subject_is_an_empty_index(registry, repo):
    with registry.client() as c:
        c.push_blob(repo, EMPTY)
        r = c.get(f"/v2/{repo}/referrers/{digest(b'no such subject')}")
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Content-Type") == OCI_INDEX, describe(r)
        body = r.json()
        assert body.get("schemaVersion") == 2 and body.get("mediaType") == OCI_INDEX, describe(r)
        assert body.get("manifests") == [], describe(r)


@pytest.mark.spec(PUSH_WITH_SUBJECT, "a manifest with a subject gets OCI-Subject on PUT and is listed as a referrer")
@pytest.mark.requires("referrers")
def test_referrers_list_pushed_artifacts(registry, repo):
    with registry.client() as c:
        subject, _ = c.push_image(repo, "subject", label="subject")
        sig = artifact(c, repo, subject, "application/vnd.conformance.signature", "sig")
        sbom = artifact(c, repo, subject, "application/vnd.conformance.sbom", "sbom")
        r = c.get(f"/v2/{repo}/referrers/{digest(subject)}")
        assert r.status_code == 200 and r.headers.get("Content-Type") == OCI_INDEX, describe(r)
        listed = {m["digest"]: m for m in r.json().get("manifests", [])}
        assert set(listed) == {digest(sig), digest(sbom)}, describe(r)
        for body in (sig, sbom):
            entry, doc = listed[digest(body)], json.loads(body)
            assert entry.get("mediaType") == OCI_MANIFEST and entry.get("size") == len(body), entry
            assert entry.get("artifactType") == doc["artifactType"], entry
            assert entry.get("annotations") == doc["annotations"], entry


@pytest.mark.spec(REFERRERS, "?artifactType= filters the referrers and OCI-Filters-Applied: artifactType says so")
@pytest.mark.requires("referrers")
def test_referrers_artifact_type_filter(registry, repo):
    with registry.client() as c:
        subject, _ = c.push_image(repo, "subject", label="subject-filter")
        sig = artifact(c, repo, subject, "application/vnd.conformance.signature", "sig-f")
        artifact(c, repo, subject, "application/vnd.conformance.sbom", "sbom-f")
        r = c.get(f"/v2/{repo}/referrers/{digest(subject)}", params={"artifactType": "application/vnd.conformance.signature"})
        assert r.status_code == 200, describe(r)
        assert [m["digest"] for m in r.json().get("manifests", [])] == [digest(sig)], describe(r)
        assert r.headers.get("OCI-Filters-Applied") == "artifactType", describe(r)
