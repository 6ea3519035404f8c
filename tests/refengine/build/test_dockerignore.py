""".dockerignore semantics (docker 20.10's PatternMatcher and context walk)."""

from __future__ import annotations

import pytest

from reference_runtime.build.dockerignore import IgnoreMatcher, read_patterns
from reference_runtime.build.errors import BuildError


def test_read_patterns_cleans_and_drops_comments():
    text = "\ufeff# comment\n\n  *.log  \n/abs/path\n!keep.log\n./a/../b\n! spaced\n"
    assert read_patterns(text) == ["*.log", "abs/path", "!keep.log", "b", "!spaced"]


@pytest.mark.parametrize("patterns, path, excluded", [
    (["*.txt"], "a.txt", True),
    (["*.txt"], "dir/a.txt", False),             # * does not cross /
    (["*/*.txt"], "dir/a.txt", True),
    (["**/*.txt"], "a/b/c.txt", True),
    (["**/*.txt"], "c.txt", True),               # ** matches no directory too
    (["a/**"], "a/b/c", True),
    (["a/**/z"], "a/z", True),
    (["a/**/z"], "a/b/c/z", True),
    (["build"], "build/out/x.o", True),          # a matched parent excludes the subtree
    (["?.md"], "a.md", True),
    (["?.md"], "ab.md", False),
    (["[ab].c"], "b.c", True),
    (["[^ab].c"], "b.c", False),
    (["[!ab].c"], "x.c", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["*.log", "!keep.log"], "keep.log", False),
    (["*.log", "!keep.log", "keep.log"], "keep.log", True),   # the last match wins
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["Dockerfile"], "Dockerfile", True),
    ([".dockerignore"], ".dockerignore", True),
    (["a.b"], "aXb", False),                     # a dot is literal
])
def test_matches(patterns, path, excluded):
    assert IgnoreMatcher(patterns).matches(path) is excluded


def test_excluded_directory_is_walked_only_for_exceptions():
    m = IgnoreMatcher(["dir", "!dir/sub/keep"])
    assert m.must_walk("dir") and m.must_walk("dir/sub")
    assert not m.must_walk("other")
    assert not IgnoreMatcher(["dir"]).must_walk("dir")


def test_bad_patterns():
    with pytest.raises(BuildError, match="illegal exclusion pattern"):
        IgnoreMatcher(["!"])
    with pytest.raises(BuildError, match="unclosed"):
        IgnoreMatcher(["[ab"])
