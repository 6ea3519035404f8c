"""What a run was made with, recorded in its results so that a validation
bundle can be tied to it: the suites (version and each file's sha256), the
profile file's sha256, and the host's kernel. Pure apart from reading files.

>>> import tempfile; d = Path(tempfile.mkdtemp()); (d / "rt").mkdir()
>>> _ = (d / "rt" / "test_a.py").write_text("def test_a(): pass\\n")
>>> suite_files(d)
{'rt/test_a.py': 'sha256:0d66033c03520539e5794a7ed28ac63527d63f9ca485ce27d4b5139e132117b8'}
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

from . import SUITES_DIR, __version__


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def suite_files(suites_dir: Path = SUITES_DIR) -> dict[str, str]:
    """Every file of the suites (bytecode caches aside) -> its sha256, by
    path relative to the suites directory."""
    return {p.relative_to(suites_dir).as_posix(): sha256_of(p.read_bytes())
            for p in sorted(Path(suites_dir).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def files_digest(files: dict[str, str]) -> str:
    """One digest for a set of files: of their sorted ``digest  path`` lines."""
    return sha256_of("".join(f"{d}  {p}\n" for p, d in sorted(files.items())).encode())


def suite_version(suites_dir: Path = SUITES_DIR) -> dict:
    """For the results file: the suites' package version and content digest."""
    return {"version": __version__, "digest": files_digest(suite_files(suites_dir))}


def profile_sha256(path: str | Path | None) -> str:
    try:
        return sha256_of(Path(path).read_bytes()) if path else ""
    except OSError:
        return ""


def host() -> dict:
    uname = platform.uname()
    return {"kernel": f"{uname.system} {uname.release} {uname.version}", "machine": uname.machine,
            "python": platform.python_version()}
