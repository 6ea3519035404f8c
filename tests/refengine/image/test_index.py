"""docker's lookup, tag and rmi/prune rules on the index alone (pure, no files)."""

from __future__ import annotations

import pytest

from reference_runtime.errors import StoreError
from reference_runtime.image import index as idx
from reference_runtime.image.digest import chain_ids, digest_bytes

L1, L2, L3 = (digest_bytes(n) for n in (b"layer1", b"layer2", b"layer3"))
A, B, C = (digest_bytes(n) for n in (b"config a", b"config b", b"config c"))


def make(*images: tuple[str, list[str], list[str], str]) -> dict:
    """An index of (id, tags, diff_ids, parent) tuples, with every layer present."""
    index = idx.empty()
    for image_id, tags, diffs, parent in images:
        chains = chain_ids(diffs)
        idx.add_image(index, image_id, diffs, chains, parent=parent)
        for chain, diff in zip(chains, diffs):
            index["layers"][chain] = {"diff_id": diff, "size": 10}
        for tag in tags:
            idx.set_tag(index, tag, image_id)
    return index


def rmi(index, ref, **kw) -> idx.Removal:
    out = idx.Removal()
    kw.setdefault("force", False)
    kw.setdefault("prune", True)
    idx.remove(index, ref, uses=idx.normalise_uses(kw.pop("in_use", None)), out=out, **kw)
    return out


def test_find_order_and_forms():
    index = make((A, ["docker.io/library/busybox:latest"], [L1], ""), (B, ["localhost/x:1"], [L1], ""))
    assert idx.find(index, "busybox") == (A, "docker.io/library/busybox:latest")
    assert idx.find(index, "library/busybox:latest") == (A, "docker.io/library/busybox:latest")
    assert idx.find(index, B) == (B, None)
    assert idx.find(index, B[7:19]) == (B, None)
    assert idx.find(index, "localhost/x:2") == (None, None)
    with pytest.raises(StoreError, match="invalid reference format"):
        idx.find(index, "sha256:xyz")


def test_ambiguous_prefix_finds_nothing():
    ids = sorted(digest_bytes(str(i).encode()) for i in range(40))
    index = make(*((i, [], [L1], "") for i in ids))
    # 40 IDs over 16 possible first hex digits: some first digit is shared (pigeonhole)
    shared = next(d for d in "0123456789abcdef" if sum(i[7] == d for i in ids) > 1)
    assert idx.find(index, shared) == (None, None)
    assert idx.find(index, ids[0][7:30]) == (ids[0], None)


def test_set_tag_moves_and_reports_previous_owner():
    index = make((A, ["localhost/x:1"], [L1], ""), (B, [], [L2], ""))
    assert idx.set_tag(index, "localhost/x:1", B) == A
    assert index["images"][A]["repo_tags"] == [] and index["images"][B]["repo_tags"] == ["localhost/x:1"]
    assert idx.set_tag(index, "localhost/x:1", B) is None


def test_untag_of_one_of_two_tags():
    index = make((A, ["localhost/x:1", "localhost/y:1"], [L1], ""))
    out = rmi(index, "localhost/y:1")
    assert out.records == ["Untagged: localhost/y:1"] and out.doomed == []


def test_last_tag_deletes_image_and_unshared_layers_top_first():
    index = make((A, ["localhost/x:1"], [L1, L2], ""), (B, ["localhost/y:1"], [L1], ""))
    out = rmi(index, "localhost/x:1")
    top = chain_ids([L1, L2])[1]
    assert out.records == ["Untagged: localhost/x:1", f"Deleted: {A}", f"Deleted: {top}"]
    assert set(out.doomed) == {("blob", A), ("layer", top), ("blob", L2)}
    assert out.released == [10]
    assert L1 in index["layers"] and top not in index["layers"]


def test_id_with_tag_and_digest_of_one_repository_is_a_single_reference():
    index = make((A, ["localhost/x:1"], [L1], ""))
    index["images"][A]["repo_digests"].append("localhost/x@" + L3)
    out = rmi(index, A[7:19])
    assert out.records[:2] == ["Untagged: localhost/x:1", f"Untagged: localhost/x@{L3}"]
    assert out.records[2] == f"Deleted: {A}"


def test_last_tag_of_a_repository_takes_its_digests():
    index = make((A, ["localhost/x:1", "localhost/y:1"], [L1], ""))
    index["images"][A]["repo_digests"].append("localhost/x@" + L3)
    out = rmi(index, "localhost/x:1")
    assert out.records == ["Untagged: localhost/x:1", f"Untagged: localhost/x@{L3}"]
    assert index["images"][A]["repo_tags"] == ["localhost/y:1"]


def test_untagged_parent_is_pruned_with_its_child_unless_no_prune():
    index = make((A, ["localhost/base:1"], [L1], ""), (B, [], [L1, L2], A), (C, ["localhost/c:1"], [L1, L2, L3], B))
    out = rmi(index, "localhost/c:1", prune=False)
    assert f"Deleted: {B}" not in out.records and B in index["images"]
    index = make((A, ["localhost/base:1"], [L1], ""), (B, [], [L1, L2], A), (C, ["localhost/c:1"], [L1, L2, L3], B))
    out = rmi(index, "localhost/c:1")
    assert out.records[-2:] == [f"Deleted: {B}", f"Deleted: {chain_ids([L1, L2])[1]}"]
    assert A in index["images"]  # tagged: stops the pruning


def test_parent_shared_by_two_children_stays():
    index = make((A, [], [L1], ""), (B, ["localhost/b:1"], [L1, L2], A), (C, ["localhost/c:1"], [L1, L3], A))
    out = rmi(index, "localhost/b:1")
    assert A in index["images"] and f"Deleted: {A}" not in out.records


def test_held_image_keeps_layers_until_collected():
    index = make((A, ["localhost/x:1"], [L1], ""))
    out = rmi(index, "localhost/x:1", force=True, in_use={A: [("c" * 64, False)]})
    assert out.records == ["Untagged: localhost/x:1", f"Deleted: {A}"] and out.doomed == []
    assert idx.find(index, A) == (None, None)
    out = idx.Removal()
    idx.collect_held(index, {A: [idx.ImageUse("c" * 64, False)]}, out)
    assert out.doomed == []
    idx.collect_held(index, {}, out)
    assert set(out.doomed) == {("blob", A), ("layer", L1), ("blob", L1)} and index["images"] == {}


def test_prune_dangling_only_and_all():
    index = make((A, ["localhost/a:1"], [L1], ""), (B, [], [L2], ""), (C, [], [L3], ""))
    out = idx.Removal()
    lines = idx.prune(index, dangling_only=True, uses=idx.normalise_uses({C}), out=out)
    assert lines == [f"deleted: {B}", f"deleted: {L2}"]
    lines = idx.prune(index, dangling_only=False, uses={}, out=idx.Removal())
    assert "untagged: localhost/a:1" in lines and f"deleted: {C}" in lines and index["images"] == {}


def test_listed_hides_intermediates():
    index = make((A, [], [L1], ""), (B, ["localhost/b:1"], [L1, L2], A), (C, [], [L3], ""))
    assert sorted(idx.listed(index, all=False)) == sorted([B, C])
    assert sorted(idx.listed(index, all=True)) == sorted([A, B, C])
