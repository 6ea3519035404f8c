"""``.dockerignore``: reading the file and matching paths, with the semantics
of docker 20.10 (moby ``pkg/fileutils`` and the CLI's context walk).

- one pattern per line; blank lines and ``#`` comments skipped; patterns
  are cleaned (``filepath.Clean``) and a leading ``/`` dropped;
- ``*`` and ``?`` do not cross ``/``; ``**`` matches any number of
  directories (also none); ``[...]`` classes and ``\\`` escapes as in Go;
- a pattern that matches a parent directory excludes everything below it;
- the last matching pattern wins, ``!pattern`` re-includes;
- an excluded directory is still walked when an exception could match below it.

Pure.

>>> m = IgnoreMatcher(["*.log", "!keep.log", "build/**"])
>>> m.matches("a.log"), m.matches("keep.log"), m.matches("build/x/y"), m.matches("src/a.log")
(True, False, True, False)
"""

from __future__ import annotations

import os
import re

from .errors import BuildError


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file (docker's dockerignore.ReadAll)."""
    out: list[str] = []
    for raw in text.lstrip("\ufeff").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = os.path.normpath(pattern)
            if pattern.startswith("//"):
                pattern = pattern[1:]
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _compile(pattern: str) -> re.Pattern:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "^!" else i)
            if end < 0:
                raise BuildError(f".dockerignore: syntax error in pattern {pattern!r}: unclosed [")
            body = pattern[i:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    out.append("$")
    return re.compile("".join(out), re.S)


class _Pattern:
    __slots__ = ("text", "exclusion", "regex", "dirs")

    def __init__(self, raw: str):
        self.exclusion = raw.startswith("!")
        text = raw[1:] if self.exclusion else raw
        if self.exclusion and not text:
            raise BuildError('.dockerignore: illegal exclusion pattern: "!"')
        text = os.path.normpath(text)
        self.text = text
        self.regex = _compile(text)
        self.dirs = text.split("/")


class IgnoreMatcher:
    """Matches context-relative paths (``a/b.txt``, no leading ``./``) against the patterns."""

    def __init__(self, patterns: list[str]):
        self.patterns = [_Pattern(p) for p in patterns if p.strip()]
        self.exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """True when *path* is excluded from the context."""
        matched = False
        parent = os.path.dirname(path) or "."
        parent_dirs = parent.split("/")
        for p in self.patterns:
            hit = bool(p.regex.match(path))
            if not hit and parent != "." and len(p.dirs) <= len(parent_dirs):
                hit = bool(p.regex.match("/".join(parent_dirs[:len(p.dirs)])))
            if hit:
                matched = not p.exclusion
        return matched

    def must_walk(self, directory: str) -> bool:
        """Whether an excluded *directory* may hold a re-included path (so it must be walked)."""
        if not self.exclusions:
            return False
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)
