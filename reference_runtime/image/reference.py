"""Image references: parsing and normalisation as docker's
``distribution/reference`` package does it. Pure (``re`` only: it is on the
``refengine run`` hot path).

``busybox`` is ``docker.io/library/busybox:latest``; ``localhost/x/y:t`` and
``registry:5000/x`` keep their domain; the familiar form drops
``docker.io/`` and ``library/`` again for display.

>>> str(parse("busybox"))
'docker.io/library/busybox:latest'
>>> parse("localhost:5000/a/b@sha256:" + "0" * 64).familiar_name
'localhost:5000/a/b'
"""

from __future__ import annotations

import re

from ..errors import StoreError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE_PATTERN = rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?\Z"
_compiled: list[re.Pattern] = []


def _reference_re() -> re.Pattern:
    """The compiled grammar, built on first use: resolving a stored tag does not need it."""
    if not _compiled:
        _compiled.append(re.compile(_REFERENCE_PATTERN, re.ASCII))
    return _compiled[0]


def _is_hex64(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


class Reference:
    """A normalised reference: full ``domain/path`` name plus tag and/or digest (immutable).

    A plain class, not a dataclass: importing ``dataclasses`` costs more
    than the whole ``refengine run`` lookup this module serves.
    """

    __slots__ = ("name", "tag", "digest")

    def __init__(self, name: str, tag: str | None = None, digest: str | None = None):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, key, value):
        raise AttributeError("Reference is immutable")

    def __eq__(self, other) -> bool:
        return isinstance(other, Reference) and (self.name, self.tag, self.digest) == (other.name, other.tag, other.digest)

    def __hash__(self) -> int:
        return hash((self.name, self.tag, self.digest))

    def __repr__(self) -> str:
        return f"Reference(name={self.name!r}, tag={self.tag!r}, digest={self.digest!r})"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def familiar_name(self) -> str:
        return familiar(self.name)

    @property
    def familiar(self) -> str:
        """Docker's display form, e.g. ``busybox:latest``."""
        return familiar(str(self))


def familiar(name: str) -> str:
    """Drop ``docker.io/`` and ``docker.io/library/`` from a normalised name or ref."""
    if name.startswith(DEFAULT_DOMAIN + "/"):
        rest = name[len(DEFAULT_DOMAIN) + 1:]
        if rest.startswith(OFFICIAL_PREFIX) and "/" not in rest[len(OFFICIAL_PREFIX):].split(":")[0].split("@")[0]:
            rest = rest[len(OFFICIAL_PREFIX):]
        return rest
    return name


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise *ref*; a bare name gets ``:latest`` unless *default_tag* is False.

    Raises :class:`StoreError` with docker's messages for bad input.
    """
    if not isinstance(ref, str) or not ref:
        raise StoreError("invalid reference format")
    if _is_hex64(ref):
        raise StoreError(f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings")
    m = _reference_re().match(ref)
    if not m:
        # docker names the common mistake instead of the generic message
        if _reference_re().match(ref.lower()):
            raise StoreError("invalid reference format: repository name must be lowercase")
        raise StoreError("invalid reference format")
    raw_name, tag, digest = m.groups()
    domain, remainder = _split_domain(raw_name)
    if remainder.lower() != remainder:
        raise StoreError("invalid reference format: repository name must be lowercase")
    name = f"{domain}/{remainder}"
    if len(name) > NAME_MAX:
        raise StoreError(f"invalid reference format: repository name must not be more than {NAME_MAX} characters")
    if digest is not None and not digest.startswith("sha256:"):
        # only sha256 digests can be verified; docker rejects the rest too
        raise StoreError("invalid reference format")
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise StoreError("invalid reference format")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(name, tag, digest)


def normalise_tag(ref: str) -> str:
    """``name:tag`` in full form for a reference used as a tag target; digests refused."""
    parsed = parse(ref)
    if parsed.digest is not None:
        raise StoreError("refusing to create a tag with a digest reference")
    return str(parsed)
