"""Content digests: the identity rules of every image object. Pure.

- a blob's digest is ``sha256:`` + the hex sha256 of its exact bytes;
- image ID = digest of the config bytes;
- DiffID = digest of a layer's *uncompressed* tar;
- ChainID(L0) = DiffID(L0),
  ChainID(L0..Ln) = digest(ChainID(L0..Ln-1) + " " + DiffID(Ln)).

>>> chain_ids(["sha256:" + "a" * 64])[0] == "sha256:" + "a" * 64
True
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Iterable

from ..errors import StoreError

ALGORITHM = "sha256"
_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
CHUNK = 1 << 20

#: The OCI "empty JSON" descriptor's content (``{}``) and its well-known digest.
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def digest_bytes(data: bytes) -> str:
    """The digest of *data*."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_stream(stream: BinaryIO, sink: BinaryIO | None = None) -> tuple[str, int]:
    """Digest and length of everything left in *stream*, copying it to *sink* if given."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return "sha256:" + h.hexdigest(), size


def parse_digest(value: object, what: str = "digest") -> str:
    """*value* as a validated digest; raises :class:`StoreError` otherwise.

    Only sha256 is accepted: it is what every engine writes, and accepting
    an algorithm we cannot verify would defeat content addressing.
    """
    if isinstance(value, str):
        if _DIGEST.match(value):
            return value
        if ":" in value and value.split(":", 1)[0] != ALGORITHM:
            raise StoreError(f"unsupported {what} algorithm: {value.split(':', 1)[0]!r} (only sha256)")
    raise StoreError(f"invalid {what}: {value!r}")


def chain_id(parent: str | None, diff_id: str) -> str:
    """ChainID of a layer whose lower layers have ChainID *parent* (None for the base)."""
    if parent is None:
        return diff_id
    return digest_bytes(f"{parent} {diff_id}".encode())


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainIDs of a layer stack, lowest first, one per DiffID."""
    out: list[str] = []
    parent: str | None = None
    for diff_id in diff_ids:
        parent = chain_id(parent, diff_id)
        out.append(parent)
    return out
