"""``conformance list``: the suites, their checks with the documented
behaviour each verifies, and the profiles of the subjects they can run against.

Checks are found the way a run finds them: pytest collects the suites in a
subprocess (``--collect-only``) with this module as a plugin, which writes
each check's id and ``spec`` marker to a JSON file. Nothing is run, and no
engine is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import FIXTURES_DIR, SUITES_DIR
from .checks import check_id, required_capabilities, spec_of
from .errors import ConformanceError


@dataclass(frozen=True)
class ListedCheck:
    id: str
    spec_url: str = ""
    spec_text: str = ""
    requires: tuple[str, ...] = ()

    @property
    def suite(self) -> str:
        return self.id.split("/", 1)[0]


def suites(suites_dir: Path = SUITES_DIR) -> list[str]:
    """Every suite: a package folder under the suites directory."""
    return sorted(p.name for p in suites_dir.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def collect_checks(names: list[str], suites_dir: Path = SUITES_DIR, timeout: float = 300) -> list[ListedCheck]:
    """Collect these suites in a pytest subprocess and return their checks."""
    with tempfile.TemporaryDirectory(prefix="conformance-list-") as tmp:
        out = Path(tmp) / "checks.json"
        # Without the subject plugins: a listing needs no engine or registry
        # (nor the default profiles, which other fixtures folders may lack).
        argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                "-p", "no:conformance.engine_plugin", "-p", "no:conformance.registry_plugin",
                "-p", "conformance.listing", "--rootdir", str(suites_dir.parent),
                *[str(suites_dir / n) for n in names]]
        env = {**os.environ, _OUT_ENV: str(out)}
        try:
            done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ConformanceError(f"collecting the suites took more than {timeout:.0f}s") from None
        if done.returncode not in (0, 5) or not out.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ConformanceError(f"collecting the suites failed (pytest exit {done.returncode}):\n{tail}")
        return [ListedCheck(c["id"], c["spec_url"], c["spec_text"], tuple(c["requires"]))
                for c in json.loads(out.read_text())]


def profiles(fixtures_dir: Path = FIXTURES_DIR) -> list[tuple[str, str, Path, str]]:
    """(kind, name, path, description) of every engine and registry profile."""
    from .profile import load_profile
    from .registry_profile import load_registry_profile

    found = []
    for kind, folder, load in (("engine", "engines", load_profile), ("registry", "registries", load_registry_profile)):
        for path in sorted((fixtures_dir / folder).glob("*.toml")):
            try:
                description = load(path).description
            except ConformanceError as exc:
                description = f"(invalid: {exc})"
            found.append((kind, path.stem, path, description))
    return found


def format_listing(checks: list[ListedCheck], profile_rows: list[tuple[str, str, Path, str]],
                   suites_dir: Path = SUITES_DIR) -> list[str]:
    """The human listing: suites with counts, each check under its suite with
    its spec reference, then the profiles.

    >>> c = ListedCheck("runtime/test_a.py::test_b", "https://docs.docker.com/x", "exit 125")
    >>> print("\\n".join(format_listing([c], [], Path("/s"))))
    suites (/s):
      runtime  1 check
    <BLANKLINE>
    runtime
      runtime/test_a.py::test_b
          https://docs.docker.com/x  exit 125
    <BLANKLINE>
    profiles:
    """
    by_suite: dict[str, list[ListedCheck]] = {}
    for check in checks:
        by_suite.setdefault(check.suite, []).append(check)
    width = max((len(s) for s in by_suite), default=0)
    lines = [f"suites ({suites_dir}):"]
    lines += [f"  {s:<{width}}  {len(cs)} check{'s' if len(cs) != 1 else ''}" for s, cs in sorted(by_suite.items())]
    for suite, cs in sorted(by_suite.items()):
        lines += ["", suite]
        for c in cs:
            lines.append(f"  {c.id}" + (f"  [requires {', '.join(c.requires)}]" if c.requires else ""))
            lines.append(f"      {c.spec_url}  {c.spec_text}".rstrip() if c.spec_url else "      (no spec reference)")
    lines += ["", "profiles:"]
    lines += [f"  {kind:<8} {name:<14} {description}  ({path})" for kind, name, path, description in profile_rows]
    return lines


# The plugin half: loaded with ``-p conformance.listing`` in the subprocess.
_OUT_ENV = "CONFORMANCE_LIST_OUT"


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get(_OUT_ENV)
    if not out:
        return
    rows = []
    for item in session.items:
        spec = spec_of(item)
        rows.append({"id": check_id(item), "spec_url": spec.url if spec else "", "spec_text": spec.text if spec else "",
                     "requires": required_capabilities(item)})
    Path(out).write_text(json.dumps(rows))
