"""The build cache and the instructions themselves: an unchanged rebuild
reuses everything, ``--no-cache`` nothing, and a changed instruction is where
reuse stops."""

from __future__ import annotations

import pytest

from .conftest import CACHE, CACHE_RULES, proof

pytestmark = [pytest.mark.requires("build")]

#: One step of every kind, with the proofs around them.
MIXED = [
    "LABEL stage=one",
    proof("a"),
    "ENV GREETING=hello",
    "COPY input.txt /input.txt",
    "WORKDIR /work",
    proof("b"),
    'CMD ["sh"]',
]


@pytest.mark.spec(CACHE, "a rebuild of an unchanged Dockerfile and context reuses every step and gives the same image")
def test_unchanged_rebuild_reuses_every_step(builds):
    ctx = builds.context({"input.txt": "input\n"}, MIXED)
    first = builds.build(ctx)
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, None)
    assert second.proofs() == first.proofs()
    # the proofs read from the saved layers are what a container of the image sees
    script = 'for f in /tmp/proof.*; do printf "%s %s\\n" "${f#/tmp/proof.}" "$(cat "$f")"; done'
    shown = builds.engine.run(["--rm", second.ref, "sh", "-c", script])
    assert shown.ok, str(shown)
    assert dict(line.split(" ", 1) for line in shown.stdout.splitlines()) == second.proofs()


@pytest.mark.spec(f"{CACHE}#how-does-the-build-cache-work", "--no-cache: no step is taken from the cache")
def test_no_cache_runs_every_step_again(builds):
    ctx = builds.context({"input.txt": "input\n"}, MIXED)
    first = builds.build(ctx)
    second = builds.build(ctx, "--no-cache")
    builds.assert_rebuilt_from(first, second, 0, preamble=0)
    assert set(second.proofs()) == {"a", "b"}
    assert not set(second.proofs().values()) & set(first.proofs().values())


#: instruction -> (before, after): a change that is not a no-op.
CHANGES = {
    "LABEL": ("LABEL colour=red", "LABEL colour=blue"),
    "ENV": ("ENV MODE=one", "ENV MODE=two"),
    "RUN": ("RUN echo one > /run.txt", "RUN echo two > /run.txt"),
    "WORKDIR": ("WORKDIR /one", "WORKDIR /two"),
    "CMD": ('CMD ["echo", "one"]', 'CMD ["echo", "two"]'),
    "ENTRYPOINT": ('ENTRYPOINT ["echo", "one"]', 'ENTRYPOINT ["echo", "two"]'),
    "EXPOSE": ("EXPOSE 8080", "EXPOSE 8081"),
    "USER": ("USER root", "USER nobody"),
    "VOLUME": ("VOLUME /one", "VOLUME /two"),
    "STOPSIGNAL": ("STOPSIGNAL SIGINT", "STOPSIGNAL SIGTERM"),
    "SHELL": ('SHELL ["/bin/sh", "-c"]', 'SHELL ["/bin/sh", "-ec"]'),
    "HEALTHCHECK": ("HEALTHCHECK CMD true", "HEALTHCHECK --interval=7s CMD true"),
    "ONBUILD": ("ONBUILD RUN echo one", "ONBUILD RUN echo two"),
    "MAINTAINER": ("MAINTAINER one", "MAINTAINER two"),
}


@pytest.mark.spec(CACHE_RULES, "a changed instruction is not reused: it and every later step run again; "
                               "the steps before it are reused")
@pytest.mark.parametrize("keyword", list(CHANGES))
def test_changed_instruction_misses_from_that_step_on(builds, keyword):
    before, after = CHANGES[keyword]
    steps = [proof("before"), "LABEL fixed=1", before, proof("after"), "LABEL tail=1"]
    ctx = builds.context(dockerfile=steps)
    first = builds.build(ctx)
    steps[2] = after
    builds.set_dockerfile(ctx, steps)
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 2)
    assert second.proofs()["before"] == first.proofs()["before"]
    assert second.proofs()["after"] != first.proofs()["after"]
