"""Digests and ChainIDs against vectors taken from docker 20.10 on this machine."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, strategies as st

from reference_runtime.errors import StoreError
from reference_runtime.image.digest import (EMPTY_JSON, EMPTY_JSON_DIGEST, chain_id, chain_ids, digest_bytes,
                                            digest_stream, parse_digest)

# The test image's layer and a COPY layer on top of it, built with DOCKER_BUILDKIT=0;
# the ChainIDs are the directory names docker gave them under
# /var/lib/docker/image/overlay2/layerdb/sha256/ (files `diff` and `parent`).
BASE = "sha256:f4eb17fffe306de3a5446b12b077bbd9f961ddbc83b1a3adffc348d2f015954e"
DOCKER_VECTORS = [
    ("sha256:ccdf1f144d065085a16d8232171d2457cf8d8a0348d8ecb697608c15be0fbaad",
     "sha256:336f3f8f0e4a8b43c1db18ece15502d37ba5279337c0145f3711cd04c8c02ec4"),
    ("sha256:bf5452cc415413512a3d7096eaf1eaaa02722d9e76587f078042a7ab00b0038a",
     "sha256:20691a602cff42615d9add58919a52abd8db5d769b9f8db8959592f5172fe8ba"),
    ("sha256:31a4d8e8810c4d5e3f60ad74deb99bacd82eac35d835d42908098406eba43db3",
     "sha256:21b5edb2bb586c8be0c7fb1d6f1f7d2617e18ca6a8136cb85ee715b08c81c6c5"),
]


def test_empty_json_descriptor_digest():
    assert digest_bytes(EMPTY_JSON) == EMPTY_JSON_DIGEST


def test_digest_of_empty_input():
    assert digest_bytes(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("diff_id, expected", DOCKER_VECTORS)
def test_chain_ids_match_docker(diff_id, expected):
    assert chain_ids([BASE, diff_id]) == [BASE, expected]


def test_chain_id_of_base_layer_is_its_diff_id():
    assert chain_ids([BASE]) == [BASE]
    assert chain_ids([]) == []


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=6))
def test_chain_ids_follow_the_formula(layers):
    diff_ids = [digest_bytes(layer) for layer in layers]
    chains = chain_ids(diff_ids)
    assert chains[0] == diff_ids[0]
    for i in range(1, len(diff_ids)):
        expected = "sha256:" + hashlib.sha256(f"{chains[i - 1]} {diff_ids[i]}".encode()).hexdigest()
        assert chains[i] == expected == chain_id(chains[i - 1], diff_ids[i])


@given(st.binary(max_size=4096))
def test_stream_digest_equals_bytes_digest(data):
    sink = io.BytesIO()
    assert digest_stream(io.BytesIO(data), sink) == (digest_bytes(data), len(data))
    assert sink.getvalue() == data


@pytest.mark.parametrize("bad", ["", "sha256:", "sha256:" + "A" * 64, "sha256:" + "0" * 63, "0" * 64,
                                 "md5:" + "0" * 32, None, 42, "sha256:" + "0" * 64 + "\n"])
def test_parse_digest_refuses_malformed(bad):
    with pytest.raises(StoreError):
        parse_digest(bad)


def test_parse_digest_names_the_unsupported_algorithm():
    with pytest.raises(StoreError, match="sha512"):
        parse_digest("sha512:" + "0" * 128)
