"""The offline test image, built byte-for-byte reproducibly from Debian's
busybox-static.

No check ever pulls from a network: the suites run on images made here from
``/bin/busybox``. Everything that could vary between builds is fixed: entry
order (sorted), mtimes (:data:`EPOCH`), owners (0:0, no names), modes, tar
format (ustar), JSON (sorted keys, no spaces). The same busybox binary
therefore always gives the same layer DiffID, config digest (= image ID) and
manifest digest, and ``tests/conformance/test_testimage.py`` asserts it.

Three images share the one layer and differ only in their config:

- ``base``: ``Cmd ["sh"]``;
- ``stopsignal``: ``StopSignal SIGINT`` (the image's STOPSIGNAL checks);
- ``volume``: ``Volumes {"/data": {}}`` (anonymous volume checks).

The layer holds ``/data/seed.txt`` so a named volume mounted on ``/data`` is
seen to be filled from the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConformanceError

REPOSITORY = "localhost/conformance/busybox"
VARIANTS = ("base", "stopsignal", "volume")
#: 2000-01-01T00:00:00Z: fixed mtime of every entry and the config's `created`.
EPOCH = 946684800
CREATED = "2000-01-01T00:00:00Z"
BUSYBOX = Path("/bin/busybox")
SEED_TEXT = b"seeded from the image\n"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def go_arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


@dataclass(frozen=True)
class Image:
    """One image of the set: its tag and the digests a check may assert."""

    variant: str
    ref: str
    config: bytes
    manifest: bytes

    @property
    def id(self) -> str:
        return sha256(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)


@dataclass(frozen=True)
class ImageSet:
    layer: bytes
    images: tuple[Image, ...]

    @property
    def diff_id(self) -> str:
        return sha256(self.layer)

    def __getitem__(self, variant: str) -> Image:
        for image in self.images:
            if image.variant == variant:
                return image
        raise KeyError(variant)


def _entry(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
    return info


def rootfs_layer(busybox: bytes, applets: list[str]) -> bytes:
    """The layer tar: busybox, a symlink per applet, a minimal /etc. Pure."""
    files: dict[str, tuple[bytes, int]] = {
        "bin/busybox": (busybox, 0o755),
        "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
        "etc/group": (b"root:x:0:\nnogroup:x:65534:\n", 0o644),
        "data/seed.txt": (SEED_TEXT, 0o644),
    }
    dirs = {"bin": 0o755, "data": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o755, "root": 0o700,
            "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "var": 0o755}
    links = {f"bin/{a}": "busybox" for a in applets if a and "/" not in a and a != "busybox"}
    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
    for name, mode in dirs.items():
        entries.append((name, _entry(name + "/", tarfile.DIRTYPE, mode), None))
    for name, (data, mode) in files.items():
        entries.append((name, _entry(name, tarfile.REGTYPE, mode, len(data)), data))
    for name, target in links.items():
        if name not in files:
            entries.append((name, _entry(name, tarfile.SYMTYPE, 0o777, linkname=target), None))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, info, data in sorted(entries, key=lambda e: e[0]):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def image_config(diff_id: str, variant: str, arch: str) -> bytes:
    config: dict = {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"}
    if variant == "stopsignal":
        config["StopSignal"] = "SIGINT"
    elif variant == "volume":
        config["Volumes"] = {"/data": {}}
    elif variant != "base":
        raise ConformanceError(f"unknown test image variant {variant!r}; known: {', '.join(VARIANTS)}")
    return canonical_json({
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": f"conformance test image ({variant}) from busybox-static"}],
    })


def build_image_set(busybox: bytes, applets: list[str], arch: str | None = None) -> ImageSet:
    """All test images, from busybox's bytes and applet list. Pure."""
    layer = rootfs_layer(busybox, sorted(set(applets)))
    arch = arch or go_arch()
    images = []
    for variant in VARIANTS:
        config = image_config(sha256(layer), variant, arch)
        manifest = canonical_json({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": MEDIA_OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        })
        images.append(Image(variant, f"{REPOSITORY}:{variant}", config, manifest))
    return ImageSet(layer, tuple(images))


def _tar(members: dict[str, bytes]) -> bytes:
    """A deterministic tar of regular files (directories implied)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        seen_dirs: set[str] = set()
        for name in sorted(members):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    tar.addfile(_entry(d + "/", tarfile.DIRTYPE, 0o755))
            data = members[name]
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue()


def docker_archive(images: ImageSet) -> bytes:
    """``docker save``'s format: manifest.json, configs, one layer.tar. Pure."""
    hexid = images.diff_id.split(":")[1]
    members = {f"{hexid}/layer.tar": images.layer, f"{hexid}/VERSION": b"1.0"}
    manifest = []
    for image in images.images:
        name = image.id.split(":")[1] + ".json"
        members[name] = image.config
        manifest.append({"Config": name, "RepoTags": [image.ref], "Layers": [f"{hexid}/layer.tar"]})
    members["manifest.json"] = canonical_json(manifest)
    members["repositories"] = canonical_json({REPOSITORY: {i.variant: hexid for i in images.images}})
    return _tar(members)


def oci_archive(images: ImageSet) -> bytes:
    """An OCI image layout as a tar, one index entry per tag. Pure."""
    blobs = {images.diff_id: images.layer}
    index = []
    for image in images.images:
        blobs[image.id] = image.config
        blobs[image.manifest_digest] = image.manifest
        index.append({
            "mediaType": MEDIA_OCI_MANIFEST, "digest": image.manifest_digest, "size": len(image.manifest),
            "annotations": {"io.containerd.image.name": image.ref, "org.opencontainers.image.ref.name": image.variant},
        })
    members = {f"blobs/sha256/{d.split(':')[1]}": b for d, b in blobs.items()}
    members["oci-layout"] = canonical_json({"imageLayoutVersion": "1.0.0"})
    members["index.json"] = canonical_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
    return _tar(members)


def read_busybox(path: Path = BUSYBOX) -> tuple[bytes, list[str]]:
    """busybox's bytes and its applet list (the only I/O of this module)."""
    import subprocess

    try:
        data = path.read_bytes()
        listed = subprocess.run([str(path), "--list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConformanceError(f"cannot use {path} for the test image ({exc}); install Debian's busybox-static") from None
    return data, listed.split()


def write_archives(directory: Path) -> tuple[ImageSet, Path, Path]:
    """Build the image set and write ``busybox-docker.tar`` and ``busybox-oci.tar``."""
    images = build_image_set(*read_busybox())
    directory.mkdir(parents=True, exist_ok=True)
    docker_path, oci_path = directory / "busybox-docker.tar", directory / "busybox-oci.tar"
    docker_path.write_bytes(docker_archive(images))
    oci_path.write_bytes(oci_archive(images))
    return images, docker_path, oci_path
