"""Image archives and digests, computed independently of any engine: the
arithmetic the image suite holds engines to. Pure: bytes in, values out.

- image ID = sha256 of the config bytes;
- DiffID = sha256 of an uncompressed layer tar;
- ChainID(L0) = DiffID(L0), ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln));
- an OCI image layout: ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``
  whose content hashes to its name, descriptors whose size and digest match.

>>> chain_ids(["sha256:a"])
['sha256:a']
>>> sha256(EMPTY_JSON) == EMPTY_JSON_DIGEST
True
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Callable

#: The OCI empty JSON descriptor's content and digest (image-spec, "Guidance for an empty descriptor").
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The ChainID of every prefix of a layer stack (image-spec config.md, "Layer ChainID")."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256(f"{out[-1]} {diff_id}".encode()))
    return out


def _path(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def members(archive: bytes) -> dict[str, bytes]:
    """Regular files of a tar (paths without ``./``)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {_path(m.name): tar.extractfile(m).read() for m in tar if m.isfile()}


def uncompressed(blob: bytes) -> bytes:
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def docker_manifest(files: dict[str, bytes]) -> list[dict]:
    """``manifest.json`` of a docker-format archive, checked for the fields loaders rely on."""
    if "manifest.json" not in files:
        raise AssertionError(f"no manifest.json in the archive; it has {sorted(files)[:10]}")
    manifest = json.loads(files["manifest.json"])
    assert isinstance(manifest, list) and manifest, f"manifest.json is not a non-empty list: {manifest!r}"
    for entry in manifest:
        assert {"Config", "Layers"} <= set(entry), f"manifest.json entry lacks Config/Layers: {entry}"
        for name in [entry["Config"], *entry["Layers"]]:
            assert _path(name) in files, f"manifest.json names {name}, which the archive lacks"
    return manifest


def oci_layout_problems(files: dict[str, bytes]) -> list[str]:
    """What makes ``files`` not a valid OCI image layout (empty when it is one)."""
    problems = []
    try:
        layout = json.loads(files["oci-layout"])
        if not isinstance(layout.get("imageLayoutVersion"), str):
            problems.append("oci-layout has no imageLayoutVersion")
    except KeyError:
        problems.append("no oci-layout file")
    except (ValueError, AttributeError):
        problems.append("oci-layout is not a JSON object")
    for name, data in files.items():
        if name.startswith("blobs/"):
            parts = name.split("/")
            if len(parts) != 3 or parts[1] != "sha256":
                problems.append(f"{name}: not blobs/sha256/<hex>")
            elif sha256(data) != f"sha256:{parts[2]}":
                problems.append(f"{name}: content hashes to {sha256(data)}")
    try:
        index = json.loads(files["index.json"])
    except KeyError:
        return problems + ["no index.json"]
    except ValueError:
        return problems + ["index.json is not JSON"]

    def check(descriptor: dict, where: str) -> bytes | None:
        digest, size = descriptor.get("digest", ""), descriptor.get("size")
        blob = files.get("blobs/" + digest.replace(":", "/", 1))
        if blob is None:
            problems.append(f"{where}: {digest} is not in blobs/")
        elif size != len(blob):
            problems.append(f"{where}: size {size} but the blob has {len(blob)} bytes")
        return blob

    for i, descriptor in enumerate(index.get("manifests") or []):
        blob = check(descriptor, f"index.json manifests[{i}]")
        try:
            manifest = json.loads(blob) if blob is not None else None
        except ValueError:
            problems.append(f"manifest {descriptor.get('digest')} is not JSON")
            continue
        if not isinstance(manifest, dict):
            continue
        for j, sub in enumerate(manifest.get("manifests") or []):  # a nested index
            check(sub, f"index {descriptor['digest']} manifests[{j}]")
        parts = [("config", manifest["config"])] if "config" in manifest else []
        parts += [(f"layers[{j}]", layer) for j, layer in enumerate(manifest.get("layers") or [])]
        for where, part in parts:
            blob = check(part, f"manifest {descriptor['digest']} {where}")
            if part.get("mediaType") == EMPTY_MEDIA_TYPE and (part.get("digest") != EMPTY_JSON_DIGEST
                                                               or part.get("size") != 2 or blob != EMPTY_JSON):
                problems.append(f"manifest {descriptor['digest']} {where}: an empty descriptor must be "
                                f"{EMPTY_JSON_DIGEST}, size 2, content {{}}")
    if not index.get("manifests"):
        problems.append("index.json lists no manifests")
    return problems


def rewrite(archive: bytes, changes: dict[str, Callable[[bytes], bytes]]) -> bytes:
    """The same tar with the named members' content replaced by ``change(old)``
    (headers, order and everything else kept)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, tarfile.open(fileobj=out, mode="w",
                                                                         format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None and _path(member.name) in changes:
                data = changes[_path(member.name)](data)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def tar_of(files: dict[str, bytes], mtime: int = 946684800) -> bytes:
    """A deterministic ustar of regular files (what a layer or an archive needs)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, mtime
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def docker_archive(ref: str, config: bytes, layers: list[bytes]) -> bytes:
    """A docker-format (``docker save``) archive of one image. ``config`` is
    stored under its own digest, layers under theirs."""
    files = {f"{sha256(config)[7:]}.json": config}
    names = []
    for layer in layers:
        name = f"{sha256(layer)[7:]}/layer.tar"
        files[name] = layer
        names.append(name)
    files["manifest.json"] = json.dumps([{"Config": f"{sha256(config)[7:]}.json", "RepoTags": [ref],
                                          "Layers": names}]).encode()
    return tar_of(files)
