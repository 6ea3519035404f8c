"""Hostile archives through any engine's ``load`` and ``import`` (issue 9, item 3).

Every case of :mod:`conformance.hostile` (traversal, links out of the
root, devices, whiteouts aimed outside, PATH_MAX depth, long names, a
decompression bomb, a sparse file, members that lie about their size,
duplicate paths, deep JSON) goes through ``load`` (as a one-image docker
archive) and ``import`` (as a rootfs tar). A correct engine either refuses
it, saying why on stderr, with no traceback and a non-zero status, leaving no
image behind; or accepts it with exactly the files docker 20.10 extracts
(read back with ``create`` + ``export``). Either way nothing outside the
engine's store changes (a canary directory the case aims at), and the store
stays usable: a good image still loads and is removed, and so is the
accepted one. The module ends with a build and a run on the same store, and
containers that nest directories past Python's recursion limit and past
PATH_MAX must be removable.

How many lines a refusal takes is not documented by docker (docker 20.10
prints one ``Error ...`` line, podman 4.3 its progress and one line per
transport it tried): the one-line rule is refengine's own and is checked in
``tests/refengine/engine/test_hostile_cli.py``.
"""

from __future__ import annotations

import subprocess
import threading

import pytest

from conformance import hostile
from conformance.hostile import Case

from .conftest import DOCS, IMPORT, LOAD, new_ref

#: Docker < 1.3.2 let a symlink or hard link in an image archive write anywhere on load (and pull).
CVE_2014_6407 = "https://nvd.nist.gov/vuln/detail/CVE-2014-6407"
RM = f"{DOCS}/reference/cli/docker/container/rm/"
RMI = f"{DOCS}/reference/cli/docker/image/rm/"
BUILD = f"{DOCS}/reference/cli/docker/image/build/"

#: An engine call on a small case; the gigabyte cases (bomb, sparse file) get BIG_TIMEOUT.
TIMEOUT = 180.0
BIG_TIMEOUT = 600.0

PARAMS = [pytest.param(case, form, id=f"{form}-{case.name}") for case in hostile.CASES for form in case.forms]


def timeout_of(case: Case) -> float:
    return BIG_TIMEOUT if case.big else TIMEOUT


def exported_tree(engine, ref: str, timeout: float) -> hostile.Tree:
    """The files of *ref* as ``export`` of a container created from it shows them, streamed
    (gigabyte files are never held in memory or on disk); the container is removed."""
    name = engine.create([ref, "/nothing"])
    proc = engine.popen("export", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        tree = hostile.read_tree(proc.stdout)
        status = proc.wait(timeout=30)
        err = proc.stderr.read().decode(errors="replace")
    finally:
        watchdog.cancel()
        proc.stdout.close()
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status == 0, f"{engine.name}: export of a container of {ref} exited {status}: {err[-300:]!r}"
    engine.cli("rm", "-f", name, timeout=120)
    return tree


@pytest.fixture(scope="module")
def runtime_paths(engine_session, tmp_path_factory) -> frozenset[str]:
    """What ``export`` shows that no image holds (docker: .dockerenv, /dev, /etc/hosts, ...):
    the export of a good image less the good image's own files."""
    engine = engine_session
    ref = f"localhost/conformance/cft-{engine.run_id}-hostile-baseline:good"
    archive, expected = hostile.write_good(tmp_path_factory.mktemp("baseline"), ref)
    try:
        engine.cli("load", "-i", str(archive), check=True, timeout=TIMEOUT)
        tree = exported_tree(engine, ref, TIMEOUT)
    finally:
        engine.cli("rmi", "-f", ref, timeout=TIMEOUT)
    missing = sorted(set(expected) - set(tree))
    assert not missing, f"{engine.name}: export of a good image lacks {missing}"
    return frozenset(set(tree) - set(expected))


def no_traceback(engine, result, what: str) -> None:
    assert "Traceback (most recent call last)" not in result.stderr + result.stdout, \
        f"{engine.name}: {what} ended in a traceback:\n{result.stderr[-1500:]}"


def said_why(engine, result, what: str) -> None:
    """A refusal says why on stderr (in how many lines is the engine's own: docker documents none).
    Checked last, after every safety property."""
    assert result.stderr.strip(), f"{engine.name}: {what} exited {result.returncode} without saying why on stderr"


def store_still_usable(engine, tmp_path) -> None:
    """A good image still loads, shows its files and is removed."""
    ref = new_ref(engine, "good")
    archive, _ = hostile.write_good(tmp_path, ref)
    loaded = engine.cli("load", "-i", str(archive), timeout=TIMEOUT)
    assert loaded.ok, f"{engine.name}: after the hostile archive, a good image no longer loads: {loaded.stderr[-400:]!r}"
    assert engine.cli("image", "inspect", ref, timeout=TIMEOUT).ok, f"{engine.name}: the good image is not listed"
    removed = engine.cli("rmi", ref, timeout=TIMEOUT)
    assert removed.ok, f"{engine.name}: rmi of the good image failed after the hostile archive: {removed.stderr[-400:]!r}"


@pytest.mark.spec(CVE_2014_6407, "loading or importing an image never writes outside the engine's store (no link, "
                                 "traversal or whiteout escapes); a layer is refused or unpacked as docker unpacks it, "
                                 "and the store stays usable")
@pytest.mark.spec(LOAD, "docker load loads an image from a tar archive and restores its images and tags (what "
                        "docker 20.10 extracts from each hostile layer, or that it refuses it, is observed)")
@pytest.mark.spec(IMPORT, "docker import creates a filesystem image from the contents of a tarball (what docker "
                          "20.10 extracts from each hostile tarball, or that it refuses it, is observed)")
@pytest.mark.parametrize("case,form", PARAMS)
def test_hostile_archive(engine, tmp_path, runtime_paths, case: Case, form: str):
    canary = hostile.make_canary(tmp_path)
    before = hostile.canary_state(canary)
    ref = new_ref(engine, form)
    work = tmp_path / "work"
    work.mkdir()
    if form == "load":
        archive = hostile.write_load(case, work, canary, ref)
        result = engine.cli("load", "-i", str(archive), timeout=timeout_of(case))
    else:
        archive = hostile.write_import(case, work, canary)
        result = engine.cli("import", str(archive), ref, timeout=timeout_of(case))
    archive.unlink()
    what = f"{form} of the {case.name} archive ({case.attack})"
    no_traceback(engine, result, what)

    if result.ok:
        assert case.docker is not None, \
            f"{engine.name}: accepted {what}; docker 20.10 refuses it. stdout: {result.stdout[-300:]!r}"
        expected = case.docker(canary)
        observed = {path: node for path, node in exported_tree(engine, ref, timeout_of(case)).items()
                    if path not in runtime_paths or path in expected}
        difference = hostile.tree_difference(expected, observed)
        assert not difference, f"{engine.name}: {what} was accepted with other files than docker extracts: " \
                               + "; ".join(difference)
        removed = engine.cli("rmi", ref, timeout=timeout_of(case))
        assert removed.ok, f"{engine.name}: rmi of the image made by {what} failed: {removed.stderr[-400:]!r}"
    else:
        assert not engine.cli("image", "inspect", ref, timeout=TIMEOUT).ok, \
            f"{engine.name}: {what} was refused (exit {result.returncode}) but left the image {ref}"

    after = hostile.canary_state(canary)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"{engine.name}: {what} changed the canary outside the store: {changed}"
    store_still_usable(engine, tmp_path)
    if not result.ok:
        said_why(engine, result, what)


@pytest.mark.spec(RM, "rm removes a stopped container and its filesystem, whatever the container wrote")
@pytest.mark.parametrize("depth", [1100, 2400], ids=["1100-deep", "2400-deep-past-PATH_MAX"])
def test_container_with_deep_directories_is_removed(engine, test_image, depth):
    name = engine.new_name()
    # two chains of depth/2, the second moved to the bottom of the first: each path a call sees
    # stays below PATH_MAX, the tree's deepest path does not
    script = (f'p=/b; i=0; while [ $i -lt {depth // 2} ]; do p=$p/d; i=$((i+1)); done; '
              f'mkdir -p "$p" "/a${{p#/b}}" && mv /a/d "$p/" && echo made > "$p/f"')
    made = engine.run([test_image.base, "sh", "-c", script], name=name, timeout=TIMEOUT)
    assert made.returncode == 0, f"{engine.name}: the container could not nest {depth} directories: {made}"
    removed = engine.cli("rm", name, timeout=TIMEOUT)
    assert removed.ok, f"{engine.name}: rm of a container that nested {depth} directories failed " \
                       f"(exit {removed.returncode}): {removed.stderr[-600:]!r}"
    assert "Traceback" not in removed.stderr
    assert not engine.cli("container", "inspect", name).ok, f"{engine.name}: rm left the container {name}"


@pytest.mark.requires("build")
@pytest.mark.spec(BUILD, "after hostile input the engine still builds, runs and removes images")
def test_store_builds_runs_and_removes_after_the_corpus(engine, test_image, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {test_image.base}\nRUN echo built > /built.txt\n")
    ref = new_ref(engine, "after-corpus")
    built = engine.cli("build", "-t", ref, "--label", engine.label, str(ctx), timeout=TIMEOUT)
    assert built.ok, f"{engine.name}: build after the hostile corpus failed: {built.stderr[-600:]!r}"
    ran = engine.run(["--rm", ref, "cat", "/built.txt"], timeout=TIMEOUT)
    assert ran.returncode == 0 and ran.stdout == "built\n", f"{engine.name}: run of the built image: {ran}"
    removed = engine.cli("rmi", ref, timeout=TIMEOUT)
    assert removed.ok, f"{engine.name}: rmi after the hostile corpus failed: {removed.stderr[-400:]!r}"
