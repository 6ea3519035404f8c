"""COPY and ADD: which changes to the build context invalidate the cache.

The classic builder hashes each source's content and header fields except
the times (TarSum); owners are normalised because the copied files belong to
0:0 whatever owned them in the context.
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from .conftest import CACHE_RULES, COPY, DOCKERIGNORE, proof

pytestmark = [pytest.mark.requires("build")]

COPY_CACHE = f"{CACHE_RULES}#add-and-copy"


def copy_steps(keyword: str) -> list[str]:
    return [proof("before"), f"{keyword} data.txt /data.txt", proof("after")]


def layer_member(built, path: str) -> tarfile.TarInfo:
    """The top-most layer entry for ``path`` in the built image."""
    found = None
    for layer in built.saved.layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            for member in tar:
                if member.name.lstrip("./").lstrip("/") == path.lstrip("/"):
                    found = member
    assert found is not None, f"{path} is in no layer of {built.ref}"
    return found


@pytest.mark.spec(COPY_CACHE, "the content of the copied files is checksummed: new content is a cache miss")
@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_changed_content_misses(builds, keyword):
    ctx = builds.context({"data.txt": "one\n"}, copy_steps(keyword))
    first = builds.build(ctx)
    builds.write(ctx, "data.txt", "two\n")
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 1)
    assert second.file("/data.txt") == b"two\n"


@pytest.mark.spec(COPY_CACHE, "the last-modified and last-accessed times of the files are not considered")
@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_mtime_only_change_hits(builds, keyword):
    ctx = builds.context({"data.txt": "same\n"}, copy_steps(keyword))
    first = builds.build(ctx)
    path = ctx / "data.txt"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns - 3_600_000_000_000, stat.st_mtime_ns - 3_600_000_000_000))
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, None)


@pytest.mark.spec(COPY_CACHE, "file metadata other than the times is part of the checksum: a new mode is a cache miss "
                              "(moby#32816) and the copied file keeps the new mode")
@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_mode_change_misses(builds, keyword):
    ctx = builds.context({"data.txt": "same\n"}, copy_steps(keyword))
    (ctx / "data.txt").chmod(0o644)
    first = builds.build(ctx)
    (ctx / "data.txt").chmod(0o755)
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 1)
    assert layer_member(first, "data.txt").mode & 0o7777 == 0o644
    assert layer_member(second, "data.txt").mode & 0o7777 == 0o755


@pytest.mark.spec(COPY, "copied files are created with UID and GID 0 whoever owns them in the context, "
                        "so the owner in the context is not part of the cache key")
@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_context_owner_is_normalised(builds, keyword):
    ctx = builds.context({"data.txt": "same\n"}, copy_steps(keyword))
    os.chown(ctx / "data.txt", 0, 0)
    first = builds.build(ctx)
    os.chown(ctx / "data.txt", 4321, 4321)
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, None)
    member = layer_member(second, "data.txt")
    assert (member.uid, member.gid) == (0, 0)


@pytest.mark.spec(DOCKERIGNORE, "files matched by .dockerignore are not in the context: changing them is no cache miss")
def test_dockerignored_file_change_hits(builds):
    files = {".dockerignore": "ignored.txt\n", "kept.txt": "kept\n", "ignored.txt": "one\n"}
    ctx = builds.context(files, [proof("before"), "COPY . /ctx/", proof("after")])
    first = builds.build(ctx)
    builds.write(ctx, "ignored.txt", "two\n")
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, None)
    assert second.file("/ctx/kept.txt") == b"kept\n"
    assert second.file("/ctx/ignored.txt") is None


@pytest.mark.spec(DOCKERIGNORE, "the Dockerfile can be excluded with .dockerignore: it is still used for the build "
                                "but not copied by ADD/COPY, so editing it keeps `ADD .` cached")
def test_ignored_dockerfile_edit_keeps_add_dot_cached(builds):
    files = {".dockerignore": "Dockerfile\n.dockerignore\n", "kept.txt": "kept\n"}
    steps = [proof("before"), "ADD . /ctx/", proof("after")]
    ctx = builds.context(files, steps)
    first = builds.build(ctx)
    builds.set_dockerfile(ctx, [*steps, "LABEL edited=1"])
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 3)
    assert second.proofs() == first.proofs()
    assert second.file("/ctx/kept.txt") == b"kept\n"
    assert second.file("/ctx/Dockerfile") is None and second.file("/ctx/.dockerignore") is None


@pytest.mark.spec(COPY_CACHE, "COPY with several sources: a change to any one of them is a cache miss")
def test_multi_source_copy_misses_when_one_source_changes(builds):
    files = {"a.txt": "a\n", "b.txt": "b\n"}
    ctx = builds.context(files, [proof("before"), "COPY a.txt b.txt /dst/", proof("after")])
    first = builds.build(ctx)
    builds.write(ctx, "b.txt", "b changed\n")
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 1)
    assert (second.file("/dst/a.txt"), second.file("/dst/b.txt")) == (b"a\n", b"b changed\n")


@pytest.mark.spec(COPY_CACHE, "wildcard COPY: a file the pattern does not match changes nothing; "
                              "a new file it matches is a cache miss")
def test_wildcard_copy_follows_what_the_pattern_matches(builds):
    files = {"a.txt": "a\n", "notes.md": "one\n"}
    ctx = builds.context(files, [proof("before"), "COPY *.txt /dst/", proof("after")])
    first = builds.build(ctx)
    builds.write(ctx, "notes.md", "two\n")
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, None)
    builds.write(ctx, "c.txt", "c\n")
    third = builds.build(ctx)
    builds.assert_rebuilt_from(second, third, 1)
    assert third.file("/dst/c.txt") == b"c\n" and third.file("/dst/notes.md") is None
