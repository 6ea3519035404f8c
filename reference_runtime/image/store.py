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
is stored, and two processes never see a half-written index. Every layer is
bounded by ``max_layer_size`` (``REFENGINE_MAX_LAYER_SIZE``, see
:mod:`.fstree`): its uncompressed tar and the sum of its files, so one load,
import or commit takes at most that much temporary space per layer.

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

from ..atomicfile import fsync_dir, write_atomic
from ..errors import StoreError
from . import index as idx
from . import reference as reflib
from .model import ZERO_TIME, Image, ImageUse, container_config, go_arch  # noqa: F401  (re-exported)

TYPE_CHECKING = False  # typing costs ~10 ms to import: only type checkers read these
if TYPE_CHECKING:
    from typing import BinaryIO, Collection, Iterable, Mapping

    #: What ``remove``/``prune`` accept as *in_use*: a collection of image IDs, or a
    #: mapping image ID -> iterable of ImageUse or (container_id, running) pairs.
    InUse = Mapping[str, Iterable[ImageUse | tuple[str, bool]]] | Collection[str]


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
        self.files: list[Path] = []                       # scratch files (a layer tar being written)

    def __enter__(self) -> "_Staged":
        return self

    def __exit__(self, *exc) -> None:
        from .tarutil import remove_tree

        for path in [*self.blobs.values(), *self.files]:
            path.unlink(missing_ok=True)  # moved into place already: nothing to do
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
    """The image store under *root*; directories are created on first write.

    *max_layer_size* bounds a layer's expanded size (default: ``$REFENGINE_MAX_LAYER_SIZE``
    or :data:`.fstree.DEFAULT_MAX_LAYER_SIZE`, read when a writer needs it).
    """

    def __init__(self, root: Path, *, max_layer_size: int | None = None):
        self.root = Path(root)
        self._max_layer_size = max_layer_size
        self.index_path = self.root / "index.json"
        self.blob_dir = self.root / "blobs" / "sha256"
        self.layer_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"

    @property
    def max_layer_size(self) -> int:
        from .fstree import max_layer_size

        return self._max_layer_size if self._max_layer_size is not None else max_layer_size()

    # ------------------------------------------------------------------ reading

    def _read_index(self) -> dict:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return idx.empty()
        try:
            index = json.loads(data)
        except ValueError:
            raise StoreError(f"image index {self.index_path} is corrupt; restore it or remove {self.root}") from None
        if index.get("version") != idx.VERSION:
            raise StoreError(f"image index {self.index_path} has unknown version {index.get('version')!r}")
        return index

    def _image(self, index: dict, image_id: str) -> Image:
        entry = index["images"][image_id]
        try:
            config_bytes = (self.blob_dir / image_id[7:]).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"image {idx.short(image_id)} is damaged: its config blob is missing") from None
        config = json.loads(config_bytes)
        layers = index["layers"]
        sizes = [layers.get(c, {}).get("size", 0) for c in entry["chain_ids"]]
        return Image(
            id=image_id, config=config, config_bytes=config_bytes,
            repo_tags=[reflib.familiar(t) for t in entry["repo_tags"]],
            repo_digests=[reflib.familiar(d) for d in entry["repo_digests"]],
            diff_ids=list(entry["diff_ids"]), chain_ids=list(entry["chain_ids"]),
            created=config.get("created", ""), size=sum(sizes), parent=entry.get("parent", ""),
            layer_sizes=sizes, last_tag_time=entry.get("last_tag_time", ZERO_TIME),
        )

    def resolve(self, ref: str) -> Image:
        """The image *ref* names: ``name[:tag]``, ``name@sha256:...``, or a full/short ID."""
        for attempt in (1, 2):
            index = self._read_index()
            image_id, _ = idx.find(index, ref)
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
        out = self._images_of(index, idx.listed(index, all=all))
        out.sort(key=lambda im: (im.created, im.id), reverse=True)
        return out

    def _images_of(self, index: dict, image_ids: list[str]) -> list[Image]:
        """The images *image_ids* of *index*, less those another process removed since it was read.

        The index is read without the lock, and a concurrent ``rmi`` of an
        unrelated image unlinks its config right after replacing the index:
        a listing (``images``, the builder's cache probe) must skip that
        image, not fail on it. An image a fresh index still names is read
        from that index, so a really damaged one is still an error.
        """
        out = []
        for image_id in image_ids:
            try:
                out.append(self._image(index, image_id))
            except StoreError:
                fresh = self._read_index()
                if image_id in fresh["images"]:
                    out.append(self._image(fresh, image_id))
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
        image_id, _ = idx.find(index, ref)
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
            row["tags"] = [reflib.familiar(t) for t in entry["repo_tags"]]
            current = entry.get("parent", "")
            if not current:
                break
        return rows

    # ------------------------------------------------------------------ writing helpers

    def _locked(self) -> _Lock:
        return _Lock(self.root)

    def _write_index(self, index: dict) -> None:
        data = json.dumps(index, sort_keys=True, indent=1).encode()
        write_atomic(self.index_path, data)

    def _staging(self) -> _Staged:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        return _Staged()

    def _clean_stale(self) -> None:
        """Remove staging left by writers that died (their pid is in the name) before they finished."""
        from .tarutil import remove_tree

        for path in self.stale_staging():
            try:
                if path.is_dir() and not path.is_symlink():
                    remove_tree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass  # never this writer's failure: the next one tries again

    def stale_staging(self) -> list[Path]:
        """Staging (``tmp/*``, ``layers/.tmp-*``) of writers that died: their pid is in the name."""
        stale = []
        for parent, prefixes in ((self.tmp_dir, ("load-", "blob-", "trash-")), (self.layer_dir, (".tmp-",))):
            try:
                names = os.listdir(parent)
            except FileNotFoundError:
                continue
            for name in names:
                prefix = next((p for p in prefixes if name.startswith(p)), None)
                pid = name[len(prefix):].split("-", 1)[0] if prefix else ""
                if pid.isdigit() and not pid_alive(int(pid)):
                    stale.append(parent / name)
        return stale

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
            size = extract_layer(f, target, self.max_layer_size)
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
        _fault("store:installed-blobs")
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
                    size = unpack_layer(f, final, self.max_layer_size)
            index["layers"][chain] = {"diff_id": diff_id, "size": size}
        _fault("store:installed-layers")
        fsync_dir(self.blob_dir)
        fsync_dir(self.layer_dir)

    @staticmethod
    def _add_image(index: dict, config_bytes: bytes, config: dict, *, parent: str = "") -> str:
        from .digest import chain_ids, digest_bytes

        image_id = digest_bytes(config_bytes)
        diff_ids = list(config["rootfs"]["diff_ids"])
        idx.add_image(index, image_id, diff_ids, chain_ids(diff_ids), parent=parent)
        return image_id

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
        staged.files.append(Path(name))  # a writer that fails half-way (ENOSPC) leaves nothing behind
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
            loaded = archive.read_archive(source, work, self.max_layer_size)
            _fault("load:read")
            chains: dict[str, str] = {}
            for image in loaded:
                for chain, diff_id in zip(image.chain_ids, image.diff_ids):
                    chains[chain] = diff_id
                    # staged even when stored: a concurrent rmi may delete it before we install
                    staged.blobs[diff_id] = image.layer_files[diff_id]
                    self._stage_layer(staged, chain, image.layer_files[diff_id])
                self._stage_blob(staged, image.config_bytes)
            _fault("store:staged")
            lines: list[str] = []
            with self._locked():
                index = self._read_index()
                self._install(index, staged, chains)
                for image in loaded:
                    image_id = self._add_image(index, image.config_bytes, image.config)
                    if not image.tags:
                        lines.append(f"Loaded image ID: {image_id}")
                    for tag in image.tags:
                        old = idx.set_tag(index, tag, image_id)
                        if old is not None:
                            lines.append(f"The image {reflib.familiar(tag)} already exists, renaming the old one "
                                         f"with ID {old} to empty string")
                        lines.append(f"Loaded image: {reflib.familiar(tag)}")
                self._write_index(index)
        return lines

    def save(self, refs: list[str], out: BinaryIO) -> None:
        """Write *refs* as one tar: docker's manifest.json + repositories and an OCI image layout."""
        from . import archive

        index = self._read_index()
        selected: dict[str, list[str]] = {}  # image id -> tags to record (normalised)
        for ref in refs:
            parsed = None
            try:
                parsed = reflib.parse(ref, default_tag=False)
            except StoreError:
                pass
            if parsed is not None and parsed.tag is None and parsed.digest is None:
                # a bare repository name saves every tag of it, as docker does
                tags = sorted(t for t in index["tags"] if reflib.parse(t).name == parsed.name)
                if tags:
                    for t in tags:
                        _append_unique(selected.setdefault(index["tags"][t], []), t)
                    continue
            image_id, key = idx.find(index, ref)
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

        tag = reflib.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = None
            if upper_dir is not None:
                tar_path = Path(self._new_file(staged))
                with open(tar_path, "wb") as raw:
                    write_tree(Path(upper_dir), raw, overlay_whiteouts=True, clamp_mtime=clamp_mtime)
                    raw.flush()
                    os.fsync(raw.fileno())
                _fault("commit:layer-written")
            return self._commit_staged(staged, base, tar_path, config=config, author=author, comment=comment,
                                       created_by=created_by, tag=tag, created=created, parent=parent)

    def commit_tar(self, base: Image | None, layer: BinaryIO | None, *, config: dict, author: str = "",
                   comment: str = "", created_by: str = "", ref: str | None = None,
                   created: str | None = None, parent: str | None = None) -> Image:
        """Like :meth:`commit`, with the new layer given as a (plain or gzip) tar stream in OCI form
        (``.wh.`` whiteouts): for a builder that writes COPY/ADD layers itself."""
        from . import archive

        tag = reflib.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = None
            if layer is not None:
                tar_path = Path(self._new_file(staged))
                archive.decompress_to(layer, tar_path, self.max_layer_size)
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
            "architecture": (base.config.get("architecture") if base else None) or go_arch(),
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
        _fault("store:staged")
        with self._locked():
            index = self._read_index()
            self._install(index, staged, chains)
            image_id = self._add_image(index, config_bytes, new_config,
                                       parent=parent if parent is not None else (base.id if base else ""))
            if tag:
                idx.set_tag(index, tag, image_id, when=now_rfc3339())
            self._write_index(index)
            return self._image(index, image_id)

    def children(self, image_id: str) -> list[Image]:
        """Images whose recorded parent is *image_id* (the classic builder's cache candidates)."""
        index = self._read_index()
        return self._images_of(index, idx.children(index, image_id))

    def import_tar(self, source: BinaryIO, ref: str | None, *, changes: dict | None = None,
                   message: str = "", created: str | None = None) -> Image:
        """``refengine import``: one layer from a (plain, gzip, bzip2 or xz) rootfs tar, a new image."""
        from . import archive
        from .digest import chain_ids

        created = created or now_rfc3339()
        tag = reflib.normalise_tag(ref) if ref else None
        with self._staging() as staged:
            tar_path = Path(self._new_file(staged))
            diff_id = archive.decompress_to(source, tar_path, self.max_layer_size)
            staged.blobs[diff_id] = tar_path
            chain = chain_ids([diff_id])[0]
            self._stage_layer(staged, chain, tar_path)
            new_config = {
                "architecture": go_arch(), "os": "linux", "created": created,
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
                    idx.set_tag(index, tag, image_id, when=now_rfc3339())
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
        key = reflib.normalise_tag(target)
        with self._locked():
            index = self._read_index()
            image_id, _ = idx.find(index, source)
            if image_id is None:
                raise StoreError(f"No such image: {source}")
            idx.set_tag(index, key, image_id, when=now_rfc3339())
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
        uses = idx.normalise_uses(in_use)
        out = idx.Removal()
        doomed: list[Path] = []
        try:
            with self._locked():
                index = self._read_index()
                if in_use is not None:
                    idx.collect_held(index, uses, out)
                idx.remove(index, ref, force=force, prune=prune, uses=uses, out=out)
                self._write_index(index)
                doomed = self._discard(out.doomed)
                _fault("store:discarded")
        finally:
            self._empty_trash(doomed)
        return out.records

    def prune(self, *, dangling_only: bool = True, in_use: InUse = frozenset()) -> list[str]:
        """``docker image prune [-a]``: the "untagged: ..."/"deleted: ..." lines."""
        return self.prune_report(dangling_only=dangling_only, in_use=in_use)[0]

    def prune_report(self, *, dangling_only: bool = True, in_use: InUse = frozenset()) -> tuple[list[str], int]:
        """Like :meth:`prune`, plus the bytes reclaimed (for "Total reclaimed space")."""
        uses = idx.normalise_uses(in_use)
        out = idx.Removal()
        doomed: list[Path] = []
        try:
            with self._locked():
                index = self._read_index()
                lines = idx.prune(index, dangling_only=dangling_only, uses=uses, out=out)
                self._write_index(index)
                doomed = self._discard(out.doomed)
        finally:
            self._empty_trash(doomed)
        return lines, sum(out.released)

    def _discard(self, objects: list[tuple[str, str]]) -> list[Path]:
        """After the index no longer names them: unlink blobs, move layer dirs aside (fast, under the lock).

        Returns the moved layer dirs, to be deleted once the lock is released.
        """
        import tempfile

        doomed = []
        for kind, digest in objects:
            path = (self.layer_dir if kind == "layer" else self.blob_dir) / digest[7:]
            if kind == "layer" and path.is_dir() and not path.is_symlink():
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


def _fault(name: str) -> None:
    """A crash-test point (reference_runtime/faults.py), imported only by writers."""
    from ..faults import point

    point(name)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a writer that left staging behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _append_unique(lst: list[str], item: str) -> None:
    if item not in lst:
        lst.append(item)
