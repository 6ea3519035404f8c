"""The registry bench's raw-socket client and its null registry
(conformance/bench/blobclient.py), against a real refregistry: what the
client pushes is stored byte for byte, and the null registry answers every
step of a push and a pull without storing anything."""
import hashlib

import pytest

from conformance.bench.blobclient import BlobClient, BlobSource, NullRegistryProcess, TransferError

SIZE = (3 << 20) + 5


@pytest.fixture
def source(tmp_path):
    src = BlobSource(tmp_path / "blob", SIZE)
    yield src
    src.close()


def test_blobs_differ_by_their_tail_and_hash_to_their_digest(source):
    a, b = source.blob(1), source.blob(2)
    assert a.digest != b.digest and a.size == b.size == SIZE
    data = (source.path.read_bytes()[:SIZE - 8] + a.tail)
    assert a.digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_chunked_push_and_pull_against_refregistry(source, plain, client):
    c = BlobClient(plain.url)
    one, two = source.blob(1), source.blob(2)
    c.push("bench/client", one)
    c.push_chunked("bench/client", two, 1 << 20)
    for blob in (one, two):
        assert c.pull("bench/client", blob.digest) == SIZE
        got = client.get(f"/v2/bench/client/blobs/{blob.digest}").content
        assert "sha256:" + hashlib.sha256(got).hexdigest() == blob.digest
    with pytest.raises(TransferError, match="answered 404"):
        c.pull("bench/client", "sha256:" + "0" * 64)


def test_null_registry_takes_pushes_and_serves_its_source(source):
    null = NullRegistryProcess(source.path)
    try:
        c = BlobClient(null.url)
        c.push("any/name", source.blob(1))
        c.push_chunked("any/name", source.blob(2), 1 << 20)
        assert c.pull("any/name", "sha256:" + "1" * 64) == SIZE
        assert c.request("HEAD", "/v2/any/name/blobs/sha256:" + "1" * 64).status == 404  # pushers must upload
    finally:
        null.stop()
    assert null.process.returncode is not None
