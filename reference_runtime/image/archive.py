"""Image archives: reading ``docker save`` / OCI-layout tars and writing the
combined form docker 25+ writes (``manifest.json`` + ``repositories`` for
old loaders, ``oci-layout`` + ``index.json`` + ``blobs/sha256/*`` for OCI
tools) in one tar.

Reading never trusts a name: every member is copied to a private staging
directory under a counter name while it is hashed; blobs named by digest
must match it, layers must match the DiffIDs of their config, manifests and
configs are validated before anything reaches the store. No member, and no
layer once decompressed, may pass the layer size limit
(:func:`~reference_runtime.image.fstree.max_layer_size`): copying stops
there, so a decompression bomb takes at most that much temporary space.
JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused (Python's parser
recurses; docker's stops at 10000 levels).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..jsondepth import MAX_JSON_DEPTH, json_depth
from ..errors import StoreError
from . import reference as refs
from .digest import chain_ids, parse_digest
from . import fstree
from .tarutil import DeclaredSize, entry_parts, open_stream, shown

MAX_JSON = 64 << 20  # manifests, indexes and configs larger than this are not real
CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class LoadedImage:
    """One image of an archive, verified: config, layers (uncompressed tar files by DiffID), tags."""

    config_bytes: bytes
    config: dict
    diff_ids: list[str]
    chain_ids: list[str]
    layer_files: dict[str, Path]
    tags: list[str] = field(default_factory=list)


@dataclass
class _Member:
    path: Path
    digest: str
    size: int


class _Archive:
    """The members of an archive tar, staged under counter names."""

    def __init__(self, work: Path, limit: int):
        self.work = work
        self.limit = limit
        self.files: dict[str, _Member] = {}
        self.links: dict[str, str] = {}
        self._uncompressed: dict[str, tuple[str, Path]] = {}
        self._n = 0

    def read(self, source: BinaryIO) -> None:
        try:
            with open_stream(source) as tar:
                for info in tar:
                    parts = entry_parts(info.name, "invalid archive: member")
                    name = "/".join(parts)
                    if info.isreg():
                        if info.size > self.limit:
                            raise StoreError(f"invalid archive: member {shown(info.name)} has {info.size} bytes, "
                                             f"more than the {self.limit} a layer may take "
                                             f"({fstree.MAX_LAYER_SIZE_ENV})")
                        self._n += 1
                        path = self.work / f"m{self._n}"
                        h = hashlib.sha256()
                        src = tar.extractfile(info)
                        with open(path, "wb") as dst:
                            while chunk := src.read(CHUNK):
                                h.update(chunk)
                                dst.write(chunk)
                        self.files[name] = _Member(path, "sha256:" + h.hexdigest(), info.size)
                    elif info.issym() or info.islnk():
                        # docker save links duplicate layers; resolve them by name, inside the archive
                        base = parts[:-1] if info.issym() else []
                        target = base + [p for p in info.linkname.split("/") if p not in ("", ".")]
                        resolved: list[str] = []
                        for p in target:
                            if p == "..":
                                if not resolved:
                                    raise StoreError(f"invalid archive: link {shown(info.name)} points outside it")
                                resolved.pop()
                            else:
                                resolved.append(p)
                        self.links[name] = "/".join(resolved)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
            raise StoreError(f"invalid archive: not a readable tar ({exc})") from None

    def member(self, name: str, what: str) -> _Member:
        if not isinstance(name, str):
            raise StoreError(f"invalid archive: {what} path {name!r} is not a string")
        key = "/".join(entry_parts(name, f"invalid archive: {what} path"))
        for _ in range(32):
            if key in self.files:
                return self.files[key]
            if key not in self.links:
                break
            key = self.links[key]
        raise StoreError(f"invalid archive: {what} {name!r} is missing")

    def json(self, name: str, what: str):
        m = self.member(name, what)
        if m.size > MAX_JSON:
            raise StoreError(f"invalid archive: {what} {name!r} is too large")
        data = m.path.read_bytes()
        too_deep = StoreError(f"invalid archive: {what} {name!r} nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            value = json.loads(data)
        except ValueError:
            raise StoreError(f"invalid archive: {what} {name!r} is not valid JSON") from None
        except RecursionError:
            raise too_deep from None
        if json_depth(value) > MAX_JSON_DEPTH:
            raise too_deep
        return value, data

    def blob(self, digest: str, what: str) -> _Member:
        digest = parse_digest(digest, f"{what} digest")
        m = self.member(f"blobs/sha256/{digest[7:]}", what)
        if m.digest != digest:
            raise StoreError(f"invalid archive: {what} blob {digest} does not match its digest "
                             f"(content is {m.digest}); the archive was modified or damaged")
        return m

    def uncompressed(self, m: _Member) -> tuple[str, Path]:
        """(DiffID, path of the plain tar) of a layer member, gunzipping if needed."""
        if m.digest in self._uncompressed:
            return self._uncompressed[m.digest]
        with open(m.path, "rb") as f:
            magic = f.read(6)
        if magic.startswith(GZIP_MAGIC):
            self._n += 1
            path = self.work / f"m{self._n}"
            try:
                with gzip.open(m.path, "rb") as src, open(path, "wb") as dst:
                    diff_id = _copy_hash(src, dst, self.limit)
            except (OSError, EOFError, zlib.error) as exc:
                raise StoreError(f"invalid archive: a gzip layer cannot be decompressed ({exc})") from None
            result = (diff_id, path)
        elif magic.startswith(ZSTD_MAGIC):
            raise StoreError("invalid archive: zstd-compressed layers are not supported")
        else:
            result = (m.digest, m.path)
        self._uncompressed[m.digest] = result
        return result


def _copy_hash(src: BinaryIO, dst: BinaryIO, limit: int) -> str:
    """Copy a tar stream while hashing it; refuse (having written at most *limit* bytes) one whose
    headers declare, or whose bytes come to, more than *limit*."""
    h = hashlib.sha256()
    declared = DeclaredSize(limit)
    written = 0
    while chunk := src.read(CHUNK):
        declared.feed(chunk)
        written += len(chunk)
        if written > limit:
            raise StoreError(f"the layer expands to more than {limit} bytes, the limit on a layer's expanded "
                             f"size ({fstree.MAX_LAYER_SIZE_ENV}); refused as a possible decompression bomb")
        h.update(chunk)
        dst.write(chunk)
    dst.flush()
    os.fsync(dst.fileno())
    return "sha256:" + h.hexdigest()


def _parse_config(data: bytes, config: object, what: str) -> list[str]:
    """The DiffIDs of a config, validating the fields the store relies on."""
    if not isinstance(config, dict):
        raise StoreError(f"invalid archive: {what} is not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise StoreError(f"invalid archive: {what} has no valid rootfs (type \"layers\" with diff_ids)")
    diff_ids = rootfs["diff_ids"]
    for d in diff_ids:
        parse_digest(d, f"DiffID in {what}")
    if config.get("os", "linux") != "linux":
        raise StoreError(f"invalid archive: {what} is for os {config.get('os')!r}, not linux")
    return diff_ids


def _image(archive: _Archive, config_bytes: bytes, config: object, layers: list[_Member], what: str) -> LoadedImage:
    diff_ids = _parse_config(config_bytes, config, what)
    if len(layers) != len(diff_ids):
        raise StoreError(f"invalid archive: {what} lists {len(diff_ids)} DiffIDs but the image has {len(layers)} layers")
    files: dict[str, Path] = {}
    for i, (member, expected) in enumerate(zip(layers, diff_ids)):
        diff_id, path = archive.uncompressed(member)
        if diff_id != expected:
            raise StoreError(f"invalid archive: layer {i} of {what} has DiffID {diff_id}, but its config says "
                             f"{expected}; the archive was modified or damaged")
        files[diff_id] = path
    return LoadedImage(config_bytes, config, list(diff_ids), chain_ids(diff_ids), files)  # type: ignore[arg-type]


def _tag_of(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        parsed = refs.parse(name)
    except StoreError:
        return None
    return None if parsed.digest else str(parsed)


def _read_docker(archive: _Archive) -> list[LoadedImage]:
    manifest, _ = archive.json("manifest.json", "manifest.json")
    if not isinstance(manifest, list):
        raise StoreError("invalid archive: manifest.json is not a list")
    images = []
    for n, item in enumerate(manifest):
        if not isinstance(item, dict) or not isinstance(item.get("Layers", []), list):
            raise StoreError(f"invalid archive: manifest.json entry {n} is malformed")
        config_name = item.get("Config")
        member = archive.member(config_name, "config")
        stem = str(config_name).rsplit("/", 1)[-1].removesuffix(".json")
        if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) and member.digest != f"sha256:{stem}":
            raise StoreError(f"invalid archive: config {config_name!r} does not match its digest "
                             f"(content is {member.digest}); the archive was modified or damaged")
        config, data = archive.json(config_name, "config")
        layers = [archive.member(p, "layer") for p in item.get("Layers") or []]
        image = _image(archive, data, config, layers, f"config {config_name!r}")
        tags = item.get("RepoTags") or []
        if not isinstance(tags, list):
            raise StoreError(f"invalid archive: RepoTags of manifest.json entry {n} is not a list")
        for tag in tags:
            key = _tag_of(tag)
            if key is None:
                raise StoreError(f"invalid archive: bad tag {tag!r} in manifest.json")
            if key not in image.tags:
                image.tags.append(key)
        images.append(image)
    return images


def _select_manifest(archive: _Archive, desc: dict, depth: int = 0) -> dict | None:
    """Follow index descriptors to one image manifest for linux on this machine."""
    media = desc.get("mediaType")
    if media in MANIFEST_TYPES:
        return desc
    if media in INDEX_TYPES and depth < 4:
        member = archive.blob(desc.get("digest"), "index")
        index, _ = archive.json(f"blobs/sha256/{member.digest[7:]}", "index")
        if not isinstance(index, dict):
            raise StoreError(f"invalid archive: index {member.digest} is not a JSON object")
        from .model import go_arch

        candidates = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
        for d in candidates:
            plat = d.get("platform") or {}
            if plat.get("os", "linux") == "linux" and plat.get("architecture", go_arch()) == go_arch():
                return _select_manifest(archive, d, depth + 1)
        return None
    return None


def _read_oci(archive: _Archive) -> list[LoadedImage]:
    layout, _ = archive.json("oci-layout", "oci-layout")
    if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
        raise StoreError("invalid archive: oci-layout has no imageLayoutVersion")
    index, _ = archive.json("index.json", "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise StoreError("invalid archive: index.json has no manifests list")
    by_manifest: dict[str, LoadedImage] = {}
    order: list[LoadedImage] = []
    for n, desc in enumerate(index["manifests"]):
        if not isinstance(desc, dict):
            raise StoreError(f"invalid archive: index.json entry {n} is malformed")
        chosen = _select_manifest(archive, desc)
        if chosen is None:
            raise StoreError(f"invalid archive: index.json entry {n} has no image for linux/{_arch()}")
        mdigest = parse_digest(chosen.get("digest"), "manifest digest")
        member = archive.blob(mdigest, "manifest")
        if isinstance(chosen.get("size"), int) and chosen["size"] != member.size:
            raise StoreError(f"invalid archive: manifest {mdigest} has size {member.size}, its descriptor says {chosen['size']}")
        image = by_manifest.get(mdigest)
        if image is None:
            manifest, _ = archive.json(f"blobs/sha256/{mdigest[7:]}", "manifest")
            if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
                    or not isinstance(manifest.get("layers"), list):
                raise StoreError(f"invalid archive: manifest {mdigest} is malformed")
            cdesc = manifest["config"]
            cmember = archive.blob(cdesc.get("digest"), "config")
            _check_size(cdesc, cmember, "config")
            config, data = archive.json(f"blobs/sha256/{cmember.digest[7:]}", "config")
            layers = []
            for ldesc in manifest["layers"]:
                if not isinstance(ldesc, dict):
                    raise StoreError(f"invalid archive: manifest {mdigest} has a malformed layer descriptor")
                if "zstd" in str(ldesc.get("mediaType", "")):
                    raise StoreError("invalid archive: zstd-compressed layers are not supported")
                lm = archive.blob(ldesc.get("digest"), "layer")
                _check_size(ldesc, lm, "layer")
                layers.append(lm)
            image = _image(archive, data, config, layers, f"config {cmember.digest}")
            by_manifest[mdigest] = image
            order.append(image)
        annotations = desc.get("annotations") or {}
        name = annotations.get(ANNOTATION_CONTAINERD_NAME)
        ref_name = annotations.get(ANNOTATION_REF_NAME)
        tag = _tag_of(name)
        if tag is None and isinstance(ref_name, str) and ("/" in ref_name or ":" in ref_name):
            tag = _tag_of(ref_name)  # some tools put the whole reference here
        if tag is not None and tag not in image.tags:
            image.tags.append(tag)
    return order


def _check_size(desc: dict, member: _Member, what: str) -> None:
    if isinstance(desc.get("size"), int) and desc["size"] != member.size:
        raise StoreError(f"invalid archive: {what} {member.digest} has size {member.size}, "
                         f"its descriptor says {desc['size']}")


def _arch() -> str:
    from .model import go_arch
    return go_arch()


def read_archive(source: BinaryIO, work: Path, limit: int | None = None) -> list[LoadedImage]:
    """Stage and verify every image of a docker-archive or OCI-layout tar under *work*; no member
    or decompressed layer may pass *limit* bytes (default :func:`fstree.max_layer_size`)."""
    archive = _Archive(work, fstree.max_layer_size() if limit is None else limit)
    archive.read(source)
    if "manifest.json" in archive.files:
        images = _read_docker(archive)
    elif "index.json" in archive.files:
        images = _read_oci(archive)
    else:
        raise StoreError("invalid archive: no manifest.json (docker-archive) or index.json (OCI layout) in it")
    if not images:
        raise StoreError("invalid archive: it holds no image")
    for m in archive.files.values():
        if m.path.exists():
            with open(m.path, "rb+") as f:
                os.fsync(f.fileno())
    return images


def decompress_to(source: BinaryIO, path: Path, limit: int | None = None) -> str:
    """Copy a plain/gzip/bzip2/xz tar stream to *path* uncompressed; returns its DiffID.

    A stream that expands past *limit* bytes (default :func:`fstree.max_layer_size`) is refused
    once that much is written."""
    buffered = source if hasattr(source, "peek") else io.BufferedReader(source)  # type: ignore[arg-type]
    magic = buffered.peek(6)[:6]
    try:
        if magic.startswith(GZIP_MAGIC):
            src: BinaryIO = gzip.GzipFile(fileobj=buffered)
        elif magic.startswith(BZIP2_MAGIC):
            src = bz2.BZ2File(buffered)
        elif magic.startswith(XZ_MAGIC):
            src = lzma.LZMAFile(buffered)
        elif magic.startswith(ZSTD_MAGIC):
            raise StoreError("zstd-compressed archives are not supported")
        else:
            src = buffered
        with open(path, "wb") as dst:
            return _copy_hash(src, dst, fstree.max_layer_size() if limit is None else limit)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise StoreError(f"cannot read the archive: {exc}") from None


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_for(config_bytes: bytes, diff_ids: list[str], layer_sizes: list[int]) -> bytes:
    """The OCI image manifest of an image whose layers are stored uncompressed. Pure."""
    return _canonical({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": _digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_OCI_LAYER, "digest": d, "size": s} for d, s in zip(diff_ids, layer_sizes)],
    })


def write_archive(out: BinaryIO, images: list, blob_dir: Path) -> None:
    """Write images [(Image, [normalised tags])] as docker 25's combined save format.

    Every member has mtime 0, owner 0:0 and a fixed order, so saving the
    same images twice gives the same bytes.
    """
    blobs: dict[str, tuple[bytes | None, Path | None]] = {}
    manifest_json = []
    index_entries = []
    repositories: dict[str, dict[str, str]] = {}
    for image, tags in images:
        sizes = []
        for d in image.diff_ids:
            path = blob_dir / d[7:]
            sizes.append(path.stat().st_size)
            blobs.setdefault(d, (None, path))
        blobs.setdefault(image.id, (image.config_bytes, None))
        manifest = manifest_for(image.config_bytes, image.diff_ids, sizes)
        mdigest = _digest(manifest)
        blobs.setdefault(mdigest, (manifest, None))
        desc = {"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
        familiar = [refs.familiar(t) for t in tags]
        manifest_json.append({
            "Config": f"blobs/sha256/{image.id[7:]}",
            "RepoTags": familiar or None,
            "Layers": [f"blobs/sha256/{d[7:]}" for d in image.diff_ids],
        })
        if not tags:
            index_entries.append(desc)
        for tag in tags:
            parsed = refs.parse(tag)
            index_entries.append({**desc, "annotations": {
                ANNOTATION_CONTAINERD_NAME: tag, ANNOTATION_REF_NAME: parsed.tag or "latest"}})
            if image.diff_ids:
                repositories.setdefault(parsed.familiar_name, {})[parsed.tag or "latest"] = image.diff_ids[-1][7:]
    members: list[tuple[str, bytes | None, Path | None]] = []
    for digest in sorted(blobs):
        data, path = blobs[digest]
        members.append((f"blobs/sha256/{digest[7:]}", data, path))
    members.append(("index.json", _canonical({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX,
                                              "manifests": index_entries}), None))
    members.append(("manifest.json", _canonical(manifest_json), None))
    members.append(("oci-layout", _canonical({"imageLayoutVersion": "1.0.0"}), None))
    if repositories:
        members.append(("repositories", _canonical(repositories), None))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data, path in members:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, 0
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                assert path is not None
                with open(path, "rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    tar.addfile(info, f)
