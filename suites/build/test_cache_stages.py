"""Multi-stage builds: each stage has its own cache chain, and COPY --from
is keyed by the content it copies."""

from __future__ import annotations

import pytest

from .conftest import COPY, MULTISTAGE, proof

pytestmark = [pytest.mark.requires("build")]

TWO_STAGES = """
FROM {base} AS one
%s
COPY one.txt /one.txt
%s
FROM {base} AS two
%s
COPY two.txt /two.txt
%s
FROM {base}
COPY --from=two /tmp/ /from-two/
COPY --from=one /tmp/ /from-one/
%s
""" % (proof("one1"), proof("one2"), proof("two1"), proof("two2"), proof("final"))


@pytest.mark.spec(MULTISTAGE, "a change in one stage does not invalidate an unrelated stage; the final stage "
                              "misses from the COPY --from of the changed stage on")
def test_change_in_one_stage_leaves_an_unrelated_stage_cached(builds):
    ctx = builds.context({"one.txt": "one\n", "two.txt": "two\n"}, TWO_STAGES)
    first = builds.build(ctx)
    builds.write(ctx, "one.txt", "one changed\n")
    second = builds.build(ctx)

    def stage_proofs(built, stage):
        return {n: built.file(f"/from-{stage}/proof.{n}") for n in (f"{stage}1", f"{stage}2")}

    one_before, one_after = stage_proofs(first, "one"), stage_proofs(second, "one")
    assert one_after["one1"] == one_before["one1"], "stage one ran its step before the changed COPY again"
    assert one_after["one2"] != one_before["one2"], "stage one reused the step after the changed COPY"
    assert stage_proofs(second, "two") == stage_proofs(first, "two"), "the unrelated stage two was rebuilt"
    builds.assert_rebuilt_from(first, second, 1)


@pytest.mark.spec(COPY, "COPY --from is keyed by the content it copies: an unchanged file from a rebuilt stage "
                        "is a cache hit, a changed one a miss")
def test_copy_from_a_rebuilt_stage_is_keyed_by_content(builds):
    dockerfile = f"""
FROM {{base}} AS one
COPY stable.txt /stable.txt
COPY changing.txt /changing.txt
{proof("one")}
FROM {{base}}
{proof("before")}
COPY --from=one /stable.txt /stable.txt
{proof("after")}
COPY --from=one /tmp/proof.one /one-proof
"""
    ctx = builds.context({"stable.txt": "stable\n", "changing.txt": "one\n"}, dockerfile)
    first = builds.build(ctx)
    builds.write(ctx, "changing.txt", "two\n")
    second = builds.build(ctx)
    assert second.file("/one-proof") != first.file("/one-proof"), "stage one was not rebuilt"
    builds.assert_rebuilt_from(first, second, 3)
