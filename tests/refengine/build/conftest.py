"""Fixtures for the builder's integration tests: a throwaway refengine root
with the offline busybox image loaded, and a runner for ``refengine``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE = "localhost/conformance/busybox:base"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _command() -> list[str]:
    """``refengine`` when its CLI hands ``build`` to the builder, else the builder's module entry."""
    exe = shutil.which("refengine") or str(Path(sys.executable).parent / "refengine")
    probe = subprocess.run([exe, "--root", "/nonexistent-refengine-probe", "build"], capture_output=True, text=True)
    if "unknown command" in probe.stderr:
        return [sys.executable, "-m", "reference_runtime.build"]
    return [exe]


class Refengine:
    def __init__(self, root: Path):
        self.root = root
        self.prefix = [*_command(), "--root", str(root)]

    def __call__(self, *args: str, input: bytes | str | None = None, env: dict | None = None,
                 cwd: Path | None = None, timeout: float = 300) -> Result:
        full_env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
        full_env.update(env or {})
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run([*self.prefix, *args], input=data, capture_output=True, env=full_env,
                              cwd=cwd, timeout=timeout)
        return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def build(self, ctx: Path, *flags: str, env: dict | None = None) -> str:
        """Build quietly; the image ID."""
        result = self("build", "-q", *flags, str(ctx), env=env)
        assert result.ok, f"build failed: {result}"
        return result.stdout.strip().splitlines()[-1]

    def image_ids(self, *flags: str) -> set[str]:
        result = self("images", "-q", "--no-trunc", *flags)
        assert result.ok, result
        return set(result.stdout.split())

    def inspect(self, ref: str) -> dict | None:
        result = self("image", "inspect", ref)
        return json.loads(result.stdout)[0] if result.ok else None

    def saved(self, ref: str) -> tuple[dict, list[bytes]]:
        """(config, uncompressed layer tars bottom first) from ``save``."""
        proc = subprocess.run([*self.prefix, "save", ref], capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())[0]
            config = json.loads(tar.extractfile(manifest["Config"]).read())
            layers = [tar.extractfile(name).read() for name in manifest["Layers"]]
        return config, layers

    def files(self, ref: str) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
        """Merged view of the image's layers: path -> (member, content), whiteouts applied."""
        _, layers = self.saved(ref)
        merged: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
        for layer in layers:
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                for m in tar:
                    name = m.name.lstrip("./").rstrip("/")
                    base = os.path.basename(name)
                    if base.startswith(".wh."):
                        gone = os.path.join(os.path.dirname(name), base[4:])
                        for key in [k for k in merged if k == gone or k.startswith(gone + "/")]:
                            del merged[key]
                        continue
                    merged[name] = (m, tar.extractfile(m).read() if m.isfile() else None)
        return merged


@pytest.fixture(scope="module")
def refengine(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the builder's RUN steps need root (namespaces, overlay mounts)")
    from conformance.testimage import write_archives

    work = tmp_path_factory.mktemp("refengine-build")
    _, docker_archive, _ = write_archives(work / "archives")
    engine = Refengine(work / "root")
    loaded = engine("load", "-i", str(docker_archive))
    assert loaded.ok, loaded
    yield engine
    from reference_runtime.image.tarutil import remove_tree

    remove_tree(work / "root")


def write(ctx: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return ctx
