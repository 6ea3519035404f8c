"""Reference parsing and normalisation, as docker's reference package does it."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from reference_runtime.errors import StoreError
from reference_runtime.image.reference import familiar, normalise_tag, parse

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize("ref, full", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x"),
    ("user/app:v1", "docker.io/user/app:v1"),
    ("localhost/conformance/busybox:base", "localhost/conformance/busybox:base"),
    ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
    ("registry.example.com/x", "registry.example.com/x:latest"),
    ("127.0.0.1:5000/x:T_1.2-3", "127.0.0.1:5000/x:T_1.2-3"),
    (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}"),
    (f"busybox:tag@sha256:{HEX}", f"docker.io/library/busybox:tag@sha256:{HEX}"),
    ("a__b/c.d-e", "docker.io/a__b/c.d-e:latest"),
    ("Upper.example.com/x", "Upper.example.com/x:latest"),
])
def test_normalisation(ref, full):
    assert str(parse(ref)) == full


@pytest.mark.parametrize("full, short", [
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/user/app:v1", "user/app:v1"),
    ("docker.io/library/a/b:t", "library/a/b:t"),
    ("localhost/conformance/busybox:base", "localhost/conformance/busybox:base"),
])
def test_familiar_form(full, short):
    assert familiar(full) == short


@pytest.mark.parametrize("bad", ["", ":tag", "a:", "a::b", "a/", "/a", "a//b", "-a", "a-", "a@sha256:short",
                                 "a b", "a:" + "t" * 129, "a:-tag", "a..b", "a@md5:" + "0" * 32])
def test_invalid_reference_format(bad):
    with pytest.raises(StoreError, match="^invalid reference format"):
        parse(bad)


def test_uppercase_repository_is_named():
    with pytest.raises(StoreError, match="repository name must be lowercase"):
        parse("BusyBox")


def test_64_hex_is_not_a_name():
    with pytest.raises(StoreError, match="cannot specify 64-byte hexadecimal strings"):
        parse(HEX)


def test_tag_target_refuses_digest():
    with pytest.raises(StoreError):
        normalise_tag(f"busybox@sha256:{HEX}")


component = st.from_regex(r"\A[a-z0-9]+(?:[._-][a-z0-9]+)?\Z")
tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")


@given(st.lists(component, min_size=1, max_size=3), tag)
def test_normalisation_is_idempotent(components, t):
    ref = parse("/".join(components) + ":" + t)
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref
    assert ref.tag == t


@pytest.mark.parametrize("bad", ["busybox\n", "busybox:latest\n", f"busybox@sha256:{HEX}\n"])
def test_trailing_newline_is_not_accepted(bad):
    with pytest.raises(StoreError):
        parse(bad)
