"""The COPY/ADD content hash: content and header fields count, times never;
owners are normalised."""

from __future__ import annotations

import os

import pytest

from reference_runtime.build.context import FileTree, HashCache, glob_regex
from reference_runtime.build.contexthash import Entry, entry_digest, source_key, tree_digest
from reference_runtime.build.dockerignore import IgnoreMatcher
from reference_runtime.build.errors import BuildError

BASE = Entry("a.txt", 0o644, 0, 0, 3, "0", "", "c" * 64)


def _with(**changes) -> Entry:
    return Entry(**{**BASE.__dict__, **changes})


@pytest.mark.parametrize("field, value", [
    ("name", "b.txt"), ("mode", 0o755), ("uid", 1), ("gid", 1), ("size", 4), ("kind", "2"),
    ("linkname", "x"), ("content", "d" * 64),
])
def test_every_header_field_and_the_content_count(field, value):
    assert entry_digest(_with(**{field: value})) != entry_digest(BASE)


def test_order_of_entries_does_not_matter_and_kinds_are_told_apart():
    other = _with(name="b.txt")
    assert tree_digest([BASE, other]) == tree_digest([other, BASE])
    assert source_key([("file", [BASE])]).startswith("file:")
    assert source_key([("dir", [BASE])]).startswith("dir:")
    assert source_key([("file", [BASE]), ("file", [other])]).startswith("multi:")
    assert source_key([("file", [BASE]), ("file", [other])]) != source_key([("file", [other]), ("file", [BASE])])


@pytest.fixture
def tree(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "d" / "sub").mkdir(parents=True)
    (ctx / "a.txt").write_text("one\n")
    (ctx / "d" / "b.txt").write_text("b\n")
    (ctx / "d" / "sub" / "c.txt").write_text("c\n")
    (ctx / "d" / "skip.log").write_text("log\n")
    os.symlink("b.txt", ctx / "d" / "link")
    return ctx


def key(ctx, source: str, patterns=(), cache=None) -> str:
    t = FileTree(str(ctx), IgnoreMatcher(list(patterns)) if patterns else None, cache or HashCache(None))
    return source_key([t.hash_source(s) for s in t.resolve(source, "COPY")])


def test_mtime_only_change_keeps_the_hash(tree):
    before = key(tree, "a.txt"), key(tree, "d")
    for p in (tree / "a.txt", tree / "d" / "sub" / "c.txt", tree / "d"):
        os.utime(p, (1, 1))
    assert (key(tree, "a.txt"), key(tree, "d")) == before


def test_content_mode_and_name_changes_change_the_hash(tree):
    before = key(tree, "d")
    (tree / "d" / "b.txt").write_text("B\n")
    assert key(tree, "d") != before
    before = key(tree, "d")
    os.chmod(tree / "d" / "sub" / "c.txt", 0o600)
    assert key(tree, "d") != before
    before = key(tree, "d")
    os.rename(tree / "d" / "sub" / "c.txt", tree / "d" / "sub" / "renamed.txt")
    assert key(tree, "d") != before


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owner_is_normalised(tree):
    before = key(tree, "d")
    os.chown(tree / "d" / "b.txt", 4321, 4321)
    assert key(tree, "d") == before


def test_dockerignored_files_are_out_of_the_hash(tree):
    before = key(tree, "d", ["d/*.log"])
    (tree / "d" / "skip.log").write_text("changed\n")
    assert key(tree, "d", ["d/*.log"]) == before
    assert key(tree, "d") != key(tree, "d", ["d/*.log"])


def test_hash_cache_reuses_digests_until_the_file_changes(tree, tmp_path):
    cache = HashCache(tmp_path / "hashes.json")
    first = key(tree, "a.txt", cache=cache)
    cache.save()
    reloaded = HashCache(tmp_path / "hashes.json")
    path = str(tree / "a.txt")
    assert path in reloaded.entries
    # a cached digest is used while (dev, inode, size, mtime, ctime) match...
    reloaded.entries[path][5] = "f" * 64
    assert key(tree, "a.txt", cache=reloaded) != first
    # ...and any write (new ctime) makes it read the file again
    (tree / "a.txt").write_text("one\n")
    assert key(tree, "a.txt", cache=reloaded) == first


def test_sources_resolve_inside_the_context(tree):
    t = FileTree(str(tree), None, HashCache(None))
    assert [s.name for s in t.resolve("*.txt", "COPY")] == ["a.txt"]
    assert [s.name for s in t.resolve("d/*.txt", "COPY")] == ["d/b.txt"]
    assert [s.name for s in t.resolve("/d/../a.txt", "COPY")] == ["a.txt"]
    assert t.resolve(".", "COPY")[0].is_dir
    with pytest.raises(BuildError, match="forbidden path outside the build context: ../x"):
        t.resolve("../x", "COPY")
    with pytest.raises(BuildError, match="file not found in build context"):
        t.resolve("missing.txt", "COPY")
    with pytest.raises(BuildError, match="no source files were specified"):
        t.resolve("*.none", "COPY")


def test_symlink_out_of_the_context_stays_inside(tree, tmp_path):
    (tmp_path / "secret").write_text("secret\n")
    os.symlink(str(tmp_path / "secret"), tree / "escape")
    t = FileTree(str(tree), None, HashCache(None))
    with pytest.raises(BuildError, match="file not found"):
        t.resolve("escape", "COPY")


def test_glob_regex_is_go_filepath_match():
    assert glob_regex("*.txt").match("a.txt") and not glob_regex("*.txt").match("a/b.txt")
    assert glob_regex("[^a]?").match("bc") and not glob_regex("[^a]?").match("ac")
