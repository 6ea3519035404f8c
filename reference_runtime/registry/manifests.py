"""Manifest media types, validation and references, pure.

Parses what a client PUTs into the facts the registry needs: its media type,
the blobs and child manifests it references (checked to exist before it is
stored, and marked by GC), its ``subject`` (for the referrers API) and the
descriptor the referrers API lists it with.

>>> m = parse_manifest(b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}', None)
>>> m.media_type, m.is_index
('application/vnd.oci.image.index.v1+json', True)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from reference_runtime.jsondepth import MAX_JSON_DEPTH, json_depth
from reference_runtime.registry.reference import Digest, DigestError, parse_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# Layers a registry does not hold: pushed elsewhere, referenced by URL.
FOREIGN_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Real manifests nest five levels at most; Python's parser recurses, so a body
# nested thousands deep would end in RecursionError (a 500) instead of a 400,
# and one just under the parser's limit would overflow later, when it is dumped
# again (the referrers API lists annotations). Go's encoding/json stops at 10000.


class ManifestError(ValueError):
    """The bytes are not a manifest the registry accepts."""


@dataclass(frozen=True)
class Manifest:
    media_type: str
    blobs: tuple[Digest, ...] = ()
    children: tuple[Digest, ...] = ()
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict | None = field(default=None, hash=False, compare=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _bare_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def load_json(data: bytes | str, what: str, error: type[ValueError] = ValueError):
    """``json.loads`` that raises *error* (never RecursionError) for bodies nested deeper than
    :data:`MAX_JSON_DEPTH`, as for any other invalid JSON."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise error(f"{what} is not valid JSON") from None
    except RecursionError:
        raise error(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise error(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    """Validate a pushed manifest. ``content_type`` is the request's header.

    The media type is the body's ``mediaType``, else a manifest type named by
    the header; when both are present they must agree (as in distribution).
    """
    body = load_json(data, "manifest", ManifestError)
    if not isinstance(body, dict):
        raise ManifestError("manifest is not a JSON object")
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError("mediaType must be a string")
    header = _bare_type(content_type)
    if declared and header in MANIFEST_TYPES and header != declared:
        raise ManifestError(f"mediaType {declared!r} does not match Content-Type {header!r}")
    media_type = declared or (header if header in MANIFEST_TYPES else None)
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in body else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestError(f"unsupported manifest media type {media_type!r}")
    if body.get("schemaVersion") != 2:
        raise ManifestError("schemaVersion must be 2")
    subject = None
    if "subject" in body:
        subject = _descriptor(body["subject"], "subject")[0]
    annotations = body.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestError("annotations must be an object")
    artifact_type = body.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError("artifactType must be a string")
    if media_type in INDEX_TYPES:
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("an index needs a manifests list")
        children = tuple(_descriptor(d, f"manifests[{i}]")[0] for i, d in enumerate(entries))
        return Manifest(media_type, children=children, subject=subject, artifact_type=artifact_type,
                        annotations=annotations)
    config = body.get("config")
    if config is None:
        raise ManifestError("an image manifest needs a config descriptor")
    config_digest, config_type = _descriptor(config, "config")
    layers = body.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("an image manifest needs a layers list")
    blobs = [config_digest]
    for i, layer in enumerate(layers):
        digest, layer_type = _descriptor(layer, f"layers[{i}]")
        if layer_type in FOREIGN_LAYER_TYPES and layer.get("urls"):
            continue
        blobs.append(digest)
    return Manifest(media_type, blobs=tuple(dict.fromkeys(blobs)), subject=subject,
                    artifact_type=artifact_type or config_type, annotations=annotations)


def _descriptor(value, where: str) -> tuple[Digest, str | None]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is not a descriptor object")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}.size must be a non-negative integer")
    media_type = value.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise ManifestError(f"{where}.mediaType must be a string")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise ManifestError(f"{where}.digest is missing")
    try:
        return parse_digest(digest), media_type
    except DigestError as exc:
        raise ManifestError(f"{where}.digest: {exc}") from None


def sniff_media_type(data: bytes) -> str:
    """The media type of a stored (already validated) manifest."""
    return parse_manifest(data, None).media_type


def accepts(accept_values: list[str], media_type: str) -> bool:
    """Whether the request's ``Accept`` headers allow ``media_type``.

    No Accept header at all means anything goes; otherwise the type (or a
    wildcard covering it) must be listed without ``q=0``.
    """
    if not accept_values:
        return True
    major = media_type.split("/", 1)[0]
    for value in accept_values:
        for item in value.split(","):
            parts = [p.strip() for p in item.split(";")]
            kind = parts[0].lower()
            if not kind:
                continue
            if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parts[1:]):
                continue
            if kind in (media_type, "*/*", f"{major}/*"):
                return True
    return False


def referrer_descriptor(manifest: Manifest, digest: Digest, size: int) -> dict:
    """How the referrers API lists a manifest (OCI distribution spec, "Listing Referrers")."""
    descriptor = {"mediaType": manifest.media_type, "digest": str(digest), "size": size}
    if manifest.artifact_type:
        descriptor["artifactType"] = manifest.artifact_type
    if manifest.annotations:
        descriptor["annotations"] = manifest.annotations
    return descriptor
