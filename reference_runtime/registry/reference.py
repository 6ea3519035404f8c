"""Repository names, tags and digests: the distribution spec's grammar, pure.

>>> parse_digest("sha256:" + "0" * 64).algorithm
'sha256'
>>> valid_name("library/busybox"), valid_tag("1.36.1-musl")
(True, True)
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# From the OCI distribution spec, "Pulling manifests".
NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
# From the OCI image spec, "Digests".
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# distribution caps a name (with the registry host) at 255 characters.
NAME_MAX = 255

HEX_LENGTH = {"sha256": 64, "sha512": 128}


class DigestError(ValueError):
    """Not a digest, or one of an algorithm the registry does not offer."""


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self):
        return hashlib.new(self.algorithm)


def valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX and NAME_RE.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def parse_digest(text: str) -> Digest:
    """A registered digest (sha256 or sha512, lower-case hex of the right length)."""
    match = DIGEST_RE.fullmatch(text)
    if match is None:
        raise DigestError(f"{text!r} is not a digest")
    algorithm, encoded = match.groups()
    if algorithm not in HEX_LENGTH:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    if len(encoded) != HEX_LENGTH[algorithm] or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise DigestError(f"{text!r} is not a valid {algorithm} digest")
    return Digest(algorithm, encoded)


def looks_like_digest(reference: str) -> bool:
    """A manifest reference with a ':' can only be meant as a digest (tags have none)."""
    return ":" in reference


def digest_of(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
