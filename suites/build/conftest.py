"""Shared helpers of the build suite: contexts, builds, observations, cleanup.

Every Dockerfile a check builds gets ``LABEL io.conformance.build=<nonce>``
right after each FROM. That keeps the cache of one check private (no step can
hit a step another check or an earlier run built) and marks every image the
builds leave, intermediate and dangling ones included, so they are all
removed after the check.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.cachecheck import BuildObservation, SavedImage, observe, read_saved_image, verdict
from conformance.engine import CommandResult
from conformance.strategies_build import PROOF_DIR, PROOF_PREFIX, proof_command
from conformance.suite_support import BUILD_LABEL, DOCS, normal_id, remove_built_images

CACHE = f"{DOCS}/build/cache/"
CACHE_RULES = f"{DOCS}/build/cache/invalidation/"
DOCKERFILE = f"{DOCS}/reference/dockerfile/"
ARG_CACHE = f"{DOCKERFILE}#impact-on-build-caching"
PREDEFINED_ARGS = f"{DOCKERFILE}#predefined-args"
DOCKERIGNORE = f"{DOCKERFILE}#dockerignore-file"
COPY = f"{DOCKERFILE}#copy"
MULTISTAGE = f"{DOCS}/build/building/multi-stage/"

BUILD_TIMEOUT = 300.0
_PROOF_RE = re.compile(rf"/{PROOF_DIR}/{re.escape(PROOF_PREFIX)}(\S+)")

def proof(name: str) -> str:
    """A RUN step that writes fresh random bytes to the proof ``name``."""
    return f"RUN {proof_command(name)}"


@dataclass(frozen=True)
class Built:
    """One finished build and what it left."""

    ref: str
    dockerfile: str
    result: CommandResult
    image_id: str
    saved: SavedImage
    observation: BuildObservation

    def proofs(self) -> dict[str, str]:
        return {name.rsplit("/", 1)[1][len(PROOF_PREFIX):]: data.decode().strip()
                for name, data in self.saved.files(f"{PROOF_DIR}/{PROOF_PREFIX}").items()}

    def file(self, path: str) -> bytes | None:
        return self.saved.files(path.lstrip("/")).get(path.lstrip("/"))


class Builds:
    """Builds of one check; ``steps`` are the instructions after ``FROM base``
    (the nonce label, step 0 of the observations, is added in between)."""

    def __init__(self, engine, base: str, base_history: int, root: Path):
        self.engine, self.base, self.base_history, self.root = engine, base, base_history, root
        self.nonce = secrets.token_hex(6)
        self._contexts = 0

    @property
    def label_step(self) -> str:
        return f"LABEL {BUILD_LABEL}={self.nonce}"

    def render(self, dockerfile: list[str] | str) -> str:
        """A list is one stage on the base image; a text may hold several FROM
        lines (``{base}`` stands for the base image)."""
        if isinstance(dockerfile, list):
            dockerfile = "\n".join(["FROM {base}", *dockerfile])
        out = []
        for line in dockerfile.strip().splitlines():
            out.append(line.replace("{base}", self.base))
            if line.strip().upper().startswith("FROM "):
                out.append(self.label_step)
        return "\n".join(out) + "\n"

    def context(self, files: dict[str, str | bytes] | None = None, dockerfile: list[str] | str | None = None,
                name: str = "Dockerfile") -> Path:
        self._contexts += 1
        ctx = self.root / f"ctx-{self.nonce}-{self._contexts}"
        ctx.mkdir()
        for path, data in (files or {}).items():
            self.write(ctx, path, data)
        if dockerfile is not None:
            self.write(ctx, name, self.render(dockerfile))
        return ctx

    @staticmethod
    def write(ctx: Path, path: str, data: str | bytes) -> Path:
        target = ctx / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        return target

    def set_dockerfile(self, ctx: Path, dockerfile: list[str] | str, name: str = "Dockerfile") -> None:
        self.write(ctx, name, self.render(dockerfile))

    def build(self, ctx: Path, *flags: str, dockerfile: str = "Dockerfile", ref: str | None = None) -> Built:
        """Build, then observe the image through ``inspect`` and ``save``."""
        engine = self.engine
        ref = ref or engine.track_image(f"localhost/conformance/{engine.new_name('img')}:built")
        result = engine.cli("build", "-t", ref, "--label", engine.label, "--force-rm", *flags,
                            *(["-f", str(ctx / dockerfile)] if dockerfile != "Dockerfile" else []), str(ctx),
                            timeout=BUILD_TIMEOUT)
        assert result.ok, f"{engine.name}: build failed\n{result}"
        inspected = engine.query("image", "inspect", "--format", "{{.Id}}", ref, timeout=BUILD_TIMEOUT)
        assert inspected.ok, f"{engine.name}: image inspect {ref} failed\n{inspected}"
        image_id = normal_id(inspected.stdout.strip())
        saved = engine.query("save", ref, text=False, timeout=BUILD_TIMEOUT)
        assert saved.ok, f"{engine.name}: save failed: {saved.stderr!r}"
        text = (ctx / dockerfile).read_text()
        steps = final_stage_steps(text)
        proofs = {i: m.group(1) for i, s in enumerate(steps)
                  if s.upper().startswith("RUN ") and (m := _PROOF_RE.search(s))}
        saved_image = read_saved_image(saved.stdout)
        observation = observe(saved_image, image_id, self.base_history, steps, PROOF_DIR,
                              {i: PROOF_PREFIX + p for i, p in proofs.items()}, output=result.stdout)
        return Built(ref, text, result, image_id, saved_image, observation)

    def assert_rebuilt_from(self, first: Built, second: Built, step: int | None, *, preamble: int = 1) -> None:
        """The rebuild reused the steps before ``step`` (an index into the check's
        steps, the nonce label not counted) and ran it and every later one again;
        ``None``: it reused every step and made the same image."""
        first_changed = None if step is None else step + preamble
        result = verdict(first.observation, second.observation, first_changed)
        assert result.ok, (f"{self.engine.name}: the rebuild did not reuse exactly the steps before "
                           f"{'the end' if step is None else f'step {first_changed}'}\n{result.explain()}\n"
                           f"--- first build ---\n{first.dockerfile}--- second build ---\n{second.dockerfile}")
        if step is None:
            assert second.image_id == first.image_id, f"{self.engine.name}: a fully cached rebuild made a new image"
        else:
            assert second.image_id != first.image_id, f"{self.engine.name}: a rebuild with a miss kept the image"

    def fresh(self) -> "Builds":
        """Builds with a cache of their own (a new nonce), e.g. one per hypothesis example."""
        return Builds(self.engine, self.base, self.base_history, self.root)

    def cleanup(self) -> list[str]:
        """Remove every image these builds left (tagged, dangling, intermediate)."""
        return remove_built_images(self.engine, self.nonce)


def final_stage_steps(dockerfile: str) -> list[str]:
    """The instructions after the last FROM (one per line; the suite writes no continuations)."""
    lines = [l.strip() for l in dockerfile.splitlines() if l.strip() and not l.strip().startswith("#")]
    last_from = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
    return lines[last_from + 1:]


@pytest.fixture
def builds(engine, test_image, tmp_path):
    base_history = len(json.loads(test_image.set["base"].config)["history"])
    helper = Builds(engine, test_image.base, base_history, tmp_path)
    yield helper
    left = helper.cleanup()
    if left:
        import warnings

        warnings.warn(f"{engine.name}: could not remove images {left}")
