"""Local volumes: ``ROOT/volumes/<name>/_data`` plus ``volume.json``
(labels, options, created, anonymous), filled from the image on first mount.
"""

from __future__ import annotations

import os

from ..errors import ContainerError
from . import jsonio
from .state import Lock, fault, rfc3339


def valid_name(name: str) -> bool:
    """A local volume's name: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*`` (docker's rule)."""
    ok = name and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)
    return bool(ok)


def path_of(root: str, name: str) -> str:
    return os.path.join(root, "volumes", name)


def exists(root: str, name: str) -> bool:
    return os.path.isfile(os.path.join(path_of(root, name), "volume.json"))


def create(root: str, name: str, labels: dict | None = None, options: dict | None = None,
           anonymous: bool = False) -> dict:
    """Create ``name`` unless it exists (then return it, like docker's volume create)."""
    if not valid_name(name):
        raise ContainerError(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                             f"only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")
    vdir = path_of(root, name)
    os.makedirs(vdir, exist_ok=True)
    with Lock(os.path.join(vdir, "lock")):
        meta_path = os.path.join(vdir, "volume.json")
        if os.path.exists(meta_path):
            return jsonio.read(meta_path)
        os.makedirs(os.path.join(vdir, "_data"), mode=0o755, exist_ok=True)
        meta = {"CreatedAt": rfc3339(), "Labels": labels or {}, "Options": options or {},
                "Anonymous": anonymous, "Filled": False}
        jsonio.write_atomic(meta_path, meta)
    return meta


def inspect(root: str, name: str) -> dict:
    vdir = path_of(root, name)
    try:
        meta = jsonio.read(os.path.join(vdir, "volume.json"))
    except (FileNotFoundError, NotADirectoryError):
        raise ContainerError(f"get {name}: no such volume") from None
    return {"CreatedAt": meta["CreatedAt"], "Driver": "local", "Labels": meta.get("Labels") or {},
            "Mountpoint": os.path.join(vdir, "_data"), "Name": name, "Options": meta.get("Options") or {},
            "Scope": "local"}


def names(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "volumes")) if exists(root, n))
    except FileNotFoundError:
        return []


def is_anonymous(root: str, name: str) -> bool:
    try:
        return bool(jsonio.read(os.path.join(path_of(root, name), "volume.json")).get("Anonymous"))
    except OSError:
        return False


def remove(root: str, name: str, in_use_by: list[str]) -> None:
    if not exists(root, name):
        raise ContainerError(f"get {name}: no such volume")
    if in_use_by:
        raise ContainerError(f"remove {name}: volume is in use - [{', '.join(in_use_by)}]")
    import shutil

    vdir = path_of(root, name)
    # Unlink the metadata first: a half-removed volume is gone, never half-there.
    os.unlink(os.path.join(vdir, "volume.json"))
    fault("volume-rm:after-meta")
    shutil.rmtree(vdir, ignore_errors=True)


def fill(root: str, name: str, image_path: str) -> None:
    """Copy the image's content at the mount point into a new, empty volume (docker's
    copy-on-first-mount); ``image_path`` is inside the container's rootfs."""
    vdir = path_of(root, name)
    data = os.path.join(vdir, "_data")
    with Lock(os.path.join(vdir, "lock")):
        meta_path = os.path.join(vdir, "volume.json")
        meta = jsonio.read(meta_path)
        if meta.get("Filled"):
            return
        if os.path.isdir(image_path) and not os.path.islink(image_path) and not os.listdir(data):
            _copy_tree(image_path, data)
            st = os.lstat(image_path)
            os.chown(data, st.st_uid, st.st_gid)
            os.chmod(data, st.st_mode & 0o7777)
        meta["Filled"] = True
        jsonio.write_atomic(meta_path, meta)


def _copy_tree(src: str, dst: str) -> None:
    """Copy without following symlinks, keeping owners and modes."""
    import shutil

    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(s), d)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(d)
            _copy_tree(s, d)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(s, d, follow_symlinks=False)
        else:
            continue  # devices, fifos, sockets: not volume content
        os.lchown(d, st.st_uid, st.st_gid)
        if not entry.is_symlink():
            os.chmod(d, st.st_mode & 0o7777)
