"""Deciding, from what two builds left behind, which steps the second build
ran again, and whether that is what the build cache promises.

The promise (Dockerfile reference, "Build cache"): a rebuild reuses every step
up to the first one whose instruction (or, for COPY/ADD, whose source content)
changed, and runs that step and every later one again.

Witnesses, strongest first, none parsed from a progress display:

- *proofs*: a RUN step writes fresh random bytes to a file; a step that ran
  again shows new bytes, a reused step shows the old ones;
- *history stamps*: every step leaves one ``history`` entry in the image
  config, stamped when the step ran; a reused step keeps its old stamp;
- *progress* (second witness only): "Using cache" under a step's header in
  the builder's output, when the output has docker's ``Step N/M :`` headers.

A step of the second build was *reused* when its stamp or its proof occurs
among the first build's; comparing against all of them (not index by index)
keeps the verdict right when a mutation inserted or removed steps.

Everything here is pure: observations in, verdicts out. The suites collect
observations from ``save`` archives (:func:`read_saved_image`).

>>> before = BuildObservation("sha256:a", (Step("LABEL a=1", "t1"), Step("RUN x", "t2", "p1")))
>>> after = BuildObservation("sha256:b", (Step("LABEL a=1", "t1"), Step("RUN x", "t3", "p2")))
>>> verdict(before, after, first_changed=1).ok
True
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass

from .errors import ConformanceError


class ObservationError(ConformanceError):
    """Observations that cannot be compared (say what is missing)."""


@dataclass(frozen=True)
class Step:
    """What one step of a build left in the image."""

    created_by: str  # the history entry's ``created_by`` (for messages and alignment)
    created: str  # the history entry's stamp
    proof: str | None = None  # bytes a RUN step wrote, if it writes a proof


@dataclass(frozen=True)
class BuildObservation:
    """One build: the image it made and its steps in Dockerfile order (FROM excluded)."""

    image_id: str
    steps: tuple[Step, ...]
    progress_hits: tuple[bool, ...] | None = None  # second witness, when the output has step headers


@dataclass(frozen=True)
class Verdict:
    """Expected versus observed reuse of one rebuild."""

    expected: tuple[bool, ...]  # True: the step must run again
    observed: tuple[bool, ...]
    conflicts: tuple[str, ...]  # witnesses that disagree
    after: BuildObservation

    @property
    def ok(self) -> bool:
        return self.expected == self.observed and not self.conflicts

    def explain(self) -> str:
        """One line per step: expected, observed, and what the step was."""
        lines = ["step  expected  observed  instruction"]
        for i, step in enumerate(self.after.steps):
            exp = "rebuild" if self.expected[i] else "cached"
            obs = "rebuilt" if self.observed[i] else "cached"
            mark = "  " if self.expected[i] == self.observed[i] else "!!"
            lines.append(f"{mark}{i:<4}{exp:<10}{obs:<10}{step.created_by[:100]}")
        lines += [f"!! {c}" for c in self.conflicts]
        return "\n".join(lines)


def rebuilt_steps(before: BuildObservation, after: BuildObservation) -> tuple[bool, ...]:
    """Per step of ``after``: True when it ran again rather than reused a step of ``before``."""
    stamps = {s.created for s in before.steps}
    proofs = {s.proof for s in before.steps if s.proof is not None}
    return tuple(not (s.created in stamps or (s.proof is not None and s.proof in proofs)) for s in after.steps)


def witness_conflicts(before: BuildObservation, after: BuildObservation) -> tuple[str, ...]:
    """Where the witnesses of one step disagree: stamp versus proof, and progress output."""
    conflicts = []
    stamps = {s.created for s in before.steps}
    proofs = {s.proof for s in before.steps if s.proof is not None}
    for i, s in enumerate(after.steps):
        if s.proof is not None and (s.created in stamps) != (s.proof in proofs):
            conflicts.append(f"step {i}: history stamp says {'cached' if s.created in stamps else 'rebuilt'}, "
                             f"its proof says {'cached' if s.proof in proofs else 'rebuilt'}")
    if after.progress_hits is not None:
        observed = rebuilt_steps(before, after)
        for i, (hit, rebuilt) in enumerate(zip(after.progress_hits, observed)):
            if hit == rebuilt:
                conflicts.append(f"step {i}: the output says {'Using cache' if hit else 'ran'}, "
                                 f"the image says {'rebuilt' if rebuilt else 'cached'}")
    return tuple(conflicts)


def expected_rebuilt(n_steps: int, first_changed: int | None) -> tuple[bool, ...]:
    """The promise: steps before ``first_changed`` reused, it and all later ones run again."""
    if first_changed is not None and first_changed < 0:
        raise ValueError(f"first_changed must be >= 0 or None, not {first_changed}")
    edge = n_steps if first_changed is None else min(first_changed, n_steps)
    return tuple(i >= edge for i in range(n_steps))


def verdict(before: BuildObservation, after: BuildObservation, first_changed: int | None) -> Verdict:
    """Compare a rebuild against the promise; ``first_changed`` None means nothing changed."""
    return Verdict(expected_rebuilt(len(after.steps), first_changed), rebuilt_steps(before, after),
                   witness_conflicts(before, after), after)


def first_changed_step(old: list[str], new: list[str], content_changed: list[bool] | None = None) -> int | None:
    """The first step of ``new`` whose instruction text differs from ``old``'s at the same
    index (or that ``old`` lacks), or whose sources changed (``content_changed[i]``)."""
    content_changed = content_changed or [False] * len(new)
    for i, text in enumerate(new):
        if i >= len(old) or old[i] != text or content_changed[i]:
            return i
    return None


# -- collecting observations -------------------------------------------------

@dataclass(frozen=True)
class SavedImage:
    """The first image of a ``save`` archive in docker's format (``manifest.json``)."""

    config_name: str
    config: bytes
    layer_names: tuple[str, ...]
    layers: tuple[bytes, ...]  # uncompressed tar bytes, bottom first

    @property
    def config_json(self) -> dict:
        return json.loads(self.config)

    def files(self, prefix: str) -> dict[str, bytes]:
        """Regular files under ``prefix`` (no leading slash) in the merged layers, upper wins."""
        merged: dict[str, bytes] = {}
        for layer in self.layers:
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                for member in tar:
                    name = _member_path(member.name)
                    if name.startswith(prefix) and member.isfile():
                        merged[name] = tar.extractfile(member).read()
        return merged


def _member_path(name: str) -> str:
    """A tar member's path without ``./`` or ``/`` in front."""
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def _maybe_gunzip(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        import gzip

        return gzip.decompress(data)
    return data


def read_saved_image(archive: bytes) -> SavedImage:
    """Parse ``save``'s output (docker-archive: ``manifest.json`` + configs + layer tars)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            members = {_member_path(m.name): m for m in tar if m.isfile()}

            def read(name: str) -> bytes:
                member = members.get(_member_path(name))
                if member is None:
                    raise ObservationError(f"save archive lacks {name} (has {', '.join(sorted(members)[:8])}...)")
                return tar.extractfile(member).read()

            manifest = json.loads(read("manifest.json"))
            if not isinstance(manifest, list) or not manifest:
                raise ObservationError("save archive: manifest.json is not a non-empty list")
            entry = manifest[0]
            layers = tuple(_maybe_gunzip(read(name)) for name in entry["Layers"])
            return SavedImage(entry["Config"], read(entry["Config"]), tuple(entry["Layers"]), layers)
    except (tarfile.TarError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ObservationError(f"not a docker-format save archive: {exc}") from None


def misaligned(instructions: list[str], history: list[dict]) -> list[str]:
    """Steps whose history entry does not look like their instruction: a RUN's entry
    is the command (no ``#(nop)``), any other instruction's names its keyword."""
    problems = []
    for i, (text, entry) in enumerate(zip(instructions, history)):
        keyword = text.split(None, 1)[0].upper()
        created_by = str(entry.get("created_by", ""))
        if keyword == "RUN" and "#(nop)" in created_by:
            problems.append(f"step {i} ({text[:40]}) has the history entry of a non-RUN step: {created_by[:80]}")
        elif keyword != "RUN" and keyword not in created_by.upper():
            problems.append(f"step {i} ({text[:40]}) has the history entry {created_by[:80]!r}")
    return problems


def observe(saved: SavedImage, image_id: str, base_history: int, instructions: list[str],
            proof_dir: str, proof_of_step: dict[int, str], output: str | None = None) -> BuildObservation:
    """The steps of a built image from its saved config and layers.

    ``base_history``: history entries the FROM image brought; the next
    ``len(instructions)`` entries are the Dockerfile's steps (an engine may add
    more after them, e.g. for ``--label``), each checked to look like its
    instruction. ``proof_of_step``: step index -> the proof file that step
    writes under ``proof_dir``.
    """
    n_steps = len(instructions)
    history = saved.config_json.get("history") or []
    mine = history[base_history:base_history + n_steps]
    if len(mine) != n_steps:
        raise ObservationError(f"image {image_id} has {len(history)} history entries; expected at least "
                               f"{base_history} from the base plus {n_steps} steps")
    problems = misaligned(instructions, mine)
    if problems:
        raise ObservationError(f"image {image_id}: history entries do not line up with the Dockerfile's steps: "
                               + "; ".join(problems))
    files = saved.files(proof_dir)
    steps = []
    for i, entry in enumerate(mine):
        proof = None
        if i in proof_of_step:
            data = files.get(f"{proof_dir}/{proof_of_step[i]}")
            if data is None:
                raise ObservationError(f"step {i} should have written {proof_dir}/{proof_of_step[i]}; "
                                       f"the image has {sorted(files)}")
            proof = data.decode(errors="replace").strip()
        steps.append(Step(str(entry.get("created_by", "")), str(entry.get("created", "")), proof))
    return BuildObservation(image_id, tuple(steps), progress_hits(output, n_steps) if output else None)


_HEADER = re.compile(r"^(?:\[[^\]]*\]\s*)?step\s+\d+/\d+\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def progress_hits(output: str, n_steps: int) -> tuple[bool, ...] | None:
    """Second witness: per step of the final stage, whether the output says "Using cache".

    Understands the classic builder's and buildah's ``Step N/M :`` headers; returns
    None for output without them (quiet builds, other formats).
    """
    headers = list(_HEADER.finditer(output))
    froms = [i for i, m in enumerate(headers) if m.group(1).upper() == "FROM"]
    if not froms:
        return None
    blocks = []
    for i in range(froms[-1] + 1, len(headers)):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(output)
        blocks.append(output[headers[i].end():end])
    if len(blocks) < n_steps:
        return None
    return tuple("using cache" in block.lower() for block in blocks[:n_steps])
