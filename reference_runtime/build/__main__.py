"""``python -m reference_runtime.build [--root DIR] build|image prune|builder prune ...``:
the builder's commands without refengine's CLI hook (other commands go to refengine)."""

import os
import sys

from .cli import handles, main


def _run(argv: list[str]) -> int:
    root = os.environ.get("REFENGINE_ROOT") or "/var/lib/refengine"
    rest = list(argv)
    while rest and rest[0].startswith("--root"):
        if rest[0] == "--root" and len(rest) > 1:
            root, rest = rest[1], rest[2:]
        elif rest[0].startswith("--root="):
            root, rest = rest[0][7:], rest[1:]
        else:
            break
    if handles(rest):
        return main(rest, root)
    from ..engine.cli import main as engine_main

    return engine_main(argv)


sys.exit(_run(sys.argv[1:]))
