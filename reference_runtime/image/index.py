"""The image index and docker's rules over it: finding an image by any
reference, tagging, and what ``rmi``/``image prune`` untag and delete.
Pure: functions of a dict (the store reads and writes it as ``index.json``
under its lock, and does the file work these functions ask for).

Shape::

    {"version": 1,
     "images": {ID: {"repo_tags": [full refs], "repo_digests": [name@digest],
                     "diff_ids": [...], "chain_ids": [...], "parent": ID or "",
                     "last_tag_time": RFC 3339, "held": true if only a container keeps it}},
     "tags":   {full ref: ID},
     "layers": {ChainID: {"diff_id": DiffID, "size": bytes}}}

A *held* image was force-removed while a stopped container still used it:
it is gone for every lookup but :func:`by_id`-style access, and keeps its
layers until no container uses it (:func:`collect_held`).

The removal rules follow moby's ``daemon/images/image_delete.go``
(``ImageDelete``, ``imageDeleteHelper``, ``checkImageDeleteConflict``,
``isSingleReference``) and ``image_prune.go``, with their messages.
"""

from __future__ import annotations

from ..errors import StoreError
from . import reference as refs
from .model import ZERO_TIME, ImageUse

VERSION = 1


def empty() -> dict:
    return {"version": VERSION, "images": {}, "tags": {}, "layers": {}}


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def normalise_uses(in_use) -> dict[str, list[ImageUse]]:
    """*in_use* (image IDs, or image ID -> [ImageUse or (container_id, running)]) as a dict."""
    if not in_use:
        return {}
    if hasattr(in_use, "items"):
        return {k: [u if isinstance(u, ImageUse) else ImageUse(*u) for u in v] for k, v in in_use.items() if v}
    return {k: [ImageUse("", False)] for k in in_use}


# ---------------------------------------------------------------- lookup

def _by_prefix(images: dict, hex_prefix: str) -> str | None:
    """The one live image whose ID starts with *hex_prefix* (None if none or ambiguous)."""
    found = [i for i, e in images.items() if i[7:].startswith(hex_prefix) and not e.get("held")]
    return found[0] if len(found) == 1 else None


def find(index: dict, ref: str) -> tuple[str | None, str | None]:
    """(image ID, the normalised tag/digest ref if *ref* named one), or (None, None).

    Order as docker's GetImage: a full ID, then a repository reference,
    then an ID prefix. Raises :class:`StoreError` for a malformed reference.
    """
    images = index["images"]
    hex_part = ref[7:] if ref.startswith("sha256:") else ref
    is_hex = bool(hex_part) and len(hex_part) <= 64 and all(c in "0123456789abcdef" for c in hex_part)
    if ref.startswith("sha256:") or (is_hex and len(hex_part) == 64):
        if not is_hex:
            raise StoreError("invalid reference format")
        return _by_prefix(images, hex_part), None
    tags = index["tags"]
    if ref in tags:
        return tags[ref], ref
    if "@" not in ref:
        # the familiar forms of stored tags, matched without compiling the reference grammar
        for tag, image_id in tags.items():
            familiar = refs.familiar(tag)
            if familiar == ref or (familiar.endswith(":latest") and familiar[:-7] == ref):
                return image_id, tag
    parsed = refs.parse(ref)
    if parsed.digest is not None:
        wanted = f"{parsed.name}@{parsed.digest}"
        for image_id, entry in images.items():
            if not entry.get("held") and wanted in entry["repo_digests"]:
                return image_id, wanted
    else:
        key = str(parsed)
        if key in tags:
            return tags[key], key
    if is_hex:
        return _by_prefix(images, hex_part), None
    return None, None


def has_children(index: dict, image_id: str) -> bool:
    return any(e.get("parent") == image_id and not e.get("held") for e in index["images"].values())


def children(index: dict, image_id: str) -> list[str]:
    return sorted(i for i, e in index["images"].items() if e.get("parent") == image_id and not e.get("held"))


def listed(index: dict, *, all: bool) -> list[str]:
    """IDs ``docker images`` shows: not the untagged parents of other images unless *all*."""
    live = {i: e for i, e in index["images"].items() if not e.get("held")}
    parents = {e.get("parent") for e in live.values()}
    return [i for i, e in live.items() if all or e["repo_tags"] or e["repo_digests"] or i not in parents]


# ---------------------------------------------------------------- adding and tagging

def add_image(index: dict, image_id: str, diff_ids: list[str], chain_ids: list[str], *, parent: str = "") -> None:
    entry = index["images"].get(image_id)
    if entry is None or entry.get("held"):
        index["images"][image_id] = {
            "repo_tags": [], "repo_digests": [], "diff_ids": list(diff_ids), "chain_ids": list(chain_ids),
            "parent": parent, "last_tag_time": ZERO_TIME,
        }
    elif parent and not entry.get("parent"):
        entry["parent"] = parent


def set_tag(index: dict, tag: str, image_id: str, *, when: str | None = None) -> str | None:
    """Point *tag* (normalised) at *image_id*; returns the ID it was taken from, if another."""
    old = index["tags"].get(tag)
    entry = index["images"][image_id]
    if when:
        entry["last_tag_time"] = when
    if old == image_id:
        return None
    if old is not None and old in index["images"]:
        index["images"][old]["repo_tags"].remove(tag)
    index["tags"][tag] = image_id
    entry["repo_tags"].append(tag)
    entry["repo_tags"].sort()
    return old


def untag(index: dict, image_id: str, key: str) -> None:
    entry = index["images"][image_id]
    if "@" in key:
        entry["repo_digests"].remove(key)
    else:
        entry["repo_tags"].remove(key)
        index["tags"].pop(key, None)


# ---------------------------------------------------------------- removal

class Removal:
    """What removals did: output records, objects to discard once the index is written
    (``("layer", ChainID)`` or ``("blob", digest)``), and the layer bytes released."""

    def __init__(self) -> None:
        self.records: list[str] = []
        self.doomed: list[tuple[str, str]] = []
        self.released: list[int] = []

    def mark(self) -> tuple[int, int, int]:
        return len(self.records), len(self.doomed), len(self.released)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        del self.records[mark[0]:], self.doomed[mark[1]:], self.released[mark[2]:]


def _is_single_reference(entry: dict) -> bool:
    """moby's isSingleReference: one reference, or one tag plus digests of its repository only."""
    tags, digests = entry["repo_tags"], entry["repo_digests"]
    if len(tags) + len(digests) <= 1:
        return len(tags) + len(digests) == 1
    if len(tags) > 1:
        return False
    canonical = {d.split("@")[0] for d in digests}
    single = refs.parse(tags[0]).name if tags else digests[0].split("@")[0]
    return len(canonical) == 1 and single in canonical


def _conflict(index: dict, image_id: str, force: bool, uses: dict[str, list[ImageUse]],
              *, ignore_refs: bool = False) -> tuple[str, bool] | None:
    """moby's delete conflicts, in its order: (message, used by a container) or None."""

    def msg(hard: bool, text: str) -> str:
        return (f"conflict: unable to delete {short(image_id)} "
                f"({'cannot be forced' if hard else 'must be forced'}) - {text}")

    if has_children(index, image_id):
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


def remove(index: dict, ref: str, *, force: bool, prune: bool, uses: dict[str, list[ImageUse]],
           out: Removal) -> None:
    """``docker rmi REF``: untag and/or delete, appending docker's lines to ``out.records``."""
    image_id, key = find(index, ref)
    if image_id is None or index["images"][image_id].get("held"):
        raise StoreError(f"No such image: {ref}")
    entry = index["images"][image_id]
    removed_repo_ref = False
    if key is not None:
        users = uses.get(image_id)
        if not force and _is_single_reference(entry) and users:
            # untagging would leave a dangling image behind a container: docker wants -f
            raise StoreError(f'conflict: unable to remove repository reference "{ref}" (must force) - '
                             f"container {users[0].container_id[:12]} is using its referenced image "
                             f"{short(image_id)}")
        untag(index, image_id, key)
        out.records.append(f"Untagged: {refs.familiar(key)}")
        if "@" not in key:
            # the last tag of a repository takes that repository's digests with it
            name = refs.parse(key).name
            if not any(refs.parse(t).name == name for t in entry["repo_tags"]):
                for d in [d for d in entry["repo_digests"] if d.split("@")[0] == name]:
                    untag(index, image_id, d)
                    out.records.append(f"Untagged: {refs.familiar(d)}")
        if entry["repo_tags"] or entry["repo_digests"]:
            return
        removed_repo_ref = True
    elif _is_single_reference(entry):
        conflict = _conflict(index, image_id, force, uses, ignore_refs=True)
        if conflict is not None:
            raise StoreError(conflict[0])
        for r in list(entry["repo_tags"]) + list(entry["repo_digests"]):
            untag(index, image_id, r)
            out.records.append(f"Untagged: {refs.familiar(r)}")
    _delete(index, image_id, force=force, prune=prune, quiet=removed_repo_ref, uses=uses, out=out)


def _delete(index: dict, image_id: str, *, force: bool, prune: bool, quiet: bool,
            uses: dict[str, list[ImageUse]], out: Removal) -> None:
    """moby's imageDeleteHelper."""
    conflict = _conflict(index, image_id, force, uses)
    entry = index["images"][image_id]
    if conflict is not None:
        dangling = not entry["repo_tags"] and not entry["repo_digests"] and not has_children(index, image_id)
        if quiet and (not dangling or conflict[1]):
            return
        raise StoreError(conflict[0])
    parent = entry.get("parent", "")
    for r in list(entry["repo_tags"]) + list(entry["repo_digests"]):
        untag(index, image_id, r)
        out.records.append(f"Untagged: {refs.familiar(r)}")
    out.records.append(f"Deleted: {image_id}")
    if image_id in uses:
        entry["held"] = True  # a stopped container still needs its layers
    else:
        del index["images"][image_id]
        _release(index, image_id, entry, out, report=True)
    if prune and parent and parent in index["images"] and not index["images"][parent].get("held"):
        _delete(index, parent, force=False, prune=True, quiet=True, uses=uses, out=out)


def _release(index: dict, image_id: str, entry: dict, out: Removal, *, report: bool) -> None:
    """Doom a deleted image's config and the layers no other image needs (top layer first)."""
    used_chains = {c for e in index["images"].values() for c in e["chain_ids"]}
    used_diffs = {d for e in index["images"].values() for d in e["diff_ids"]}
    out.doomed.append(("blob", image_id))
    for chain in reversed(entry["chain_ids"]):
        if chain in used_chains or chain not in index["layers"]:
            continue
        layer = index["layers"].pop(chain)
        out.released.append(layer.get("size", 0))
        if report:
            out.records.append(f"Deleted: {chain}")
        out.doomed.append(("layer", chain))
    for diff_id in sorted(set(entry["diff_ids"]) - used_diffs):
        out.doomed.append(("blob", diff_id))


def collect_held(index: dict, uses: dict[str, list[ImageUse]], out: Removal) -> None:
    """Forget held images no container uses any more, releasing their layers silently."""
    for image_id, entry in list(index["images"].items()):
        if entry.get("held") and image_id not in uses:
            del index["images"][image_id]
            _release(index, image_id, entry, out, report=False)


def prune(index: dict, *, dangling_only: bool, uses: dict[str, list[ImageUse]], out: Removal) -> list[str]:
    """``docker image prune [-a]``: its lowercase "untagged:"/"deleted:" lines."""
    collect_held(index, uses, out)
    live = {i: e for i, e in index["images"].items() if not e.get("held")}
    parents = {e.get("parent") for e in live.values()}

    def depth(image_id: str) -> int:
        n = 0
        while n < 1000 and image_id in live and live[image_id].get("parent"):
            image_id, n = live[image_id]["parent"], n + 1
        return n

    top = []
    # children first, so a parent is still there to be pruned with its last child
    for image_id, entry in sorted(live.items(), key=lambda kv: (-depth(kv[0]), kv[0])):
        has_refs = bool(entry["repo_tags"] or entry["repo_digests"])
        if image_id in parents and (dangling_only or not has_refs):
            continue  # an intermediate image goes with its child
        if image_id not in uses:
            top.append(image_id)
    lines: list[str] = []
    for image_id in top:
        entry = index["images"].get(image_id)
        if entry is None or entry.get("held"):
            continue
        if dangling_only and entry["repo_tags"]:
            continue
        for target in (list(entry["repo_tags"]) + list(entry["repo_digests"])) or [image_id]:
            import json  # a deep copy to undo a refused removal; prune is never on a hot path

            saved, mark = json.loads(json.dumps(index)), out.mark()
            try:
                remove(index, target, force=False, prune=True, uses=uses, out=out)
            except StoreError:
                index.clear()
                index.update(saved)
                out.rollback(mark)
                break  # a conflict: docker skips the image quietly
            lines += [r[0].lower() + r[1:] for r in out.records[mark[0]:]]
    return lines
