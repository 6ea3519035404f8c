"""``refengine system check [--repair]``: is the state root whole?

What a crash (SIGKILL of the CLI or of a supervisor, a full disk) can leave
behind, and what ``--repair`` does about it. Every write of refengine is
staged and then renamed into place, so a crash leaves *leftovers* (staging,
half-removed objects) and *stale claims* (a "running" state whose supervisor
is gone, a cgroup or mount nobody owns), never a half-written object under
its final name. Those the repair removes or marks; it never touches an
object that is complete. Damage a crash cannot cause (a blob whose bytes do
not match its name, a missing config) is reported and left for a person.

The checks, each a small function yielding :class:`Problem` s:

- image store: ``index.json`` parses; every tag names an image; every image's
  config blob is present and hashes to its ID, and its DiffIDs/ChainIDs agree
  with the config; every ChainID has its layer directory, with every entry of
  its layer tar; every blob hashes to its name and is needed; no layer
  directory, blob or staging that the index does not account for;
- containers: ``config.json`` and ``state.json`` both present (else a create
  or rm was cut short); no active state whose supervisor is dead; the image
  and layers it runs on exist; its name points at it; no ``.trash-*``; no
  cgroup of a container that does not run; no ``*.PID.tmp`` of a dead writer;
- names: every ``names/<name>`` link points at a container that has that name;
- volumes: every volume directory has its ``volume.json``; every volume a
  container mounts exists;
- builds: no work directory of a build that died;
- mounts: nothing is mounted under the root (refengine mounts only inside
  private mount namespaces, so a mount visible here is left over).

There is no stale lock to look for: every lock is a flock(2), which the
kernel releases when its holder dies (the empty lock files are harmless).

The image store part runs under the store's lock, and each container under
its own lock, so a check beside a running refengine sees whole objects; a
repair is still meant for a root no other command is changing (as fsck).

>>> problems = check(Root("/var/lib/refengine"))          # doctest: +SKIP
>>> [p.line() for p in problems]                          # doctest: +SKIP
['containers/0123abcd...: config.json written but no state.json (create cut short)']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..image.store import ImageStore, pid_alive
from . import jsonio
from .state import ACTIVE, Root, alive, new_state


@dataclass
class Problem:
    """One thing wrong, where (relative to the root), and what ``--repair`` does (None: nothing safe)."""

    where: str
    what: str
    repair: Callable[[], None] | None = None
    action: str = ""

    def line(self) -> str:
        return f"{self.where}: {self.what}"


def check(root: Root, *, repair: bool = False, report: Callable[[str], None] = lambda line: None) -> list[Problem]:
    """Every problem under *root*; with *repair*, each repairable one is fixed as it is found.

    Returns the problems left (all of them without *repair*); *report* gets one
    line per problem found, saying what was repaired.
    """
    left: list[Problem] = []
    for section in (_image_store, _containers, _names, _volumes, _builds, _mounts):
        for problem in section(root):
            if repair and problem.repair is not None:
                problem.repair()
                report(f"{problem.line()} (repaired: {problem.action})")
            else:
                report(problem.line() + (" (not repairable: left as it is)" if repair else ""))
                left.append(problem)
    return left


def _rel(root: Root, path: str | Path) -> str:
    return os.path.relpath(str(path), root.path)


def _remove(path: str | Path) -> Callable[[], None]:
    def remove() -> None:
        from ..image.tarutil import remove_tree

        p = Path(path)
        if p.is_dir() and not p.is_symlink():
            remove_tree(p)
        else:
            p.unlink(missing_ok=True)
    return remove


def _pid_of(name: str, prefix: str) -> int | None:
    """The writer's pid in a staging name ``<prefix><pid>-...`` or ``<name>.<pid>.tmp``; None if none."""
    if prefix == ".tmp":
        parts = name.rsplit(".", 2)
        return int(parts[1]) if len(parts) == 3 and parts[2] == "tmp" and parts[1].isdigit() else None
    if not name.startswith(prefix):
        return None
    pid = name[len(prefix):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _dead_tmp_files(root: Root, directory: str) -> Iterator[Problem]:
    """``<file>.<pid>.tmp`` (jsonio.write_atomic) of writers that died before the rename."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        pid = _pid_of(name, ".tmp")
        if pid is not None and not pid_alive(pid):
            path = os.path.join(directory, name)
            yield Problem(_rel(root, path), "temporary file of a writer that died", _remove(path), "removed")


# ---------------------------------------------------------------- image store


def _sha256_file(path: Path) -> str:
    import hashlib

    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def expected_entries(tar_path: Path) -> dict[str, str]:
    """What unpacking this layer tar leaves: relative path -> "dir", "whiteout" or "file".

    Later entries win as they do in the extractor: a whiteout or a non-directory
    replaces whatever was at its path, with everything under it.
    """
    import tarfile

    from ..image.tarutil import WHITEOUT_META_PREFIX, WHITEOUT_PREFIX, entry_parts

    entries: dict[str, str] = {}

    def replace(path: str, kind: str) -> None:
        for key in [k for k in entries if k.startswith(path + "/")]:
            del entries[key]
        entries[path] = kind

    with tarfile.open(tar_path, mode="r|*") as tar:
        for info in tar:
            parts = entry_parts(info.name)
            if not parts:
                continue
            for i in range(1, len(parts)):  # parents are made on the way
                entries.setdefault("/".join(parts[:i]), "dir")
            base = parts[-1]
            if base.startswith(WHITEOUT_META_PREFIX):
                continue  # the opaque marker is an xattr on the parent; AUFS metadata is dropped
            if base.startswith(WHITEOUT_PREFIX):
                replace("/".join(parts[:-1] + [base[len(WHITEOUT_PREFIX):]]), "whiteout")
            elif info.isdir():
                entries.setdefault("/".join(parts), "dir")
                if entries["/".join(parts)] != "dir":
                    replace("/".join(parts), "dir")
            else:
                replace("/".join(parts), "file")
    return entries


def missing_entries(layer_dir: Path, expected: dict[str, str]) -> list[str]:
    """Entries of *expected* (see :func:`expected_entries`) not in *layer_dir*, sorted."""
    import stat

    missing = []
    for rel, kind in expected.items():
        try:
            st = os.lstat(layer_dir / rel)
        except OSError:
            missing.append(rel)
            continue
        if kind == "dir" and not stat.S_ISDIR(st.st_mode):
            missing.append(rel)
        elif kind == "whiteout" and not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
            missing.append(rel)
    return sorted(missing)


def index_problems(index: dict, blobs: set[str]) -> list[tuple[str, str, str]]:
    """Pure checks of the index against the stored blob digests: (code, subject, message).

    Codes: ``tag`` (a tag naming no image: droppable), ``config`` (an image
    without its config blob), ``blob`` (an image's layer blob missing),
    ``record`` (an image's ChainID without a layer record: re-creatable from
    its blob), ``unused-layer`` (a layer record no image needs).

    >>> index_problems({"images": {}, "tags": {"docker.io/library/a:latest": "sha256:ab"}, "layers": {}}, set())
    [('tag', 'docker.io/library/a:latest', 'tag names image sha256:ab, which is not in the index')]
    """
    out = []
    images, layers = index.get("images", {}), index.get("layers", {})
    for tag, image_id in sorted(index.get("tags", {}).items()):
        if image_id not in images:
            out.append(("tag", tag, f"tag names image {image_id}, which is not in the index"))
    used: set[str] = set()
    for image_id, entry in sorted(images.items()):
        if image_id not in blobs:
            out.append(("config", image_id, "config blob is missing"))
        for chain, diff_id in zip(entry.get("chain_ids", []), entry.get("diff_ids", [])):
            used.add(chain)
            if diff_id not in blobs:
                out.append(("blob", image_id, f"layer blob {diff_id} is missing"))
            if chain not in layers:
                out.append(("record", chain, f"layer of image {image_id[7:19]} has no record in the index"))
    for chain in sorted(set(layers) - used):
        out.append(("unused-layer", chain, "layer record that no image uses"))
    return out


def _image_store(root: Root) -> Iterator[Problem]:
    store = ImageStore(Path(root.image))
    if not os.path.isdir(store.root):
        return
    from ..errors import StoreError

    # Writers rename objects in and replace the index under this lock: holding it,
    # whatever the index does not name is left over, not in flight.
    with store._locked():
        try:
            index = store._read_index()
        except StoreError as exc:
            yield Problem(_rel(root, store.index_path), str(exc))
            return
        changed: list[bool] = []  # repairs that edit the index say so here
        yield from list(_image_store_locked(root, store, index, changed))  # all found before any repair
        if changed:
            store._write_index(index)
    for path in store.stale_staging():
        yield Problem(_rel(root, path), "staging of an image writer that died", _remove(path), "removed")


def _image_store_locked(root: Root, store: ImageStore, index: dict, changed: list[bool]) -> Iterator[Problem]:
    from ..image.digest import chain_ids

    blob_names = set(os.listdir(store.blob_dir)) if store.blob_dir.is_dir() else set()
    blobs = {"sha256:" + n for n in blob_names if len(n) == 64}
    images, layers = index["images"], index["layers"]
    needed = set(images) | {d for e in images.values() for d in e["diff_ids"]}
    image_chains = {c for e in images.values() for c in e["chain_ids"]}

    def drop_tag(tag: str) -> Callable[[], None]:
        def drop() -> None:
            index["tags"].pop(tag, None)
            changed.append(True)
        return drop

    def reunpack(chain: str, diff_id: str) -> Callable[[], None]:
        def fix() -> None:
            from ..image.tarutil import remove_tree, unpack_layer

            final = store.layer_dir / chain[7:]
            if final.exists():
                store.tmp_dir.mkdir(parents=True, exist_ok=True)
                import tempfile

                aside = Path(tempfile.mkdtemp(prefix=f"trash-{os.getpid()}-", dir=store.tmp_dir))
                os.rename(final, aside / "layer")
                remove_tree(aside)
            with open(store.blob_dir / diff_id[7:], "rb") as f:
                size = unpack_layer(f, final)
            layers[chain] = {"diff_id": diff_id, "size": size}
            changed.append(True)
        return fix

    for code, subject, message in index_problems(index, blobs):
        where = f"image/{subject}"
        if code == "tag":
            yield Problem(where, "index: " + message, drop_tag(subject), "tag dropped")
        elif code == "record":
            diff_id = next(d for e in images.values() for c, d in zip(e["chain_ids"], e["diff_ids"]) if c == subject)
            fix = reunpack(subject, diff_id) if diff_id in blobs else None
            yield Problem(where, "index: " + message, fix, "layer unpacked again from its blob")
        elif code == "unused-layer":
            def forget(chain: str = subject) -> None:
                layers.pop(chain, None)
                _remove(store.layer_dir / chain[7:])()
                changed.append(True)
            yield Problem(where, "index: " + message, forget, "record and directory removed")
        else:
            yield Problem(where, message)

    for image_id, entry in sorted(images.items()):
        config_path = store.blob_dir / image_id[7:]
        if image_id not in blobs:
            continue  # reported above
        try:
            import json

            config = json.loads(config_path.read_bytes())
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError, OSError):
            yield Problem(f"image/{image_id}", "config blob is not an image config")
            continue
        if diff_ids != entry["diff_ids"] or chain_ids(diff_ids) != entry["chain_ids"]:
            yield Problem(f"image/{image_id}", "the index's DiffIDs/ChainIDs disagree with the config")

    for name in sorted(blob_names):
        path = store.blob_dir / name
        digest = "sha256:" + name
        if digest not in needed:
            yield Problem(_rel(root, path), "blob that no image needs (a writer died before the index)",
                          _remove(path), "removed")
        elif _sha256_file(path) != digest:
            yield Problem(_rel(root, path), "blob content does not match its digest")

    names = sorted(os.listdir(store.layer_dir)) if store.layer_dir.is_dir() else []
    for name in names:
        path = store.layer_dir / name
        if name.startswith("."):
            continue  # staging: judged by its writer's pid (stale_staging)
        chain = "sha256:" + name
        if chain not in layers and chain not in image_chains:  # an image's: its record is re-made above
            yield Problem(_rel(root, path), "layer directory the index does not name (a writer died)",
                          _remove(path), "removed")
    for chain, record in sorted(layers.items()):
        path = store.layer_dir / chain[7:]
        diff_id = record.get("diff_id", "")
        blob = store.blob_dir / diff_id[7:]
        fix = reunpack(chain, diff_id) if diff_id in blobs else None
        if not path.is_dir():
            yield Problem(_rel(root, path), "layer directory is missing", fix, "unpacked again from its blob")
            continue
        if diff_id not in blobs:
            continue  # reported above; nothing to compare with
        try:
            missing = missing_entries(path, expected_entries(blob))
        except Exception as exc:  # noqa: BLE001 - a damaged blob is a finding, not a traceback
            yield Problem(_rel(root, blob), f"layer blob cannot be read as a tar: {exc}")
            continue
        if missing:
            yield Problem(_rel(root, path), f"layer directory is incomplete: {len(missing)} entries missing, "
                          f"first {missing[0]!r}", fix, "unpacked again from its blob")

    for name in sorted(os.listdir(store.root)):
        if name.startswith(".tmp-"):  # atomicfile's temporary index of a writer that died (we hold the lock)
            path = store.root / name
            yield Problem(_rel(root, path), "temporary index file of a writer that died", _remove(path), "removed")


# ---------------------------------------------------------------- containers


def _cgroup_left(cid: str) -> bool:
    from .cgroups import Cgroup

    cgroup = Cgroup(cid)
    return any(os.path.isdir(d) for d in [*cgroup.v1.values(), *([cgroup.dir] if cgroup.dir else [])])


def _destroy_cgroup(cid: str) -> Callable[[], None]:
    def destroy() -> None:
        from .cgroups import Cgroup

        Cgroup(cid).destroy()
    return destroy


def _drop_container(root: Root, cid: str) -> Callable[[], None]:
    """Forget a container whose create or rm was cut short: names, cgroup, the anonymous
    volumes its create made (if its config says which), files."""
    def drop() -> None:
        from . import volumes
        from .runtime import purge, volumes_in_use

        try:
            mounts = jsonio.read(os.path.join(root.container_dir(cid), "config.json"))["Mounts"]
        except (OSError, ValueError, KeyError):
            mounts = []
        for name in _names_of(root, cid):
            root.release_name(name, cid)
        _destroy_cgroup(cid)()
        cdir = root.container_dir(cid)
        trash = f"{root.containers}/.trash-{cid}"
        if os.path.isdir(cdir):
            os.rename(cdir, trash)
        purge(trash)
        for m in mounts:
            if m.get("Anonymous") and volumes.exists(root.path, m["Name"]) and not volumes_in_use(root, m["Name"]):
                volumes.remove(root.path, m["Name"], [])
    return drop


def _names_of(root: Root, cid: str) -> list[str]:
    try:
        names = os.listdir(root.names)
    except FileNotFoundError:
        return []
    return [n for n in names if root.id_of_name(n) == cid]


def _containers(root: Root) -> Iterator[Problem]:
    try:
        entries = sorted(os.listdir(root.containers))
    except FileNotFoundError:
        return
    from .runtime import purge

    images = _image_ids(root)
    yield from _dead_tmp_files(root, root.containers)
    for name in entries:
        path = os.path.join(root.containers, name)
        if name.startswith(".trash-"):
            cid = name[len(".trash-"):]

            def finish(path: str = path, cid: str = cid) -> None:
                _destroy_cgroup(cid)()
                purge(path)
            yield Problem(_rel(root, path), "container removal cut short", finish, "removed")
        elif len(name) == 64:
            yield from _container(root, name, images)


def _image_ids(root: Root) -> set[str] | None:
    try:
        return set(jsonio.read(os.path.join(root.image, "index.json"))["images"])
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, KeyError):
        return None  # reported by the image store check


def _container(root: Root, cid: str, images: set[str] | None) -> Iterator[Problem]:
    from .runtime import reconcile

    cdir = root.container_dir(cid)
    where = _rel(root, cdir)
    try:
        lock = root.lock(cid).__enter__()
    except FileNotFoundError:
        return  # removed meanwhile
    try:
        config_path, state_path = os.path.join(cdir, "config.json"), os.path.join(cdir, "state.json")
        if not os.path.exists(config_path):
            yield Problem(where, "container directory without config.json (create or rm cut short)",
                          _drop_container(root, cid), "removed")
            return
        try:
            config = jsonio.read(config_path)
        except ValueError:
            yield Problem(where, "config.json is not valid JSON")
            return
        yield from _dead_tmp_files(root, cdir)
        if not os.path.exists(state_path):
            yield Problem(where, "config.json written but no state.json (create cut short)",
                          _drop_container(root, cid), "removed")
            return
        try:
            state = jsonio.read(state_path)
        except ValueError:
            def reset(cid: str = cid) -> None:
                root.write_state(cid, {**new_state(), "Status": "exited"})
            yield Problem(where, "state.json is not valid JSON", reset, "state reset to exited")
            return
        sup = state.get("Supervisor") or {}
        active = state.get("Status") in ACTIVE and alive(sup.get("Pid", 0), sup.get("Start", 0))
        if state.get("Status") in ACTIVE and not active:
            def mark(cid: str = cid, state: dict = state) -> None:
                reconcile(root, cid, state, locked=True)
            yield Problem(where, f"state says {state['Status']} but its supervisor (pid {sup.get('Pid', 0)}) is gone",
                          mark, "marked exited")
        elif not active and _cgroup_left(cid):
            yield Problem(where, "cgroup left behind by a container that does not run", _destroy_cgroup(cid),
                          "cgroup removed")
        name = config.get("Name", "")[1:]
        if name and root.id_of_name(name) != cid:
            def rename(name: str = name, cid: str = cid) -> None:
                if root.id_of_name(name) is None:
                    root.reserve_name(name, cid)
            taken = root.id_of_name(name) is not None
            yield Problem(where, f"its name {name!r} does not point at it" + (" (taken by another)" if taken else ""),
                          None if taken else rename, "name restored")
        if images is not None and config.get("Image") and config["Image"] not in images:
            yield Problem(where, f"its image {config['Image']} is not in the image store")
        for layer in config.get("Layers") or []:
            if not os.path.isdir(layer):
                yield Problem(where, f"layer directory {layer} it runs on is missing")
                break
        for m in config.get("Mounts") or []:
            if m.get("Type") == "volume" and not os.path.isfile(
                    os.path.join(root.volumes, m.get("Name", ""), "volume.json")):
                yield Problem(where, f"volume {m.get('Name')!r} it mounts is missing")
    finally:
        lock.__exit__()


def _names(root: Root) -> Iterator[Problem]:
    try:
        names = sorted(os.listdir(root.names))
    except FileNotFoundError:
        return
    for name in names:
        cid = root.id_of_name(name) or "-"
        path = os.path.join(root.names, name)
        try:
            config = jsonio.read(os.path.join(root.container_dir(cid), "config.json"))
        except FileNotFoundError:
            config = {}
        except (OSError, ValueError):
            continue  # an unreadable config is reported with its container
        if config.get("Name") != f"/{name}":
            yield Problem(_rel(root, path), f"name points at {cid[:12]}, which does not have it",
                          lambda path=path: os.unlink(path), "name released")


# ---------------------------------------------------------------- volumes, builds, mounts


def _volumes(root: Root) -> Iterator[Problem]:
    from .state import Lock

    try:
        names = sorted(os.listdir(root.volumes))
    except FileNotFoundError:
        return
    for name in names:
        vdir = os.path.join(root.volumes, name)
        if not os.path.isdir(vdir):
            continue
        with Lock(os.path.join(vdir, "lock")):  # volumes.create writes volume.json under it
            if not os.path.exists(os.path.join(vdir, "volume.json")):
                yield Problem(_rel(root, vdir), "volume directory without volume.json (create or rm cut short)",
                              _remove(vdir), "removed")
                continue
        yield from _dead_tmp_files(root, vdir)


def _builds(root: Root) -> Iterator[Problem]:
    tmp = os.path.join(root.path, "build", "tmp")
    try:
        names = sorted(os.listdir(tmp))
    except FileNotFoundError:
        return
    for name in names:
        parts = name.split("-")  # <kind>-<pid>-<random>, as the builder names them
        if len(parts) > 2 and parts[1].isdigit() and not pid_alive(int(parts[1])):
            path = os.path.join(tmp, name)
            yield Problem(_rel(root, path), "work directory of a build that died", _remove(path), "removed")
    yield from _dead_tmp_files(root, root.path)


def mounts_under(mountinfo: str, path: str) -> list[str]:
    """Mount points strictly under *path* in a /proc/PID/mountinfo text, deepest first. Pure.

    >>> mounts_under("36 35 0:3 / /r/a\\\\040b rw - tmpfs t rw\\n37 35 0:4 / /r rw - tmpfs t rw\\n", "/r")
    ['/r/a b']
    """
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4]
        for code in ("\\040", "\\011", "\\012", "\\134"):
            point = point.replace(code, chr(int(code[1:], 8)))
        if point.startswith(path.rstrip("/") + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _mounts(root: Root) -> Iterator[Problem]:
    try:
        with open("/proc/self/mountinfo") as f:
            text = f.read()
    except OSError:
        return
    for point in mounts_under(text, os.path.realpath(root.path)):
        def unmount(point: str = point) -> None:
            from . import syscalls as sc

            try:
                sc.umount2(point, sc.MNT_DETACH)
            except OSError:
                pass
        yield Problem(_rel(root, point), "mounted on the host, but refengine mounts only in private namespaces",
                      unmount, "unmounted")
