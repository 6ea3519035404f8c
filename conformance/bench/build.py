"""Build speed: a 6-instruction Dockerfile with a 10 MB COPY, built cold
(``--no-cache``), fully cached, and after one COPY source changed, per engine
(docker's classic builder, podman, and refengine once it has ``build``).

Each subject builds in a context of its own; every image the builds leave
carries a bench label and is removed in the teardown. Only the build call is
timed: changing the source and removing the previous image happen outside.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import testimage
from ..profile import profile_by_name
from .core import Case, Unavailable, timed

IMAGE = testimage.REPOSITORY + ":base"
BENCH_LABEL = "io.conformance.bench"
PAYLOAD_BYTES = 10 * 1024 * 1024


def dockerfile(nonce: str) -> str:
    """Six instructions; the COPY carries the 10 MB payload."""
    return "\n".join([
        f"FROM {IMAGE}",
        f"LABEL {BENCH_LABEL}={nonce}",
        "ENV BENCH=build",
        "COPY payload.bin /data/payload.bin",
        "RUN wc -c /data/payload.bin > /data/size.txt",
        'CMD ["cat", "/data/size.txt"]',
    ]) + "\n"


class BuildSubject:
    """One engine's builds of the bench context."""

    def __init__(self, engine: str, env: dict[str, str] | None = None, root_env: str = ""):
        """``root_env``: a variable naming the engine's state root; a throwaway
        root is made on first use and removed by :meth:`cleanup`."""
        profile = profile_by_name(engine)
        self.engine = engine
        self.argv = list(profile.argv)
        self.env = {**os.environ, **profile.env, **(env or {})}
        self.root_env, self.root = root_env, None
        self.nonce = secrets.token_hex(6)
        self.ref = f"localhost/conformance/bench-build-{self.nonce}:latest"
        self.dir: Path | None = None
        self.unavailable = ""

    def _cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        try:
            # Never in the caller's directory (often a checkout): an engine may
            # write files into its working directory (conmon's `oom` marker, podman#13102).
            return subprocess.run([*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                                  cwd=tempfile.gettempdir())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{self.engine}: {' '.join(args[:2])} did not complete: {exc}") from None

    def prepare(self) -> None:
        """Check the engine can build here, load the base image, write the context."""
        if self.unavailable:
            raise Unavailable(self.unavailable)
        if self.dir is not None:
            return
        exe = shutil.which(self.argv[0]) or shutil.which(self.argv[0], path=str(Path(sys.executable).parent))
        if not exe:
            self.unavailable = f"{self.argv[0]} is not installed"
            raise Unavailable(self.unavailable)
        self.argv[0] = exe
        if self.root_env and self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix=f"bench-{self.engine}-root-"))
            self.env[self.root_env] = str(self.root)
        probe = self._cli("build", "--help", timeout=60)
        if probe.returncode != 0:
            self.unavailable = f"{self.engine} has no build command: {(probe.stderr or probe.stdout).strip()[:120]}"
            raise Unavailable(self.unavailable)
        if self._cli("image", "inspect", IMAGE, timeout=60).returncode != 0:
            with tempfile.TemporaryDirectory(prefix="bench-img-") as tmp:
                _, archive, _ = testimage.write_archives(Path(tmp))
                loaded = self._cli("load", "-i", str(archive))
            if loaded.returncode != 0:
                self.unavailable = f"{self.engine} load failed: {loaded.stderr.strip()[-200:]}"
                raise Unavailable(self.unavailable)
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-build-{self.engine}-"))
        (self.dir / "payload.bin").write_bytes(os.urandom(PAYLOAD_BYTES))
        (self.dir / "Dockerfile").write_text(dockerfile(self.nonce))

    def _image_id(self) -> str | None:
        found = self._cli("image", "inspect", "--format", "{{.Id}}", self.ref, timeout=60)
        return found.stdout.strip() if found.returncode == 0 else None

    def build(self, *flags: str) -> float:
        """Milliseconds of one ``build``; the image it replaced is removed afterwards."""
        self.prepare()
        previous = self._image_id()
        done: list[subprocess.CompletedProcess] = []
        ms = timed(lambda: done.append(self._cli("build", "-t", self.ref, *flags, str(self.dir))))
        if done[0].returncode != 0:
            raise Unavailable(f"{self.engine} build failed: {(done[0].stderr or done[0].stdout).strip()[-200:]}")
        current = self._image_id()
        if previous and previous != current:
            self._cli("rmi", previous, timeout=120)  # dangling now; its unshared parents go with it
        return ms

    def cold(self) -> float:
        return self.build("--no-cache")

    def cached(self) -> float:
        self.prepare()
        if self._image_id() is None:
            self.build()  # the first call only fills the cache
        return self.build()

    def copy_changed(self) -> float:
        self.prepare()
        if self._image_id() is None:
            self.build()
        with open(self.dir / "payload.bin", "r+b") as f:  # a new source: 16 bytes in the middle
            f.seek(PAYLOAD_BYTES // 2)
            f.write(os.urandom(16))
        return self.build()

    def cleanup(self) -> None:
        if self.dir is not None:
            try:
                for _ in range(4):  # children first: an image with children cannot go before them
                    listed = self._cli("images", "-a", "-q", "--no-trunc", "--filter",
                                       f"label={BENCH_LABEL}={self.nonce}", timeout=60)
                    ids = sorted(set(listed.stdout.split())) if listed.returncode == 0 else []
                    if not ids:
                        break
                    self._cli("rmi", "-f", *ids, timeout=300)
            except Unavailable:
                pass  # the engine went away; nothing more to remove through it
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def cases(options) -> list[Case]:
    out = []
    kinds = [
        ("cold", "build: cold (--no-cache)", "6 instructions, 10 MB COPY, nothing taken from the cache"),
        ("cached", "build: fully cached rebuild", "the same context again: every step from the cache"),
        ("copy_changed", "build: rebuild after one COPY source changed",
         "16 bytes of the 10 MB COPY source changed: COPY and the steps after it run again"),
    ]
    for kind, title, description in kinds:
        engines = {
            "docker (classic builder)": BuildSubject("docker", {"DOCKER_BUILDKIT": "0"}),
            "podman": BuildSubject("podman"),
            "refengine": BuildSubject("refengine", root_env="REFENGINE_ROOT"),
        }

        def teardown(engines=engines) -> None:
            for subject in engines.values():
                subject.cleanup()

        out.append(Case(name=title, unit="ms", higher_is_better=False,
                        subjects={name: getattr(subject, kind) for name, subject in engines.items()},
                        baseline="docker (classic builder)", teardown=teardown, description=description))
    return out
