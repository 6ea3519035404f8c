"""Hypothesis strategies for build-cache properties: Dockerfiles from a small
grammar, build contexts, and single mutations of either.

Every value is immutable and renders to plain text, so a failing example
shrinks to a short Dockerfile that is printed as it was built. Each RUN step
writes a *proof* (fresh random bytes) to ``/tmp/proof.<step>``, which is how a
check sees whether the step ran again (see :mod:`conformance.cachecheck`).

>>> from hypothesis import given
>>> @given(cache_cases("localhost/conformance/busybox:base"))   # doctest: +SKIP
... def test_cache(case): ...
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import strategies as st

from .cachecheck import first_changed_step
from .errors import ConformanceError

#: Where proof-writing RUN steps put their bytes; /tmp is writable by any USER.
PROOF_DIR = "tmp"
PROOF_PREFIX = "proof."


def proof_command(name: str) -> str:
    """Shell that writes 32 fresh random bytes' sha256 to the proof file ``name``."""
    return f"head -c 32 /dev/urandom | sha256sum > /{PROOF_DIR}/{PROOF_PREFIX}{name}"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction. ``sources`` are the context files a COPY/ADD
    reads; a RUN with ``proof`` set also writes a proof named after its step."""

    keyword: str
    args: str
    sources: tuple[str, ...] = ()
    proof: bool = False

    def render(self, index: int) -> str:
        if self.proof:
            return f"RUN {self.args} && {proof_command(str(index))}"
        return f"{self.keyword} {self.args}"


@dataclass(frozen=True)
class Dockerfile:
    """One stage: ``FROM base`` and its steps. ``preamble`` steps (e.g. a label
    that makes the cache of one check private) are rendered first and never mutated."""

    base: str
    steps: tuple[Instruction, ...]
    preamble: tuple[str, ...] = ()

    def step_texts(self) -> list[str]:
        n = len(self.preamble)
        return [*self.preamble, *(s.render(n + i) for i, s in enumerate(self.steps))]

    def render(self) -> str:
        return "\n".join([f"FROM {self.base}", *self.step_texts()]) + "\n"

    def proof_of_step(self) -> dict[int, str]:
        """Step index (preamble included) -> the proof file name it writes."""
        n = len(self.preamble)
        return {n + i: PROOF_PREFIX + str(n + i) for i, s in enumerate(self.steps) if s.proof}

    def sources_of_step(self) -> list[tuple[str, ...]]:
        return [()] * len(self.preamble) + [s.sources for s in self.steps]

    def with_preamble(self, *lines: str) -> "Dockerfile":
        return replace(self, preamble=tuple(lines))


@dataclass(frozen=True)
class BuildContext:
    """The files of a build context (name -> content), written beside the Dockerfile."""

    files: tuple[tuple[str, bytes], ...]

    def as_dict(self) -> dict[str, bytes]:
        return dict(self.files)

    def write(self, directory: Path, dockerfile: Dockerfile) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        # Unchanged files are left alone: their mtime must not be what differs.
        for name, data in self.files:
            path = directory / name
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
        (directory / "Dockerfile").write_text(dockerfile.render())
        return directory


@dataclass(frozen=True)
class Mutation:
    """One change between two builds: a step replaced, inserted or removed, or a
    context file's content changed."""

    kind: str  # "change" | "insert" | "delete" | "content"
    index: int = 0
    instruction: Instruction | None = None
    file: str = ""
    content: bytes = b""

    def apply(self, dockerfile: Dockerfile, context: BuildContext) -> tuple[Dockerfile, BuildContext]:
        steps = list(dockerfile.steps)
        if self.kind == "change":
            steps[self.index] = self.instruction
        elif self.kind == "insert":
            steps.insert(self.index, self.instruction)
        elif self.kind == "delete":
            del steps[self.index]
        elif self.kind == "content":
            files = dict(context.files)
            files[self.file] = self.content
            return dockerfile, BuildContext(tuple(sorted(files.items())))
        else:
            raise ConformanceError(f"unknown mutation kind {self.kind!r}; use change, insert, delete or content")
        return replace(dockerfile, steps=tuple(steps)), context

    def describe(self) -> str:
        if self.kind == "content":
            return f"content of {self.file} -> {self.content!r}"
        if self.kind == "delete":
            return f"delete step {self.index} of the generated steps"
        return f"{self.kind} step {self.index} of the generated steps: {self.instruction.keyword} {self.instruction.args}"


@dataclass(frozen=True)
class CacheCase:
    """A build, one mutation, and the step from which the rebuild must miss."""

    dockerfile: Dockerfile
    context: BuildContext
    mutation: Mutation

    def mutated(self) -> tuple[Dockerfile, BuildContext]:
        return self.mutation.apply(self.dockerfile, self.context)

    def first_changed(self, preamble: tuple[str, ...] = ()) -> int | None:
        """Index (preamble included) of the first step the rebuild must run again."""
        old_df = self.dockerfile.with_preamble(*preamble)
        new_df, new_ctx = self.mutated()
        new_df = new_df.with_preamble(*preamble)
        old_files, new_files = self.context.as_dict(), new_ctx.as_dict()
        changed = {n for n in new_files if old_files.get(n) != new_files[n]}
        content = [bool(changed & set(srcs)) for srcs in new_df.sources_of_step()]
        return first_changed_step(old_df.step_texts(), new_df.step_texts(), content)

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        new_df, new_ctx = self.mutated()
        return (f"CacheCase(\n--- Dockerfile ---\n{self.dockerfile.render()}--- context ---\n"
                f"{self.context.as_dict()!r}\n--- mutation: {self.mutation.describe()} ---\n"
                f"--- Dockerfile after ---\n{new_df.render()})")


# -- strategies --------------------------------------------------------------

_word = st.text(alphabet="abcdefghij", min_size=1, max_size=3)
FILE_NAMES = ("f0", "f1", "f2")
#: Text, not bytes: ADD must never mistake a source for an archive to unpack.
_content = st.text(alphabet="xyz\n", min_size=1, max_size=12).map(str.encode)


def contexts() -> st.SearchStrategy[BuildContext]:
    """One to three small files named f0, f1, f2."""
    return st.lists(_content, min_size=1, max_size=len(FILE_NAMES)).map(
        lambda blobs: BuildContext(tuple((FILE_NAMES[i], b) for i, b in enumerate(blobs))))


def instructions(files: tuple[str, ...] = ("f0",)) -> st.SearchStrategy[Instruction]:
    """One instruction of the grammar; COPY/ADD read one of ``files``."""
    if not files:
        raise ConformanceError("instructions(files): give at least one context file name for COPY/ADD")
    src = st.sampled_from(files)
    return st.one_of(
        st.builds(lambda k, v: Instruction("LABEL", f"k{k}={v}"), st.integers(0, 2), _word),
        st.builds(lambda k, v: Instruction("ENV", f"E{k}={v}"), st.integers(0, 2), _word),
        st.builds(lambda w: Instruction("RUN", f"echo {w} >/dev/null", proof=True), _word),
        st.builds(lambda n: Instruction("WORKDIR", f"/w{n}"), st.integers(0, 2)),
        st.builds(lambda w: Instruction("CMD", f'["echo", "{w}"]'), _word),
        st.builds(lambda w: Instruction("ENTRYPOINT", f'["echo", "{w}"]'), _word),
        st.builds(lambda p: Instruction("EXPOSE", str(p)), st.integers(80, 83)),
        st.builds(lambda u: Instruction("USER", u), st.sampled_from(["root", "nobody"])),
        st.builds(lambda s: Instruction("STOPSIGNAL", s), st.sampled_from(["SIGINT", "SIGTERM", "SIGUSR1"])),
        st.builds(lambda kw, f, d: Instruction(kw, f"{f} /c{d}/{f}", sources=(f,)),
                  st.sampled_from(["COPY", "ADD"]), src, st.integers(0, 1)),
    )


def dockerfiles(base: str, files: tuple[str, ...] = ("f0",), max_steps: int = 6) -> st.SearchStrategy[Dockerfile]:
    """``FROM base`` and 1..max_steps instructions of the grammar."""
    return st.lists(instructions(files), min_size=1, max_size=max_steps).map(
        lambda steps: Dockerfile(base, tuple(steps)))


def mutations(dockerfile: Dockerfile, context: BuildContext) -> st.SearchStrategy[Mutation]:
    """One change to ``dockerfile`` or ``context``."""
    files = tuple(n for n, _ in context.files)
    n = len(dockerfile.steps)
    options = [
        st.integers(0, n - 1).flatmap(lambda i: instructions(files).filter(
            lambda ins: ins != dockerfile.steps[i]).map(lambda ins: Mutation("change", i, ins))),
        st.builds(lambda i, ins: Mutation("insert", i, ins), st.integers(0, n), instructions(files)),
        st.builds(lambda name, data: Mutation("content", file=name, content=data),
                  st.sampled_from(files), _content),
    ]
    if n > 1:
        options.append(st.builds(lambda i: Mutation("delete", i), st.integers(0, n - 1)))
    return st.one_of(options)


def cache_cases(base: str, max_steps: int = 6) -> st.SearchStrategy[CacheCase]:
    """A context, a Dockerfile over it, and one mutation of either."""
    def for_context(ctx: BuildContext):
        names = tuple(n for n, _ in ctx.files)
        return dockerfiles(base, names, max_steps).flatmap(
            lambda df: mutations(df, ctx).map(lambda m: CacheCase(df, ctx, m)))
    return contexts().flatmap(for_context)
