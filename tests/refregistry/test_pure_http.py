"""Pure HTTP pieces: byte ranges, pagination, routes, error descriptors."""
import json

import pytest

from reference_runtime.registry import errcodes
from reference_runtime.registry.httpranges import (RangeError, Unsatisfiable, parse_blob_range,
                                                   parse_content_range, upload_range_header)
from reference_runtime.registry.pagination import PaginationError, link_header, page, parse_n
from reference_runtime.registry.routes import Route, needed_access, route
from reference_runtime.registry.tokens import Access


@pytest.mark.parametrize("value,expected", [("0-0", (0, 0)), ("0-1023", (0, 1023)), ("bytes 10-20", (10, 20)),
                                            ("bytes=10-20", (10, 20)), ("5-9/100", (5, 9)), (" 1-2 ", (1, 2))])
def test_content_range(value, expected):
    assert parse_content_range(value) == expected


@pytest.mark.parametrize("value", ["", "5", "5-", "-5", "9-5", "a-b", "0-1,2-3"])
def test_malformed_content_range(value):
    with pytest.raises(RangeError):
        parse_content_range(value)


def test_upload_range_header_is_inclusive():
    assert upload_range_header(1) == "0-0"
    assert upload_range_header(1024) == "0-1023"
    assert upload_range_header(0) == "0-0"  # distribution's answer for an empty session


@pytest.mark.parametrize("value,expected", [("bytes=0-9", (0, 9)), ("bytes=5-", (5, 99)), ("bytes=-10", (90, 99)),
                                            ("bytes=90-200", (90, 99)), ("bytes=-500", (0, 99)),
                                            ("items=0-1", None), ("bytes=0-1,5-6", None), ("bytes=9-5", None),
                                            ("bytes=-", None)])
def test_blob_range(value, expected):
    assert parse_blob_range(value, 100) == expected


@pytest.mark.parametrize("value,size", [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                                        ("bytes=0-", 0)])
def test_unsatisfiable_blob_range(value, size):
    with pytest.raises(Unsatisfiable):
        parse_blob_range(value, size)


def test_pagination():
    items = ["a", "b", "c", "d"]
    assert page(items, n=None, last=None) == (items, None)
    assert page(items, n=2, last=None) == (["a", "b"], "b")
    assert page(items, n=2, last="b") == (["c", "d"], None)
    assert page(items, n=10, last="a") == (["b", "c", "d"], None)
    assert page(items, n=0, last=None) == ([], None)
    assert page(items, n=1, last="bb") == (["c"], "c")
    assert page(items, n=4, last=None) == (items, None)


@pytest.mark.parametrize("value,expected", [(None, None), ("", None), ("0", 0), ("25", 25)])
def test_parse_n(value, expected):
    assert parse_n(value) == expected


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_parse_n_rejects(value):
    with pytest.raises(PaginationError):
        parse_n(value)


def test_link_header():
    assert link_header("/v2/a/b/tags/list", n=2, next_last="v1") == '</v2/a/b/tags/list?n=2&last=v1>; rel="next"'


@pytest.mark.parametrize("path,expected", [
    ("/v2/", Route("base")), ("/v2", Route("base")), ("/v2/_catalog", Route("catalog")),
    ("/v2/a/b/tags/list", Route("tags", "a/b")),
    ("/v2/a/manifests/latest", Route("manifest", "a", "latest")),
    ("/v2/a/manifests/x/manifests/v1", Route("manifest", "a/manifests/x", "v1")),
    ("/v2/a/blobs/uploads/", Route("uploads", "a")), ("/v2/a/blobs/uploads", Route("uploads", "a")),
    ("/v2/a/b/blobs/uploads/1234", Route("upload", "a/b", "1234")),
    ("/v2/a/b/c/blobs/sha256:ab", Route("blob", "a/b/c", "sha256:ab")),
    ("/v2/a/referrers/sha256:ab", Route("referrers", "a", "sha256:ab")),
    ("/v2/a", None), ("/v3/", None), ("/", None), ("/v2/a/blobs/", None)])
def test_routes(path, expected):
    assert route(path) == expected


def test_needed_access():
    assert needed_access(Route("base"), "GET") == []
    assert needed_access(Route("catalog"), "GET") == [Access("registry", "catalog", ("*",))]
    assert needed_access(Route("manifest", "a", "x"), "HEAD") == [Access("repository", "a", ("pull",))]
    assert needed_access(Route("uploads", "a"), "POST") == [Access("repository", "a", ("pull", "push"))]
    assert needed_access(Route("manifest", "a", "x"), "DELETE") == [Access("repository", "a", ("delete",))]


def test_error_descriptors_are_registered_once_with_statuses():
    assert errcodes.REGISTERED["BLOB_UNKNOWN"].status == 404
    assert errcodes.REGISTERED["UNSUPPORTED"].status == 405
    assert errcodes.REGISTERED["UNAUTHORIZED"].status == 401
    assert errcodes.REGISTERED["RANGE_INVALID"].status == 416
    spec_codes = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
                  "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN",
                  "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS"}
    assert spec_codes <= set(errcodes.REGISTERED)
    for code, descriptor in errcodes.REGISTERED.items():
        assert descriptor.code == code and 400 <= descriptor.status < 500 and descriptor.message


def test_error_body_shape():
    error = errcodes.ApiError.many([(errcodes.MANIFEST_BLOB_UNKNOWN, "sha256:a"),
                                    (errcodes.MANIFEST_BLOB_UNKNOWN, "sha256:b")])
    body = json.loads(error.body())
    assert error.status == 400
    assert body == {"errors": [
        {"code": "MANIFEST_BLOB_UNKNOWN", "message": errcodes.MANIFEST_BLOB_UNKNOWN.message, "detail": "sha256:a"},
        {"code": "MANIFEST_BLOB_UNKNOWN", "message": errcodes.MANIFEST_BLOB_UNKNOWN.message, "detail": "sha256:b"}]}
    assert errcodes.ApiError(errcodes.MANIFEST_INVALID, status=413).status == 413
    assert json.loads(errcodes.ApiError(errcodes.DENIED).body())["errors"][0]["detail"] is None
