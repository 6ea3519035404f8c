"""The Dockerfile grammar, contexts and mutations of conformance.strategies_build."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import ConformanceError
from conformance.strategies_build import (BuildContext, CacheCase, Dockerfile, Instruction, Mutation, cache_cases,
                                          contexts, dockerfiles, instructions, proof_command)

BASE = "localhost/conformance/busybox:base"
RUN = Instruction("RUN", "echo a >/dev/null", proof=True)
COPY = Instruction("COPY", "f0 /c0/f0", sources=("f0",))
LABEL = Instruction("LABEL", "k0=a")
DF = Dockerfile(BASE, (LABEL, RUN, COPY))
CTX = BuildContext((("f0", b"x"), ("f1", b"y")))


def test_render_numbers_proofs_by_step_and_puts_the_preamble_first():
    df = DF.with_preamble("LABEL nonce=1")
    assert df.render().splitlines() == [
        f"FROM {BASE}", "LABEL nonce=1", "LABEL k0=a", f"RUN echo a >/dev/null && {proof_command('2')}",
        "COPY f0 /c0/f0"]
    assert df.proof_of_step() == {2: "proof.2"}
    assert df.sources_of_step() == [(), (), (), ("f0",)]


@pytest.mark.parametrize("mutation, expected", [
    (Mutation("change", 0, Instruction("LABEL", "k0=b")), 1),
    (Mutation("change", 2, COPY), None),  # a change to the same instruction is none
    (Mutation("insert", 3, LABEL), 4),
    (Mutation("insert", 0, LABEL), 2),  # inserting a copy of step 0 before it: step 0 is still the same
    (Mutation("delete", 1), 2),
    (Mutation("delete", 2), None),  # the last step removed: the rest is a prefix, all reused
    (Mutation("content", file="f0", content=b"new"), 3),
    (Mutation("content", file="f1", content=b"new"), None),  # no step reads f1
])
def test_first_changed_accounts_for_the_preamble_and_the_mutation(mutation, expected):
    assert CacheCase(DF, CTX, mutation).first_changed(("LABEL nonce=1",)) == expected


def test_apply_leaves_the_original_untouched():
    new_df, new_ctx = Mutation("content", file="f0", content=b"z").apply(DF, CTX)
    assert new_df == DF and CTX.as_dict()["f0"] == b"x" and new_ctx.as_dict()["f0"] == b"z"
    with pytest.raises(ConformanceError, match="unknown mutation kind"):
        Mutation("rename").apply(DF, CTX)


def test_instructions_need_a_context_file():
    with pytest.raises(ConformanceError, match="at least one context file"):
        instructions(())


def test_write_keeps_unchanged_files_untouched(tmp_path):
    CTX.write(tmp_path, DF)
    before = (tmp_path / "f1").stat().st_mtime_ns
    import os
    os.utime(tmp_path / "f1", ns=(before - 10**12, before - 10**12))
    Mutation("content", file="f0", content=b"new").apply(DF, CTX)[1].write(tmp_path, DF)
    assert (tmp_path / "f1").stat().st_mtime_ns == before - 10**12
    assert (tmp_path / "f0").read_bytes() == b"new"
    assert (tmp_path / "Dockerfile").read_text() == DF.render()


@settings(max_examples=100, deadline=None)
@given(contexts().flatmap(lambda c: st.tuples(st.just(c), dockerfiles(BASE, tuple(n for n, _ in c.files), 4))))
def test_generated_dockerfiles_only_copy_files_of_their_context(pair):
    ctx, df = pair
    assert 1 <= len(df.steps) <= 4
    names = set(ctx.as_dict())
    assert all(set(step.sources) <= names for step in df.steps)
    assert df.render().startswith(f"FROM {BASE}\n")
    assert all(s.keyword in {"LABEL", "ENV", "RUN", "WORKDIR", "CMD", "ENTRYPOINT", "EXPOSE", "USER",
                             "STOPSIGNAL", "COPY", "ADD"} for s in df.steps)


@settings(max_examples=100, deadline=None)
@given(cache_cases(BASE, max_steps=4))
def test_every_mutation_changes_something_where_it_says(case):
    new_df, new_ctx = case.mutated()
    m = case.mutation
    if m.kind == "change":
        assert new_df.steps[m.index] != case.dockerfile.steps[m.index]
        assert case.first_changed() is not None and case.first_changed() <= m.index
    elif m.kind == "insert":
        assert len(new_df.steps) == len(case.dockerfile.steps) + 1
    elif m.kind == "delete":
        assert len(new_df.steps) == len(case.dockerfile.steps) - 1
    else:
        assert new_ctx.as_dict()[m.file] == m.content
    assert "--- Dockerfile after ---" in repr(case)
