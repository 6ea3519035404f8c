"""What the image store hands out: :class:`Image` (one stored image, with
docker's ``image inspect`` view) and :class:`ImageUse` (a container using
an image, for ``rmi``/``prune`` conflicts).

Plain immutable classes rather than dataclasses: importing ``dataclasses``
alone costs more than ``refengine run``'s whole image lookup.
"""

from __future__ import annotations

ZERO_TIME = "0001-01-01T00:00:00Z"

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


class Image:
    """One stored image (immutable). ``id`` is ``sha256:`` + sha256(config_bytes).

    Fields: ``id``, ``config`` (the OCI image config as a dict),
    ``config_bytes``, ``repo_tags``/``repo_digests`` (docker's familiar
    form, ``busybox:latest``), ``diff_ids``, ``chain_ids`` (lowest first),
    ``created`` (RFC 3339), ``size`` (the unpacked layers as docker counts
    them), ``parent`` (committed/built images), ``layer_sizes``,
    ``last_tag_time``.
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

    __hash__ = None  # type: ignore[assignment]  # holds lists and dicts, like a frozen dataclass of them

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


class ImageUse:
    """A container using an image, as ``remove``/``prune`` need to know it."""

    __slots__ = ("container_id", "running")

    def __init__(self, container_id: str, running: bool):
        self.container_id, self.running = container_id, running

    def __repr__(self) -> str:
        return f"ImageUse({self.container_id!r}, {self.running!r})"


def go_arch() -> str:
    """This machine's architecture as Go (and so OCI image configs) names it."""
    import platform

    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)
