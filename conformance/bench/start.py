"""Container start-to-exit latency: ``run --rm IMG true`` per engine, and
``runc run`` on an OCI bundle as the floor of what a runtime costs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .. import testimage
from ..profile import profile_by_name
from .core import Case, Unavailable, timed

IMAGE = testimage.REPOSITORY + ":base"


class CliSubject:
    """``<engine> run --rm [EXTRA] IMG true``; loads the test image on first use."""

    def __init__(self, engine: str, extra: list[str], env: dict[str, str] | None = None):
        profile = profile_by_name(engine)
        self.engine, self.argv = engine, list(profile.command)
        self.env = {**os.environ, **profile.env, **(env or {})}
        self.cmd = [*self.argv, "run", "--rm", *extra, IMAGE, "true"]
        # Never the caller's directory (often a checkout): an engine may write
        # files into its working directory (conmon's `oom` marker, podman#13102).
        self.cwd = tempfile.gettempdir()
        self.ready = False

    def prepare(self) -> None:
        if not shutil.which(self.argv[0]):
            raise Unavailable(f"{self.argv[0]} is not installed")
        probe = subprocess.run([*self.argv, "image", "inspect", IMAGE], env=self.env, capture_output=True, cwd=self.cwd)
        if probe.returncode != 0:
            with tempfile.TemporaryDirectory(prefix="bench-img-") as tmp:
                _, docker_tar, _ = testimage.write_archives(Path(tmp))
                loaded = subprocess.run([*self.argv, "load", "-i", str(docker_tar)], env=self.env,
                                        capture_output=True, text=True, cwd=self.cwd)
            if loaded.returncode != 0:
                raise Unavailable(f"{self.engine} load failed: {loaded.stderr.strip()[-200:]}")
        self.ready = True

    def __call__(self) -> float:
        if not self.ready:
            self.prepare()
        done: list[subprocess.CompletedProcess] = []
        ms = timed(lambda: done.append(subprocess.run(self.cmd, env=self.env, stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.PIPE, cwd=self.cwd)))
        if done[0].returncode != 0:
            raise Unavailable(f"{' '.join(self.cmd)} failed: {done[0].stderr.decode(errors='replace').strip()[-200:]}")
        return ms


class RuncBundle:
    """An OCI bundle of the test image for ``runc run``."""

    def __init__(self) -> None:
        self.dir: Path | None = None

    def setup(self) -> None:
        if not shutil.which("runc"):
            raise Unavailable("runc is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="bench-runc-"))
        rootfs = self.dir / "rootfs"
        rootfs.mkdir()
        images = testimage.build_image_set(*testimage.read_busybox())
        with tarfile.open(fileobj=io.BytesIO(images.layer)) as tar:
            tar.extractall(rootfs, filter="tar")
        subprocess.run(["runc", "spec", "--bundle", str(self.dir)], check=True, capture_output=True)
        spec_path = self.dir / "config.json"
        spec = json.loads(spec_path.read_text())
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        spec_path.write_text(json.dumps(spec))

    def once(self) -> float:
        if self.dir is None:
            self.setup()
        cid = f"bench-{os.getpid()}-{os.urandom(3).hex()}"
        cmd = ["runc", "run", "--bundle", str(self.dir), cid]
        result = {}
        ms = timed(lambda: result.setdefault("p", subprocess.run(cmd, capture_output=True, cwd=self.dir)))
        if result["p"].returncode != 0:
            raise Unavailable(f"runc run failed: {result['p'].stderr.decode(errors='replace').strip()[-200:]}")
        return ms

    def teardown(self) -> None:
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def cases(options) -> list[Case]:
    runc = RuncBundle()
    ref_root = Path(tempfile.mkdtemp(prefix="bench-refengine-"))
    ref_env = {"REFENGINE_ROOT": str(ref_root)}
    subjects = {
        "refengine": CliSubject("refengine", [], ref_env),
        "refengine --network none": CliSubject("refengine", ["--network", "none"], ref_env),
        "docker": CliSubject("docker", []),
        "docker --network none": CliSubject("docker", ["--network", "none"]),
        "podman": CliSubject("podman", []),
        "runc (bundle)": runc.once,
    }

    def teardown() -> None:
        runc.teardown()
        # every run was --rm: what is left in the throwaway root is the loaded image
        shutil.rmtree(ref_root, ignore_errors=True)

    return [Case(
        name="start-to-exit: run --rm IMG true", unit="ms", higher_is_better=False, subjects=subjects,
        baseline="docker", teardown=teardown,
        description="wall time of the CLI call from fork to exit; the test image is loaded beforehand",
    )]
