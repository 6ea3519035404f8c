"""What removing a container leaves behind, and who still uses a volume.

Below :mod:`.runtime` and :mod:`.supervisor` (both remove containers: ``rm``
and ``--rm``), so neither has to import the other.
"""

from __future__ import annotations

import os

from ..errors import ContainerError
from .state import Root, fault


def purge(path: str) -> None:
    """Delete a directory tree without following symlinks, best effort; any depth (a container
    may make directories deeper than Python's recursion limit and paths longer than PATH_MAX)."""
    from ..image.fstree import remove_tree

    try:
        remove_tree(path)
    except OSError:
        pass


def remove_files(root: Root, cid: str, *, volumes: bool, cgroups: bool = True) -> str:
    """Everything of a stopped container: name, cgroup, anonymous volumes (``volumes``); its
    directory is renamed away and returned for :func:`purge` (the container is gone already)."""
    from . import volumes as vol
    from .cgroups import Cgroup

    config = root.read_config(cid)
    if cgroups:
        Cgroup(cid).destroy()
    root.release_name(config["Name"][1:], cid)
    cdir = root.container_dir(cid)
    # config.json goes first: a half-removed container is not listed any more.
    os.unlink(os.path.join(cdir, "config.json"))
    fault("rm:after-config-unlink")
    trash = f"{root.containers}/.trash-{cid}"
    os.rename(cdir, trash)
    fault("rm:after-rename")
    if volumes:
        for m in config["Mounts"]:
            if m["Type"] == "volume" and m.get("Anonymous"):
                if not volumes_in_use(root, m["Name"]):
                    try:
                        vol.remove(root.path, m["Name"], [])
                    except ContainerError:
                        pass
    return trash


def volume_users(root: Root) -> dict[str, list[str]]:
    """volume name -> IDs of the containers that mount it (the one scan for ``volume rm``,
    ``volume ls --filter dangling``, ``system df`` and ``rm -v``)."""
    configs = []
    for cid in root.container_ids():
        try:
            configs.append(root.read_config(cid))
        except (ContainerError, ValueError):
            continue  # being created or removed
    users: dict[str, list[str]] = {}
    for config in sorted(configs, key=lambda c: c["Created"], reverse=True):  # newest first, as ps lists them
        cid = config["Id"]
        for m in config["Mounts"]:
            if m["Type"] == "volume":
                users.setdefault(m["Name"], []).append(cid)
    return users


def volumes_in_use(root: Root, name: str) -> list[str]:
    """IDs of the containers that mount volume ``name``."""
    return volume_users(root).get(name, [])
