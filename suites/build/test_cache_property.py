"""The cache rule as a property: for any Dockerfile of a small grammar and any
one mutation (a step changed, inserted or removed, or a copied file's content
changed), the rebuild runs exactly the steps from the first changed one on.

A failing example shrinks to a minimal Dockerfile, printed before and after
the mutation. CI runs it derandomized with a bounded number of examples.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, note, settings

from conformance.cachecheck import verdict
from conformance.strategies_build import cache_cases
from conformance.testimage import REPOSITORY

from .conftest import CACHE_RULES

pytestmark = [pytest.mark.requires("build")]

#: Each example is two builds (~1-2 s each here); a fixed seed keeps CI stable.
EXAMPLES = 12


@pytest.mark.spec(CACHE_RULES, "a rebuild reuses the steps before the first changed instruction or COPY/ADD source "
                               "and runs that step and every later one again")
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=cache_cases(f"{REPOSITORY}:base", max_steps=5))
def test_rebuild_misses_exactly_from_the_first_changed_step(builds, case):
    own = builds.fresh()  # a cache per example: no example can hit another's steps
    try:
        dockerfile = case.dockerfile.with_preamble(own.label_step)
        ctx = own.context()
        case.context.write(ctx, dockerfile)
        first = own.build(ctx)
        new_dockerfile, new_context = case.mutated()
        new_context.write(ctx, new_dockerfile.with_preamble(own.label_step))
        second = own.build(ctx)
        first_changed = case.first_changed((own.label_step,))
        note(f"expected first rebuilt step: {first_changed}")
        event(f"{case.mutation.kind}: {'all cached' if first_changed is None else 'rebuilt from a step'}")
        result = verdict(first.observation, second.observation, first_changed)
        assert result.ok, (f"{own.engine.name}: the rebuild did not run exactly the steps from "
                           f"{first_changed} on\n{result.explain()}\n{case!r}")
        if first_changed is not None:
            assert second.image_id != first.image_id
    finally:
        own.cleanup()
