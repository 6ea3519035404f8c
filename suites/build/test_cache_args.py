"""ARG and the cache: a build-arg's value is part of the key of every RUN
after its declaration (moby#20136), an undeclared one of none, and the
predefined proxy args only once declared."""

from __future__ import annotations

import pytest

from .conftest import ARG_CACHE, PREDEFINED_ARGS, proof

pytestmark = [pytest.mark.requires("build")]


@pytest.mark.spec(ARG_CACHE, "a changed ARG value is a cache miss at its first usage, not its definition; every RUN "
                             "after the ARG uses it implicitly (as an environment variable)")
def test_changed_build_arg_misses_from_the_first_run_after_the_declaration(builds):
    steps = [proof("p0"), "ARG VERSION", "LABEL unrelated=1", proof("p1"), "LABEL tail=1", proof("p2")]
    ctx = builds.context(dockerfile=steps)
    first = builds.build(ctx, "--build-arg", "VERSION=1")
    second = builds.build(ctx, "--build-arg", "VERSION=2")
    builds.assert_rebuilt_from(first, second, 3)
    assert second.proofs()["p0"] == first.proofs()["p0"]


@pytest.mark.spec(ARG_CACHE, "an ARG's default value is part of the instruction: changing it is a cache miss at the ARG")
def test_changed_arg_default_misses_at_the_arg(builds):
    steps = [proof("p0"), "ARG VERSION=1", proof("p1")]
    ctx = builds.context(dockerfile=steps)
    first = builds.build(ctx)
    steps[1] = "ARG VERSION=2"
    builds.set_dockerfile(ctx, steps)
    second = builds.build(ctx)
    builds.assert_rebuilt_from(first, second, 1)


@pytest.mark.spec(ARG_CACHE, "a --build-arg that no ARG declares is not used and changes nothing")
def test_undeclared_build_arg_changes_nothing(builds):
    ctx = builds.context(dockerfile=[proof("p0"), "LABEL x=1", proof("p1")])
    first = builds.build(ctx)
    second = builds.build(ctx, "--build-arg", "UNDECLARED=1")
    builds.assert_rebuilt_from(first, second, None)
    third = builds.build(ctx, "--build-arg", "UNDECLARED=2")
    builds.assert_rebuilt_from(first, third, None)


@pytest.mark.spec(PREDEFINED_ARGS, "the predefined proxy args are usable without ARG and are excluded from the cache "
                                   "key unless an ARG declares them")
def test_undeclared_proxy_arg_is_passed_but_not_in_the_cache_key(builds):
    steps = [proof("p0"), 'RUN echo "$HTTP_PROXY" > /proxy.txt', proof("p1")]
    ctx = builds.context(dockerfile=steps)
    first = builds.build(ctx, "--build-arg", "HTTP_PROXY=http://127.0.0.1:3128")
    assert first.file("/proxy.txt") == b"http://127.0.0.1:3128\n", "the RUN step did not see the predefined arg"
    second = builds.build(ctx, "--build-arg", "HTTP_PROXY=http://127.0.0.1:3129")
    builds.assert_rebuilt_from(first, second, None)


@pytest.mark.spec(PREDEFINED_ARGS, "a proxy arg declared with ARG is in the cache key like any other ARG")
def test_declared_proxy_arg_is_in_the_cache_key(builds):
    steps = [proof("p0"), "ARG HTTP_PROXY", 'RUN echo "$HTTP_PROXY" > /proxy.txt', proof("p1")]
    ctx = builds.context(dockerfile=steps)
    first = builds.build(ctx, "--build-arg", "HTTP_PROXY=http://127.0.0.1:3128")
    second = builds.build(ctx, "--build-arg", "HTTP_PROXY=http://127.0.0.1:3129")
    builds.assert_rebuilt_from(first, second, 2)
    assert second.file("/proxy.txt") == b"http://127.0.0.1:3129\n"
