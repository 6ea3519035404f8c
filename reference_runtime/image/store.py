"""refengine's image store: images, tags and unpacked layers on disk.

On-disk layout (``root`` = ``<refengine root>/image``)::

    root/
      index.json            images by ID (tags, digests, DiffIDs, ChainIDs,
                            parent) + tag -> ID + ChainID -> layer size;
                            replaced atomically, read without a lock
      lock                  flock(2): held while objects or the index change
      blobs/sha256/<hex>    content-addressed: image configs and
                            uncompressed layer tars (named by DiffID)
      layers/<chain hex>/   one unpacked, read-only layer per ChainID,
                            shared by every image that has it; overlay
                            whiteouts (char 0:0, trusted.overlay.opaque=y)
      tmp/                  staging (same filesystem, so renames are atomic)

Writers stage everything (blobs, unpacked layers) under ``tmp/`` or as
``layers/.tmp-*`` *before* taking the lock, verify every digest, then under
the lock move the objects into place with renames and replace the index.
A refused input (tampered blob, hostile tar) therefore never changes what
is stored, and two processes never see a half-written index.

``resolve`` and ``layer_dirs`` are on ``refengine run``'s hot path: they
read only ``index.json`` and one config blob, and import nothing heavy
(tarfile, hashlib and friends load lazily in the writers).

>>> store = ImageStore(Path("/var/lib/refengine/image"))    # doctest: +SKIP
>>> [str(d) for d in store.layer_dirs(store.resolve("busybox"))]  # doctest: +SKIP
['/var/lib/refengine/image/layers/1b5f...']
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import StoreError
from . import reference as refs

TYPE_CHECKING = False  # typing costs ~10 ms to import: only type checkers read these
if TYPE_CHECKING:
    from typing import BinaryIO, Collection, Iterable, Mapping

INDEX_VERSION = 1
ZERO_TIME = "0001-01-01T00:00:00Z"



class Image:
    """One stored image (immutable). ``id`` is ``sha256:`` + sha256(config_bytes).

    Fields: ``id``, ``config`` (the OCI image config as a dict),
    ``config_bytes``, ``repo_tags``/``repo_digests`` (docker's familiar
    form, ``busybox:latest``), ``diff_ids``, ``chain_ids`` (lowest first),
    ``created`` (RFC 3339), ``size`` (the unpacked layers as docker counts
    them), ``parent`` (committed/built images), ``layer_sizes``,
    ``last_tag_time``. A plain class rather than a dataclass because
    importing ``dataclasses`` alone costs more than ``resolve`` itself.
    """

    __slots__ = ("id", "config", "config_bytes", "repo_tags", "repo_digests", "diff_ids", "chain_ids",
                 "created", "size", "parent", "layer_sizes", "last_tag_time")

    def __init__(self, *, id: str, config: dict, config_bytes: bytes, repo_tags: list[str],
                 repo_digests: list[str], diff_ids: list[str], chain_ids: list[str], created: str, size: int,
                 parent: str = "", layer_sizes: list[int] | None = None, last_tag_time: str = ZERO_TIME):
        values = dict(id=id, config=config, config_bytes=config_bytes, repo_tags=repo_tags,
                      repo_digests=repo_digests, diff_ids=diff_ids, chain_ids=chain_ids, created=created,
                      size=size, parent=parent, layer_sizes=layer_sizes if layer_sizes is not None else [],
                      last_tag_time=last_tag_time)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value):
        raise AttributeError("Image is immutable")

    def __eq__(self, other) -> bool:
        return isinstance(other, Image) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable containers inside, like a frozen dataclass of lists

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, repo_tags={self.repo_tags!r})"

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def dangling(self) -> bool:
        return not self.repo_tags

    def inspect(self) -> dict:
        """``docker image inspect``'s object for this image (docker's key names)."""
        cfg = self.config
        return {
            "Id": self.id,
            "RepoTags": list(self.repo_tags),
            "RepoDigests": list(self.repo_digests),
            "Parent": self.parent,
            "Comment": cfg.get("comment", ""),
            "Created": self.created,
            "Container": cfg.get("container", ""),
            "ContainerConfig": container_config(cfg.get("container_config")),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": container_config(cfg.get("config")),
            "Architecture": cfg.get("architecture", ""),
            **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
            "Os": cfg.get("os", ""),
            "Size": self.size,
            "VirtualSize": self.size,
            "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": list(self.diff_ids)},
            "Metadata": {"LastTagTime": self.last_tag_time},
        }


_CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def container_config(section: dict | None) -> dict:
    """An image's ``config`` section with the fields docker always shows filled in."""
    out = dict(_CONFIG_DEFAULTS)
    out.update(section or {})
    return out


class ImageUse:
    """A container using an image, as ``remove``/``prune`` need to know it."""

    __slots__ = ("container_id", "running")

    def __init__(self, container_id: str, running: bool):
        self.container_id, self.running = container_id, running

    def __repr__(self) -> str:
        return f"ImageUse({self.container_id!r}, {self.running!r})"


if TYPE_CHECKING:
    #: What ``remove``/``prune`` accept as *in_use*: a collection of image IDs, or a
    #: mapping image ID -> iterable of ImageUse or (container_id, running) pairs.
    InUse = Mapping[str, Iterable[ImageUse | tuple[str, bool]]] | Collection[str]


def _uses(in_use) -> dict[str, list[ImageUse]]:
    if not in_use:
        return {}
    if hasattr(in_use, "items"):
        return {k: [u if isinstance(u, ImageUse) else ImageUse(*u) for u in v] for k, v in in_use.items() if v}
    return {k: [ImageUse("", False)] for k in in_use}


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def now_rfc3339() -> str:
    from datetime import datetime, timezone

    t = datetime.now(timezone.utc)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class _Staged:
    """Objects written under tmp/ and verified, waiting to be moved in under the lock.

    As a context manager it removes whatever was not moved into place.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, Path] = {}                  # digest -> staged file
        self.layers: dict[str, tuple[Path, int]] = {}     # chain id -> (staged dir, size)
        self.dirs: list[Path] = []                        # scratch dirs

    def __enter__(self) -> "_Staged":
        return self

    def __exit__(self, *exc) -> None:
        from .tarutil import remove_tree

        for path in self.blobs.values():
            path.unlink(missing_ok=True)
        for path, _ in self.layers.values():
            if path.exists():
                remove_tree(path)
        for path in self.dirs:
            if path.exists():
                remove_tree(path)


class _Lock:
    """flock(2) on ``root/lock`` for the span of a ``with`` block."""

    def __init__(self, root: Path):
        self.root = root
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


class ImageStore:
    """The image store under *root*; directories are created on first write."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.index_path = self.root / "index.json"
        self.blob_dir = self.root / "blobs" / "sha256"
        self.layer_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"

    # ------------------------------------------------------------------ reading

    def _read_index(self) -> dict:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return {"version": INDEX_VERSION, "images": {}, "tags": {}, "layers": {}}
        try:
            index = json.loads(data)
        except ValueError:
            raise StoreError(f"image index {self.index_path} is corrupt; restore it or remove {self.root}") from None
        if index.get("version") != INDEX_VERSION:
            raise StoreError(f"image index {self.index_path} has unknown version {index.get('version')!r}")
        return index

    def _image(self, index: dict, image_id: str) -> Image:
        entry = index["images"][image_id]
        try:
            config_bytes = (self.blob_dir / image_id[7:]).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"image {_short(image_id)} is damaged: its config blob is missing") from None
        config = json.loads(config_bytes)
        layers = index["layers"]
        sizes = [layers.get(c, {}).get("size", 0) for c in entry["chain_ids"]]
        return Image(
            id=image_id, config=config, config_bytes=config_bytes,
            repo_tags=[refs.familiar(t) for t in entry["repo_tags"]],
            repo_digests=[refs.familiar(d) for d in entry["repo_digests"]],
            diff_ids=list(entry["diff_ids"]), chain_ids=list(entry["chain_ids"]),
            created=config.get("created", ""), size=sum(sizes), parent=entry.get("parent", ""),
            layer_sizes=sizes, last_tag_time=entry.get("last_tag_time", ZERO_TIME),
        )

    @staticmethod
    def _find(index: dict, ref: str) -> tuple[str | None, str | None]:
        """(image ID, the normalised tag/digest ref if *ref* named one) or (None, None)."""
        images = index["images"]
        ref_l = ref
        hex_part = ref_l[7:] if ref_l.startswith("sha256:") else ref_l
        is_hex = bool(hex_part) and len(hex_part) <= 64 and all(c in "0123456789abcdef" for c in hex_part)
        if ref_l.startswith("sha256:") or (is_hex and len(hex_part) == 64):
            if not is_hex:
                raise StoreError("invalid reference format")
            return _by_prefix(images, hex_part), None
        tags = index["tags"]
        if ref in tags:
            return tags[ref], ref
        if "@" not in ref:
            # the familiar forms of stored tags, matched without compiling the reference grammar
            for tag, image_id in tags.items():
                short = refs.familiar(tag)
                if short == ref or (short.endswith(":latest") and short[:-7] == ref):
                    return image_id, tag
        parsed = refs.parse(ref)
        if parsed.digest is not None:
            wanted = f"{parsed.name}@{parsed.digest}"
            for image_id, entry in images.items():
                if not entry.get("held") and wanted in entry["repo_digests"]:
                    return image_id, wanted
        else:
            key = str(parsed)
            image_id = index["tags"].get(key)
            if image_id is not None:
                return image_id, key
        if is_hex:
            return _by_prefix(images, hex_part), None
        return None, None

    def resolve(self, ref: str) -> Image:
        """The image *ref* names: ``name[:tag]``, ``name@sha256:...``, or a full/short ID."""
        for attempt in (1, 2):
            index = self._read_index()
            image_id, _ = self._find(index, ref)
            if image_id is None:
                raise StoreError(f"No such image: {ref}")
            try:
                return self._image(index, image_id)
            except StoreError:
                if attempt == 2:
                    raise
                # removed by another process between reading the index and its config: look again
        raise AssertionError("unreachable")

    def by_id(self, image_id: str) -> Image:
        """The image with this full ID, including one force-removed while a container still uses it."""
        index = self._read_index()
        if image_id not in index["images"]:
            raise StoreError(f"No such image: {image_id}")
        return self._image(index, image_id)

    def layer_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layer directories, lowest first (overlay lowerdir wants them reversed)."""
        dirs = [self.layer_dir / c[7:] for c in image.chain_ids]
        for d in dirs:
            if not os.path.isdir(d):
                raise StoreError(f"image {image.short_id} is damaged: layer {d.name[:12]} is missing; "
                                 "remove the image and load it again")
        return dirs

    def images(self, *, all: bool = False) -> list[Image]:
        """``docker images [-a]``: tagged and dangling images, newest first.

        Like docker, untagged images that are the parent of another image
        (the builder's intermediate steps) are listed only with *all*.
        """
        index = self._read_index()
        images = {i: e for i, e in index["images"].items() if not e.get("held")}
        parents = {e.get("parent") for e in images.values()}
        out = [self._image(index, i) for i, e in images.items()
               if all or e["repo_tags"] or e["repo_digests"] or i not in parents]
        out.sort(key=lambda im: (im.created, im.id), reverse=True)
        return out

    def inspect(self, ref: str) -> dict:
        """``docker image inspect`` of *ref*, with the overlay GraphDriver data."""
        image = self.resolve(ref)
        out = image.inspect()
        dirs = [str(d) for d in self.layer_dirs(image)]
        out["GraphDriver"] = {"Name": "overlay", "Data": {"LowerDir": ":".join(reversed(dirs))} if dirs else {}}
        return out

    def history(self, ref: str) -> list[dict]:
        """``docker history`` rows, newest first: id, created, created_by, tags, size, comment, empty_layer.

        ``id`` is the image's ID for the top row and its parents' for the
        rows they account for (``<missing>`` where the parent is unknown, as
        for loaded images).
        """
        index = self._read_index()
        image_id, _ = self._find(index, ref)
        if image_id is None:
            raise StoreError(f"No such image: {ref}")
        image = self._image(index, image_id)
        rows: list[dict] = []
        layer = 0
        for h in image.config.get("history") or []:
            size = 0
            empty = bool(h.get("empty_layer"))
            if not empty:
                if layer >= len(image.layer_sizes):
                    raise StoreError(f"image {image.short_id}: too many non-empty layers in its history")
                size = image.layer_sizes[layer]
                layer += 1
            rows.insert(0, {"id": "<missing>", "created": h.get("created", ""), "created_by": h.get("created_by", ""),
                            "tags": [], "size": size, "comment": h.get("comment", ""), "empty_layer": empty})
        current = image_id
        for row in rows:
            entry = index["images"].get(current)
            if entry is None:
                break
            row["id"] = current
            row["tags"] = [refs.familiar(t) for t in entry["repo_tags"]]
            current = entry.get("parent", "")
            if not current:
                break
        return rows

    # ------------------------------------------------------------------ writing helpers

    def _locked(self) -> _Lock:
        return _Lock(self.root)

    def _write_index(self, index: dict) -> None:
        data = json.dumps(index, sort_keys=True, indent=1).encode()
        _write_atomic(self.index_path, data)

    def _staging(self) -> _Staged:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        return _Staged()

    def _clean_stale(self) -> None:
        """Remove staging left by writers that died (their pid is in the name) before they finished."""
        from .tarutil import remove_tree

        for parent, prefixes in ((self.tmp_dir, ("load-", "blob-", "trash-")), (self.layer_dir, (".tmp-",))):
            try:
                names = os.listdir(parent)
            except FileNotFoundError:
                continue
            for name in names:
                prefix = next((p for p in prefixes if name.startswith(p)), None)
                pid = name[len(prefix):].split("-", 1)[0] if prefix else ""
                if not pid.isdigit() or _alive(int(pid)):
                    continue
                path = parent / name
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                else:
                    path.unlink(missing_ok=True)

    def _new_tmp(self, staged: _Staged, prefix: str) -> Path:
        import tempfile

        path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=self.tmp_dir))
        staged.dirs.append(path)
        return path

    def _stage_layer(self, staged: _Staged, chain: str, tar_path: Path) -> None:
        """Unpack the (verified) layer tar at *tar_path* beside its final place, if not stored yet."""
        import tempfile

        from .tarutil import extract_layer

        if chain in staged.layers or (self.layer_dir / chain[7:]).is_dir():
            return
        self.layer_dir.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=self.layer_dir))
        staged.layers[chain] = (target, 0)
        os.chmod(target, 0o755)
        with open(tar_path, "rb") as f:
            size = extract_layer(f, target)
        staged.layers[chain] = (target, size)

    def _install(self, index: dict, staged: _Staged, chains: dict[str, str]) -> None:
        """Under the lock: move staged blobs and layers into place (*chains*: chain id -> diff id)."""
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.layer_dir.mkdir(parents=True, exist_ok=True)
        for digest, path in list(staged.blobs.items()):
            final = self.blob_dir / digest[7:]
            if final.exists():
                path.unlink()
            else:
                os.rename(path, final)
            del staged.blobs[digest]
        from .tarutil import remove_tree, unpack_layer

        for chain, diff_id in chains.items():
            final = self.layer_dir / chain[7:]
            present = chain in index["layers"] and final.is_dir()
            if present:
                continue  # a staged copy, if any, is removed with the staging after the lock
            if final.is_dir():
                remove_tree(final)  # renamed in by a writer that died before writing the index
            if chain in staged.layers:
                path, size = staged.layers.pop(chain)
                os.rename(path, final)
            else:
                # removed by another process since we looked: unpack again from the blob
                with open(self.blob_dir / diff_id[7:], "rb") as f:
                    size = unpack_layer(f, final)
            index["layers"][chain] = {"diff_id": diff_id, "size": size}
        _fsync_dir(self.blob_dir)
        _fsync_dir(self.layer_dir)

    def _add_image(self, index: dict, config_bytes: bytes, config: dict, *, parent: str = "") -> str:
        from .digest import chain_ids, digest_bytes

        image_id = digest_bytes(config_bytes)
        diff_ids = list(config["rootfs"]["diff_ids"])
        entry = index["images"].get(image_id)
        if entry is None or entry.get("held"):
            index["images"][image_id] = {
                "repo_tags": [], "repo_digests": [], "diff_ids": diff_ids, "chain_ids": chain_ids(diff_ids),
                "parent": parent, "last_tag_time": ZERO_TIME,
            }
        elif parent and not entry.get("parent"):
            entry["parent"] = parent
        return image_id

    @staticmethod
    def _set_tag(index: dict, tag: str, image_id: str, *, when: str | None = None) -> str | None:
        """Point *tag* (normalised) at *image_id*; returns the ID it was taken from, if another."""
        old = index["tags"].get(tag)
        if old == image_id:
            return None
        if old is not None and old in index["images"]:
            index["images"][old]["repo_tags"].remove(tag)
        index["tags"][tag] = image_id
        entry = index["images"][image_id]
        entry["repo_tags"].append(tag)
        entry["repo_tags"].sort()
        if when:
            entry["last_tag_time"] = when
        return old

    def _stage_blob(self, staged: _Staged, data: bytes) -> str:
        from .digest import digest_bytes

        digest = digest_bytes(data)
        if digest not in staged.blobs:
            path = Path(self._new_file(staged))
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            staged.blobs[digest] = path
        return digest

    def _new_file(self, staged: _Staged) -> str:
        import tempfile

        fd, name = tempfile.mkstemp(prefix=f"blob-{os.getpid()}-", dir=self.tmp_dir)
        os.close(fd)
        return name

    # ------------------------------------------------------------------ load / save

    def load(self, source: BinaryIO | Path) -> list[str]:
        """Load a docker-archive or OCI-layout tar (plain or gzip); returns docker's output lines.

        Every blob is checked against its digest and every layer against
        the DiffID in its config before anything is stored.
        """
        from . import archive

        if isinstance(source, (str, Path)):
            try:
                f = open(source, "rb")
            except OSError as exc:
                raise StoreError(f"cannot open {source}: {exc.strerror}") from None
            with f:
                return self.load(f)
        with self._staging() as staged:
            work = self._new_tmp(staged, "load-")
            loaded = archive.read_archive(source, work)
            chains: dict[str, str] = {}
            for image in loaded:
                for chain, diff_id in zip(image.chain_ids, image.diff_ids):
                    chains[chain] = diff_id
                    # staged even when stored: a concurrent rmi may delete it before we install
                    staged.blobs[diff_id] = image.layer_files[diff_id]
                    self._stage_layer(staged, chain, image.layer_files[diff_id])
                self._stage_blob(staged, image.config_bytes)
            lines: list[str] = []
            with self._locked():
                index = self._read_index()
                self._install(index, staged, chains)
                for image in loaded:
                    image_id = self._add_image(index, image.config_bytes, image.config)
                    if not image.tags:
                        lines.append(f"Loaded image ID: {image_id}")
                    for tag in image.tags:
                        old = self._set_tag(index, tag, image_id)
                        if old is not None:
                            lines.append(f"The image {refs.familiar(tag)} already exists, renaming the old one "
                                         f"with ID {old} to empty string")
                        lines.append(f"Loaded image: {refs.familiar(tag)}")
                self._write_index(index)
        return lines

    def save(self, refs_: list[str], out: BinaryIO) -> None:
        """Write *refs_* as one tar: docker's manifest.json + repositories and an OCI image layout."""
        from . import archive

        index = self._read_index()
        selected: dict[str, list[str]] = {}  # image id -> tags to record (normalised)
        for ref in refs_:
            parsed = None
            try:
                parsed = refs.parse(ref, default_tag=False)
            except StoreError:
                pass
            if parsed is not None and parsed.tag is None and parsed.digest is None:
                # a bare repository name saves every tag of it, as docker does
                tags = sorted(t for t in index["tags"] if refs.parse(t).name == parsed.name)
                if tags:
                    for t in tags:
                        _append_unique(selected.setdefault(index["tags"][t], []), t)
                    continue
            image_id, key = self._find(index, ref)
            if image_id is None:
                raise StoreError(f"No such image: {ref}")
            lst = selected.setdefault(image_id, [])
            if key is not None and "@" not in key:
                _append_unique(lst, key)
        images = [(self._image(index, i), tags) for i, tags in selected.items()]
        for image, _ in images:
            for d in image.diff_ids:
                if not (self.blob_dir / d[7:]).exists():
                    raise StoreError(f"image {image.short_id} is damaged: layer blob {d} is missing")
        try:
            archive.write_archive(out, images, self.blob_dir)
        except BrokenPipeError:
            raise StoreError("cannot write the archive: the output was closed") from None
        except FileNotFoundError as exc:
            raise StoreError(f"cannot save: {exc.filename} was removed while saving (a concurrent rmi?)") from None

    # ------------------------------------------------------------------ commit / import / export

    def commit(self, base: Image | None, upper_dir: Path | None, *, config: dict, author: str = "",
               comment: str = "", created_by: str = "", ref: str | None = None,
               created: str | None = None, clamp_mtime: int | None = None, parent: str | None = None) -> Image:
        """A new image: *base* plus one layer made of the overlay upper dir *upper_dir*.

        *config* is the image's ``config`` section (Env, Cmd, ...). With
        *upper_dir* None the image gets no new layer and its history entry is
        ``empty_layer`` (the builder's ENV/LABEL/CMD steps). *created* and
        *clamp_mtime* (SOURCE_DATE_EPOCH) make the result reproducible.
        *parent* overrides the recorded parent (default: *base*).
        """
        from .tarutil import write_tree

        tag = refs.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = None
            if upper_dir is not None:
                tar_path = Path(self._new_file(staged))
                with open(tar_path, "wb") as raw:
                    write_tree(Path(upper_dir), raw, overlay_whiteouts=True, clamp_mtime=clamp_mtime)
                    raw.flush()
                    os.fsync(raw.fileno())
            return self._commit_staged(staged, base, tar_path, config=config, author=author, comment=comment,
                                       created_by=created_by, tag=tag, created=created, parent=parent)

    def commit_tar(self, base: Image | None, layer: BinaryIO | None, *, config: dict, author: str = "",
                   comment: str = "", created_by: str = "", ref: str | None = None,
                   created: str | None = None, parent: str | None = None) -> Image:
        """Like :meth:`commit`, with the new layer given as a (plain or gzip) tar stream in OCI form
        (``.wh.`` whiteouts): for a builder that writes COPY/ADD layers itself."""
        from . import archive

        tag = refs.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = None
            if layer is not None:
                tar_path = Path(self._new_file(staged))
                archive.decompress_to(layer, tar_path)
            return self._commit_staged(staged, base, tar_path, config=config, author=author, comment=comment,
                                       created_by=created_by, tag=tag, created=created, parent=parent)

    def _commit_staged(self, staged: _Staged, base: Image | None, tar_path: Path | None, *, config: dict,
                       author: str, comment: str, created_by: str, tag: str | None, created: str | None,
                       parent: str | None) -> Image:
        from .digest import chain_ids, digest_stream

        created = created or now_rfc3339()
        diff_ids = list(base.diff_ids) if base else []
        chains: dict[str, str] = {}
        if base:
            for c, d in zip(base.chain_ids, base.diff_ids):
                chains[c] = d
        if tar_path is not None:
            with open(tar_path, "rb") as f:
                diff_id, _ = digest_stream(f)
            diff_ids.append(diff_id)
            staged.blobs[diff_id] = tar_path
            chain = chain_ids(diff_ids)[-1]
            chains[chain] = diff_id
            self._stage_layer(staged, chain, tar_path)
        history = list(base.config.get("history") or []) if base else []
        entry: dict = {"created": created}
        for key, value in (("created_by", created_by), ("author", author), ("comment", comment)):
            if value:
                entry[key] = value
        if tar_path is None:
            entry["empty_layer"] = True
        history.append(entry)
        new_config: dict = {
            "architecture": (base.config.get("architecture") if base else None) or _go_arch(),
            "os": (base.config.get("os") if base else None) or "linux",
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        if base and base.config.get("variant"):
            new_config["variant"] = base.config["variant"]
        if author:
            new_config["author"] = author
        if comment:
            new_config["comment"] = comment
        config_bytes = canonical_json(new_config)
        self._stage_blob(staged, config_bytes)
        with self._locked():
            index = self._read_index()
            self._install(index, staged, chains)
            image_id = self._add_image(index, config_bytes, new_config,
                                       parent=parent if parent is not None else (base.id if base else ""))
            if tag:
                self._set_tag(index, tag, image_id, when=now_rfc3339())
            self._write_index(index)
            return self._image(index, image_id)

    def children(self, image_id: str) -> list[Image]:
        """Images whose recorded parent is *image_id* (the classic builder's cache candidates)."""
        index = self._read_index()
        return [self._image(index, i) for i, e in sorted(index["images"].items())
                if e.get("parent") == image_id and not e.get("held")]

    def import_tar(self, source: BinaryIO, ref: str | None, *, changes: dict | None = None,
                   message: str = "", created: str | None = None) -> Image:
        """``refengine import``: one layer from a (plain, gzip, bzip2 or xz) rootfs tar, a new image."""
        from . import archive
        from .digest import chain_ids

        created = created or now_rfc3339()
        tag = refs.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = Path(self._new_file(staged))
            diff_id = archive.decompress_to(source, tar_path)
            staged.blobs[diff_id] = tar_path
            chain = chain_ids([diff_id])[0]
            self._stage_layer(staged, chain, tar_path)
            new_config = {
                "architecture": _go_arch(), "os": "linux", "created": created,
                "config": dict(changes or {}),
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created, "comment": message or "Imported from -"}],
            }
            config_bytes = canonical_json(new_config)
            self._stage_blob(staged, config_bytes)
            with self._locked():
                index = self._read_index()
                self._install(index, staged, {chain: diff_id})
                image_id = self._add_image(index, config_bytes, new_config)
                if tag:
                    self._set_tag(index, tag, image_id, when=now_rfc3339())
                self._write_index(index)
                return self._image(index, image_id)

    def export_dir(self, rootfs: Path, out: BinaryIO) -> None:
        """``refengine export``: a tar of the (merged) root filesystem *rootfs*."""
        from .tarutil import write_tree

        try:
            write_tree(Path(rootfs), out)
        except BrokenPipeError:
            raise StoreError("cannot write the archive: the output was closed") from None

    # ------------------------------------------------------------------ tags and removal

    def tag(self, source: str, target: str) -> None:
        """Point the tag *target* at the image *source* names (``docker tag``)."""
        key = refs.normalise_tag(target)
        with self._locked():
            index = self._read_index()
            image_id, _ = self._find(index, source)
            if image_id is None:
                raise StoreError(f"No such image: {source}")
            self._set_tag(index, key, image_id, when=now_rfc3339())
            index["images"][image_id]["last_tag_time"] = now_rfc3339()
            self._write_index(index)

    def remove(self, ref: str, *, force: bool = False, in_use: InUse | None = None,
               prune: bool = True) -> list[str]:
        """``docker rmi`` of one ref; returns its "Untagged: ..."/"Deleted: sha256:..." lines.

        *in_use* names the images containers use: a set of image IDs, or a
        mapping image ID -> [(container ID, running)] for docker's exact
        conflict messages. An image a container still uses can be removed
        only with *force* (and never while the container runs); its layers
        stay until no container uses it (pass *in_use* to later calls).
        *prune* (docker's default; ``--no-prune`` turns it off) also removes
        untagged parents.
        """
        uses = _uses(in_use)
        trash: list[Path] = []
        doomed: list[Path] = []
        try:
            with self._locked():
                index = self._read_index()
                if in_use is not None:
                    self._collect_held(index, uses, trash)
                records = self._remove_locked(index, ref, force, prune, uses, trash, [])
                self._write_index(index)
                doomed = self._discard(trash)
        finally:
            self._empty_trash(doomed)
        return records

    def prune(self, *, dangling_only: bool = True, in_use: InUse = frozenset()) -> list[str]:
        """``docker image prune [-a]``: the "untagged: ..."/"deleted: ..." lines."""
        return self.prune_report(dangling_only=dangling_only, in_use=in_use)[0]

    def prune_report(self, *, dangling_only: bool = True, in_use: InUse = frozenset()) -> tuple[list[str], int]:
        """Like :meth:`prune`, plus the bytes reclaimed (for "Total reclaimed space")."""
        uses = _uses(in_use)
        trash: list[Path] = []
        doomed: list[Path] = []
        released: list[int] = []
        lines: list[str] = []
        try:
            with self._locked():
                index = self._read_index()
                self._collect_held(index, uses, trash, released)
                images = {i: e for i, e in index["images"].items() if not e.get("held")}
                parents = {e.get("parent") for e in images.values()}
                top = []

                def depth(image_id: str) -> int:
                    n = 0
                    while n < 1000 and image_id in images and images[image_id].get("parent"):
                        image_id, n = images[image_id]["parent"], n + 1
                    return n

                # children first, so a parent is still there to be pruned with its last child
                for image_id, entry in sorted(images.items(), key=lambda kv: (-depth(kv[0]), kv[0])):
                    has_refs = bool(entry["repo_tags"] or entry["repo_digests"])
                    if image_id in parents and (dangling_only or not has_refs):
                        continue  # an intermediate image goes with its child
                    if image_id in uses:
                        continue
                    top.append(image_id)
                for image_id in top:
                    entry = index["images"].get(image_id)
                    if entry is None or entry.get("held"):
                        continue
                    targets = list(entry["repo_tags"]) + list(entry["repo_digests"])
                    if targets and dangling_only and entry["repo_tags"]:
                        continue
                    if not targets:
                        targets = [image_id]
                    for target in targets:
                        saved = json.loads(json.dumps(index))
                        marks = len(trash), len(released)
                        try:
                            records = self._remove_locked(index, target, False, True, uses, trash, released)
                        except StoreError:
                            index.clear()
                            index.update(saved)
                            del trash[marks[0]:], released[marks[1]:]
                            break  # a conflict: docker skips the image quietly
                        lines += [r[0].lower() + r[1:] for r in records]
                self._write_index(index)
                doomed = self._discard(trash)
        finally:
            self._empty_trash(doomed)
        return lines, sum(released)

    def _remove_locked(self, index: dict, ref: str, force: bool, prune: bool, uses: dict[str, list[ImageUse]],
                       trash: list[Path], released: list[int]) -> list[str]:
        image_id, key = self._find(index, ref)
        if image_id is None or index["images"][image_id].get("held"):
            raise StoreError(f"No such image: {ref}")
        records: list[str] = []
        entry = index["images"][image_id]
        removed_repo_ref = False
        if key is not None:
            repo_refs = entry["repo_tags"] + entry["repo_digests"]
            users = uses.get(image_id)
            if not force and _is_single_reference(entry) and users:
                raise StoreError(f'conflict: unable to remove repository reference "{ref}" (must force) - '
                                 f"container {users[0].container_id[:12]} is using its referenced image "
                                 f"{_short(image_id)}")
            self._untag(index, image_id, key)
            records.append(f"Untagged: {refs.familiar(key)}")
            if "@" not in key:
                name = refs.parse(key).name
                if not any(refs.parse(t).name == name for t in entry["repo_tags"]):
                    for d in [d for d in entry["repo_digests"] if d.split("@")[0] == name]:
                        self._untag(index, image_id, d)
                        records.append(f"Untagged: {refs.familiar(d)}")
            if entry["repo_tags"] or entry["repo_digests"]:
                return records
            removed_repo_ref = True
            del repo_refs
        elif _is_single_reference(entry):
            conflict = self._conflict(index, image_id, force, uses, ignore_refs=True)
            if conflict is not None:
                raise StoreError(conflict[0])
            for r in list(entry["repo_tags"]) + list(entry["repo_digests"]):
                self._untag(index, image_id, r)
                records.append(f"Untagged: {refs.familiar(r)}")
        self._delete(index, image_id, records, force, prune, removed_repo_ref, uses, trash, released)
        return records

    def _conflict(self, index: dict, image_id: str, force: bool, uses: dict[str, list[ImageUse]],
                  *, ignore_refs: bool = False) -> tuple[str, bool] | None:
        """docker's delete conflicts in its order: (message, used by a container) or None."""
        short = _short(image_id)

        def msg(hard: bool, text: str) -> str:
            return f"conflict: unable to delete {short} ({'cannot be forced' if hard else 'must be forced'}) - {text}"

        if any(e.get("parent") == image_id and not e.get("held") for e in index["images"].values()):
            return msg(True, "image has dependent child images"), False
        users = uses.get(image_id, [])
        running = [u for u in users if u.running]
        if running:
            return msg(True, f"image is being used by running container {running[0].container_id[:12]}"), True
        if force:
            return None
        entry = index["images"][image_id]
        if not ignore_refs and (entry["repo_tags"] or entry["repo_digests"]):
            return msg(False, "image is referenced in multiple repositories"), False
        if users:
            who = users[0].container_id[:12]
            return msg(False, f"image is being used by stopped container {who}" if who
                       else "image is being used by a stopped container"), True
        return None

    def _delete(self, index: dict, image_id: str, records: list[str], force: bool, prune: bool, quiet: bool,
                uses: dict[str, list[ImageUse]], trash: list[Path], released: list[int]) -> None:
        conflict = self._conflict(index, image_id, force, uses)
        entry = index["images"][image_id]
        if conflict is not None:
            # docker's imageIsDangling: no references and no children
            dangling = not entry["repo_tags"] and not entry["repo_digests"] and not any(
                e.get("parent") == image_id and not e.get("held") for e in index["images"].values())
            if quiet and (not dangling or conflict[1]):
                return
            raise StoreError(conflict[0])
        parent = entry.get("parent", "")
        for r in list(entry["repo_tags"]) + list(entry["repo_digests"]):
            self._untag(index, image_id, r)
            records.append(f"Untagged: {refs.familiar(r)}")
        if image_id in uses:
            entry["held"] = True  # a stopped container still needs the layers
            records.append(f"Deleted: {image_id}")
        else:
            del index["images"][image_id]
            records.append(f"Deleted: {image_id}")
            self._release(index, entry, trash, released, records)
            trash.append(self.blob_dir / image_id[7:])
        if not prune or not parent or parent not in index["images"] or index["images"][parent].get("held"):
            return
        self._delete(index, parent, records, False, True, True, uses, trash, released)

    def _release(self, index: dict, entry: dict, trash: list[Path], released: list[int],
                 records: list[str] | None) -> None:
        """Drop the layers and layer blobs of a deleted image that no other image needs (top first).

        The paths go to *trash*: they are discarded only once the new index is written.
        """
        used_chains = {c for e in index["images"].values() for c in e["chain_ids"]}
        used_diffs = {d for e in index["images"].values() for d in e["diff_ids"]}
        for chain in reversed(entry["chain_ids"]):
            if chain in used_chains or chain not in index["layers"]:
                continue
            layer = index["layers"].pop(chain)
            released.append(layer.get("size", 0))
            if records is not None:
                records.append(f"Deleted: {chain}")
            trash.append(self.layer_dir / chain[7:])
        for diff_id in sorted(set(entry["diff_ids"]) - used_diffs):
            trash.append(self.blob_dir / diff_id[7:])

    def _collect_held(self, index: dict, uses: dict, trash: list[Path], released: list[int] | None = None) -> None:
        for image_id, entry in list(index["images"].items()):
            if entry.get("held") and image_id not in uses:
                del index["images"][image_id]
                self._release(index, entry, trash, released if released is not None else [], None)
                trash.append(self.blob_dir / image_id[7:])

    @staticmethod
    def _untag(index: dict, image_id: str, key: str) -> None:
        entry = index["images"][image_id]
        if "@" in key:
            entry["repo_digests"].remove(key)
        else:
            entry["repo_tags"].remove(key)
            index["tags"].pop(key, None)

    def _discard(self, paths: list[Path]) -> list[Path]:
        """After the index no longer names them: unlink blobs, move layer dirs aside (fast, under the lock)."""
        import tempfile

        doomed = []
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                self.tmp_dir.mkdir(parents=True, exist_ok=True)
                dest = Path(tempfile.mkdtemp(prefix=f"trash-{os.getpid()}-", dir=self.tmp_dir))
                os.rename(path, dest / "layer")
                doomed.append(dest)
            else:
                path.unlink(missing_ok=True)
        return doomed

    def _empty_trash(self, trash: list[Path]) -> None:
        if not trash:
            return
        from .tarutil import remove_tree

        for path in trash:
            remove_tree(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _by_prefix(images: dict, hex_prefix: str) -> str | None:
    """The one non-held image whose ID starts with *hex_prefix* (None if none or ambiguous)."""
    found = [i for i, e in images.items() if i[7:].startswith(hex_prefix) and not e.get("held")]
    return found[0] if len(found) == 1 else None


def _is_single_reference(entry: dict) -> bool:
    """docker's isSingleReference: one tag, or all references in one repository with at most one tag."""
    tags, digests = entry["repo_tags"], entry["repo_digests"]
    if len(tags) + len(digests) <= 1:
        return len(tags) + len(digests) == 1
    if len(tags) > 1:
        return False
    canonical = {d.split("@")[0] for d in digests}
    single = refs.parse(tags[0]).name if tags else digests[0].split("@")[0]
    return len(canonical) == 1 and single in canonical


def _append_unique(lst: list[str], item: str) -> None:
    if item not in lst:
        lst.append(item)


def _go_arch() -> str:
    import platform

    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write *data* to *path* so readers see the old or the new file, never a torn one."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
