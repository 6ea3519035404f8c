"""The state root: where containers, names, volumes and events live on disk,
and the per-container records (config + state) with their locks.

::

    ROOT/                            --root DIR / $REFENGINE_ROOT (/var/lib/refengine)
      image/                         the image store (reference_runtime.image)
      containers/<id>/
        config.json                  what create decided; rewritten (atomically) only by rename
        state.json                   State, RestartCount, supervisor; replaced atomically
        lock                         flock: one writer of state.json at a time
        init/                        overlay layer under the container layer: mount points
        upper/ work/                 the container layer (overlay upperdir, workdir)
        merged/                      the rootfs mount point (mounted only inside the container)
        hostname hosts resolv.conf   bind-mounted on /etc/*
        <id>-json.log                docker's json-file log
      names/<name> -> <id>           symlink; creating it is the atomic name reservation
      volumes/<name>/_data           a volume's content; volume.json its metadata
      events.log                     one JSON event per line

Hot path: only os, fcntl and the _json wrapper.
"""

from __future__ import annotations

import fcntl
import os
import time

from ..errors import ContainerError
from . import jsonio

DEFAULT_ROOT = "/var/lib/refengine"
ZERO_TIME = "0001-01-01T00:00:00Z"
ACTIVE = ("running", "paused", "restarting")


_TRACE = os.environ.get("REFENGINE_TRACE")


def trace(label: str) -> None:
    """With REFENGINE_TRACE=FILE, append ``<CLOCK_MONOTONIC> <pid> <label>`` (the start-latency breakdown)."""
    if _TRACE:
        fd = os.open(_TRACE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.write(fd, f"{time.monotonic():.6f} {os.getpid()} {label}\n".encode())
        os.close(fd)


if os.environ.get("REFENGINE_FAULT"):
    from ..faults import point as fault
else:
    def fault(name: str) -> None:
        """A crash-test point (reference_runtime/faults.py); unarmed, that module is not even imported."""


def rfc3339(ns: int | None = None) -> str:
    """RFC 3339 in UTC with nanoseconds: ``2026-11-27T19:53:18.378445300Z``."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(secs)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{frac:09d}Z")


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of a timestamp written by :func:`rfc3339` (0 for the zero time)."""
    if not value or value.startswith("0001-"):
        return 0.0
    import calendar

    date, _, clock = value.rstrip("Z").partition("T")
    whole, _, frac = clock.partition(".")
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi, s = (int(x) for x in whole.split(":"))
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + (float("0." + frac) if frac else 0.0)


class Lock:
    """An exclusive flock on a file, as a context manager (no contextlib: it is slow to import)."""

    __slots__ = ("path", "fd")

    def __init__(self, path: str):
        self.path, self.fd = path, -1

    def __enter__(self) -> "Lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
        self.fd = -1


class Root:
    """Paths under one state root."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.containers = os.path.join(self.path, "containers")
        self.names = os.path.join(self.path, "names")
        self.volumes = os.path.join(self.path, "volumes")
        self.image = os.path.join(self.path, "image")
        self.events = os.path.join(self.path, "events.log")

    def ensure(self) -> None:
        for d in (self.containers, self.names, self.volumes):
            os.makedirs(d, mode=0o711, exist_ok=True)

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def lock(self, cid: str) -> Lock:
        return Lock(os.path.join(self.containers, cid, "lock"))

    # -- names and ids ---------------------------------------------------
    def reserve_name(self, name: str, cid: str) -> None:
        try:
            os.symlink(cid, os.path.join(self.names, name))
        except FileExistsError:
            other = self.id_of_name(name) or "?"
            raise ContainerError(
                f'Conflict. The container name "/{name}" is already in use by container "{other}". '
                f"You have to remove (or rename) that container to be able to reuse that name.") from None

    def release_name(self, name: str, cid: str) -> None:
        path = os.path.join(self.names, name)
        try:
            if os.readlink(path) == cid:
                os.unlink(path)
        except OSError:
            pass

    def id_of_name(self, name: str) -> str | None:
        try:
            return os.readlink(os.path.join(self.names, name))
        except OSError:
            return None

    def container_ids(self) -> list[str]:
        try:
            return [e for e in os.listdir(self.containers) if len(e) == 64]
        except FileNotFoundError:
            return []

    def find(self, ref: str) -> str:
        """A container's full id from its name, ``/name``, full id or unique id prefix."""
        name = ref[1:] if ref.startswith("/") else ref
        cid = self.id_of_name(name) if name else None
        if cid and os.path.isdir(self.container_dir(cid)):
            return cid
        if ref and all(c in "0123456789abcdef" for c in ref):
            if len(ref) == 64 and os.path.isdir(self.container_dir(ref)):
                return ref
            matches = [c for c in self.container_ids() if c.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ContainerError(f"multiple IDs found with provided prefix: {ref}")
        raise ContainerError(f"No such container: {ref}")

    # -- records -----------------------------------------------------------
    def read_config(self, cid: str) -> dict:
        try:
            return jsonio.read(os.path.join(self.containers, cid, "config.json"))
        except FileNotFoundError:
            raise ContainerError(f"No such container: {cid}") from None

    def read_state(self, cid: str) -> dict:
        try:
            return jsonio.read(os.path.join(self.containers, cid, "state.json"))
        except FileNotFoundError:
            raise ContainerError(f"No such container: {cid}") from None

    def write_state(self, cid: str, state: dict) -> None:
        jsonio.write_atomic(os.path.join(self.containers, cid, "state.json"), state)

    def container_event(self, action: str, cid: str, config: dict | None = None, **extra: str) -> None:
        """A container's event with docker's attributes (:func:`container_attributes`); its
        config is read when not given (give it when the container is being removed)."""
        if config is None:
            try:
                config = self.read_config(cid)
            except (ContainerError, ValueError):
                config = {}
        self.event("container", action, cid, container_attributes(config, **extra))

    def event(self, kind: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
        """Append one event (docker's events JSON, its keys in docker's order) to events.log;
        O_APPEND keeps lines whole. docker's legacy ``status``/``id``/``from`` are set on
        container events only, as dockerd does."""
        ns = time.time_ns()
        attributes = attributes or {}
        legacy = {"status": action, "id": actor_id, "from": attributes.get("image", "")} if kind == "container" else {}
        line = jsonio.dumps({**legacy, "Type": kind, "Action": action,
                             "Actor": {"ID": actor_id, "Attributes": attributes}, "scope": "local",
                             "time": ns // 1_000_000_000, "timeNano": ns})
        try:
            fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            return
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def container_attributes(config: dict, **extra: str) -> dict:
    """The attributes dockerd puts on every event of a container: its labels (the
    image's and its own), ``image`` as given to run/create, ``name``; then ``extra``
    (``exitCode``, ``signal``).

    >>> container_attributes({"Name": "/web", "Config": {"Image": "busybox", "Labels": {"a": "b"}}}, signal="9")
    {'a': 'b', 'image': 'busybox', 'name': 'web', 'signal': '9'}
    """
    conf = config.get("Config") or {}
    return {**(conf.get("Labels") or {}), "image": conf.get("Image", ""), "name": config.get("Name", "/")[1:], **extra}


def new_state() -> dict:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
            "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
            "RestartCount": 0, "ManualStop": False, "PidStart": 0, "Supervisor": {"Pid": 0, "Start": 0}}


def process_start(pid: int) -> int:
    """The start time (clock ticks since boot) of ``pid``, 0 if it is gone: with the
    pid it identifies a process even after its pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] == b"Z":
        return 0
    return int(fields[19])


def alive(pid: int, start: int) -> bool:
    return pid > 0 and start > 0 and process_start(pid) == start
