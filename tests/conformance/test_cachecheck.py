"""The cache checker on simulated builders: a correct one passes, one that
invalidates a step too late (or too early) is caught."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings

from conformance import testimage
from conformance.cachecheck import (BuildObservation, ObservationError, Step, expected_rebuilt,
                                    first_changed_step, misaligned, observe, progress_hits, read_saved_image,
                                    rebuilt_steps, verdict)
from conformance.strategies_build import CacheCase, cache_cases


class SimulatedBuilder:
    """A classic-builder cache in miniature: a step is reused when a step with
    the same text (and the same source content) was built on the same parent.

    ``late`` > 0 simulates a faulty builder that keeps reusing ``late`` steps
    past the first changed one (it looks children up by parent alone there).
    """

    def __init__(self, late: int = 0):
        self.late = late
        self.children: dict[tuple[str, str], tuple[str, Step]] = {}  # (parent, key) -> (image, step)
        self.by_parent: dict[str, list[tuple[str, Step]]] = {}
        self._clock = itertools.count(1)

    def build(self, texts: list[str], sources: list[bytes] | None = None) -> BuildObservation:
        sources = sources or [b""] * len(texts)
        parent, steps, invalidated, lenient = "base", [], False, 0
        for text, source in zip(texts, sources):
            hit = None if invalidated else self.children.get((parent, f"{text}|{source.hex()}"))
            if hit is None and not invalidated:
                if lenient < self.late and self.by_parent.get(parent):
                    hit, lenient = self.by_parent[parent][0], lenient + 1  # the bug: "same parent is enough"
                else:
                    invalidated = True
            if hit is None:
                tick = next(self._clock)
                step = Step(text, f"t{tick}", f"proof{tick}" if text.startswith("RUN") else None)
                hit = (f"img{tick}", step)
                self.children[(parent, f"{text}|{source.hex()}")] = hit
                self.by_parent.setdefault(parent, []).append(hit)
            elif lenient:
                invalidated = True  # ...and only then does it stop reusing
            parent = hit[0]
            steps.append(hit[1])
        return BuildObservation(parent, tuple(steps))


STEPS = ["LABEL n=1", "RUN a", "ENV X=1", "COPY f /f", "RUN b", "CMD [\"sh\"]"]


def test_correct_builder_passes_a_change_in_the_middle():
    builder = SimulatedBuilder()
    before = builder.build(STEPS)
    changed = [*STEPS[:2], "ENV X=2", *STEPS[3:]]
    after = builder.build(changed)
    result = verdict(before, after, first_changed_step(STEPS, changed))
    assert result.ok, result.explain()
    assert result.observed == (False, False, True, True, True, True)


def test_builder_that_invalidates_one_step_too_late_is_caught():
    builder = SimulatedBuilder(late=1)
    before = builder.build(STEPS)
    changed = [*STEPS[:2], "ENV X=2", *STEPS[3:]]
    after = builder.build(changed)
    result = verdict(before, after, first_changed_step(STEPS, changed))
    assert not result.ok
    assert result.expected == (False, False, True, True, True, True)
    assert result.observed == (False, False, False, True, True, True)
    flagged = [line for line in result.explain().splitlines() if line.startswith("!!")]
    assert len(flagged) == 1 and "ENV X=2" not in flagged[0] and "ENV X=1" in flagged[0], result.explain()


def test_builder_that_misses_a_content_change_is_caught():
    builder = SimulatedBuilder(late=1)
    before = builder.build(STEPS, [b"", b"", b"", b"v1", b"", b""])
    after = builder.build(STEPS, [b"", b"", b"", b"v2", b"", b""])
    assert not verdict(before, after, first_changed_step(STEPS, STEPS, [False, False, False, True, False, False])).ok


def test_builder_that_invalidates_too_early_is_caught():
    before = BuildObservation("i1", (Step("LABEL a", "t1"), Step("RUN x", "t2", "p1")))
    after = BuildObservation("i2", (Step("LABEL a", "t3"), Step("RUN x", "t4", "p2")))
    result = verdict(before, after, first_changed=1)
    assert not result.ok and result.observed == (True, True)


@settings(max_examples=100, deadline=None)
@given(cache_cases("base"))
def test_checker_accepts_a_correct_builder_and_catches_a_late_one_on_generated_cases(case: CacheCase):
    preamble = ("LABEL nonce=1",)
    old_df, new = case.dockerfile.with_preamble(*preamble), case.mutated()
    new_df = new[0].with_preamble(*preamble)
    first_changed = case.first_changed(preamble)

    def sources(df, ctx):
        files = ctx.as_dict()
        return [b"".join(files[s] for s in srcs) for srcs in df.sources_of_step()]

    for late in (0, 1):
        builder = SimulatedBuilder(late=late)
        before = builder.build(old_df.step_texts(), sources(old_df, case.context))
        after = builder.build(new_df.step_texts(), sources(new_df, new[1]))
        result = verdict(before, after, first_changed)
        if late == 0:
            assert result.ok, f"{result.explain()}\n{case!r}"
        elif first_changed is not None and first_changed < min(len(old_df.step_texts()), len(new_df.step_texts())):
            assert not result.ok, f"a late builder passed:\n{result.explain()}\n{case!r}"


def test_witnesses_that_disagree_are_reported():
    before = BuildObservation("i1", (Step("RUN x", "t1", "p1"),))
    stamp_vs_proof = BuildObservation("i2", (Step("RUN x", "t1", "p2"),))
    assert verdict(before, stamp_vs_proof, None).conflicts
    output_disagrees = BuildObservation("i1", (Step("RUN x", "t1", "p1"),), progress_hits=(False,))
    result = verdict(before, output_disagrees, None)
    assert not result.ok and "Using cache" not in result.conflicts[0] and "ran" in result.conflicts[0]


def test_expected_rebuilt():
    assert expected_rebuilt(3, None) == (False, False, False)
    assert expected_rebuilt(3, 0) == (True, True, True)
    assert expected_rebuilt(3, 2) == (False, False, True)
    with pytest.raises(ValueError):
        expected_rebuilt(3, -1)


def test_first_changed_step_covers_insert_delete_append_and_no_change():
    assert first_changed_step(["a", "b"], ["a", "b"]) is None
    assert first_changed_step(["a", "b"], ["a", "x", "b"]) == 1
    assert first_changed_step(["a", "b", "c"], ["a", "c"]) == 1
    assert first_changed_step(["a", "b"], ["a"]) is None
    assert first_changed_step(["a"], ["a", "b"]) == 1
    assert first_changed_step(["a", "b"], ["a", "b"], [False, True]) == 1


def test_rebuilt_steps_matches_by_value_not_by_index():
    before = BuildObservation("i1", (Step("A", "t1"), Step("B", "t2")))
    # an inserted step at 0 that reused nothing, then B reused from the old index 1
    after = BuildObservation("i2", (Step("X", "t3"), Step("B", "t2")))
    assert rebuilt_steps(before, after) == (True, False)


DOCKER_OUTPUT = """Sending build context to Docker daemon  2.048kB
Step 1/4 : FROM localhost/conformance/busybox:base
 ---> 2967fa313e54
Step 2/4 : LABEL a=b
 ---> Using cache
 ---> 4818c3e9b9dc
Step 3/4 : RUN echo hi
 ---> Running in 42ea5cb11ebe
Removing intermediate container 42ea5cb11ebe
 ---> 44aa35419112
Step 4/4 : LABEL io.conformance.run=x
 ---> Running in 9829d4dc5bae
 ---> df3a4dc956cb
Successfully built df3a4dc956cb
"""

PODMAN_OUTPUT = """[1/2] STEP 1/2: FROM localhost/conformance/busybox:base AS one
[1/2] STEP 2/2: RUN true
--> Using cache bfc85602d2e7
[2/2] STEP 1/3: FROM localhost/conformance/busybox:base
[2/2] STEP 2/3: LABEL a=b
--> Using cache bfc85602d2e764980c0ae0531431fc27c0b2183abe6ae713e9027ae55ecab35c
--> bfc85602d2e
[2/2] STEP 3/3: RUN echo hi
COMMIT localhost/x:1
--> de9a6fa3584
"""


def test_progress_hits_reads_the_classic_and_buildah_formats():
    assert progress_hits(DOCKER_OUTPUT, 2) == (True, False)
    assert progress_hits(PODMAN_OUTPUT, 2) == (True, False)
    assert progress_hits("sha256:abc\n", 2) is None
    assert progress_hits(DOCKER_OUTPUT, 5) is None


def test_observe_reads_history_and_proofs_from_a_save_archive():
    images = testimage.build_image_set(b"\x7fELF fake busybox", ["sh"], arch="amd64")
    saved = read_saved_image(testimage.docker_archive(images))
    assert saved.config == images["base"].config or saved.config in {i.config for i in images.images}
    assert saved.files("data/") == {"data/seed.txt": testimage.SEED_TEXT}
    config = json.loads(saved.config)
    observation = observe(saved, "sha256:x", 0, ["RUN make-seed"], "data", {0: "seed.txt"})
    assert observation.steps == (Step(config["history"][0]["created_by"], testimage.CREATED,
                                      testimage.SEED_TEXT.decode().strip()),)
    with pytest.raises(ObservationError, match="history entries"):
        observe(saved, "sha256:x", 1, ["RUN make-seed"], "data", {})
    with pytest.raises(ObservationError, match="should have written"):
        observe(saved, "sha256:x", 0, ["RUN make-seed"], "data", {0: "missing"})
    with pytest.raises(ObservationError, match="do not line up"):
        observe(saved, "sha256:x", 0, ["LABEL a=b"], "data", {})


def test_misaligned_history_is_named():
    history = [{"created_by": "/bin/sh -c #(nop)  LABEL a=b"}, {"created_by": "/bin/sh -c echo hi"},
               {"created_by": "|1 V=2 /bin/sh -c echo hi"}, {"created_by": "/bin/sh -c #(nop) COPY file:abc in /x"}]
    assert misaligned(["LABEL a=b", "RUN echo hi", "RUN echo hi", "COPY x /x"], history) == []
    assert len(misaligned(["RUN echo hi", "LABEL a=b"], history[:2])) == 2


def test_read_saved_image_rejects_what_is_not_a_save_archive():
    with pytest.raises(ObservationError):
        read_saved_image(b"not a tar at all")
