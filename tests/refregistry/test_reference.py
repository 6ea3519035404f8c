"""Names, tags and digests against the distribution spec's grammar."""
import re

import pytest
from hypothesis import given, strategies as st

from reference_runtime.registry.reference import (DigestError, digest_of, looks_like_digest, parse_digest,
                                                  valid_name, valid_tag)

COMPONENT = st.from_regex(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) < 40)


@given(st.lists(COMPONENT, min_size=1, max_size=4))
def test_spec_names_are_valid(components):
    assert valid_name("/".join(components))


@given(st.text(min_size=1, max_size=30))
def test_names_outside_the_grammar_are_invalid(text):
    spec = re.fullmatch(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", text)
    assert valid_name(text) == (spec is not None)


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a..b", "-a", "a-", "a___b", "_a", "a/_layers",
                                  "a:b", "a b", "a" * 256])
def test_invalid_names(name):
    assert not valid_name(name)


def test_name_length_limit():
    assert valid_name("a" * 255) and not valid_name("a" * 256)


@given(st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", fullmatch=True))
def test_spec_tags_are_valid(tag):
    assert valid_tag(tag)


@pytest.mark.parametrize("tag", ["", ".a", "-a", "a" * 129, "a/b", "a:b", "a b"])
def test_invalid_tags(tag):
    assert not valid_tag(tag)


def test_parse_sha256_and_sha512():
    assert str(parse_digest("sha256:" + "a" * 64)) == "sha256:" + "a" * 64
    assert parse_digest("sha512:" + "0" * 128).algorithm == "sha512"


@pytest.mark.parametrize("text", ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha512:" + "a" * 64, "md5:" + "a" * 32,
                                  "sha256", "sha256:", ":abc", "sha256:" + "g" * 64, "SHA256:" + "a" * 64])
def test_invalid_digests(text):
    with pytest.raises(DigestError):
        parse_digest(text)


def test_digest_of_and_reference_kind():
    assert str(digest_of(b"")) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert digest_of(b"", "sha512").hex.startswith("cf83e1357eefb8bd")
    assert looks_like_digest("sha256:abc") and not looks_like_digest("latest")
