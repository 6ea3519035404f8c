"""Signed validation bundles: ``conformance bundle`` makes one, ``conformance
verify`` accepts it as made and refuses every kind of tampering.

The suites here are a throwaway folder (``$CONFORMANCE_SUITES``), so these
tests do not depend on the project's suites, which change all the time.
"""

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conformance.bundle import (MANIFEST, SIGNATURE, Sources, generate_keypair, load_private_key, load_public_key,
                                make_bundle, read_tar, verify, write_tar)
from conformance.errors import ConformanceError
from conformance.provenance import files_digest, sha256_of, suite_files

PROFILE = 'name = "fake"\nargv = ["true"]\ncapabilities = ["volumes"]\n'
STAMP = "20260101T000000000000Z"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run as `conformance run` leaves it: results JSON, JUnit XML, the
    profile, and the suites it ran."""
    suites = tmp_path / "suites" / "rt"
    suites.mkdir(parents=True)
    (suites / "__init__.py").write_text("")
    (suites / "test_a.py").write_text("def test_a(engine):\n    pass\n")
    profile = tmp_path / "fake.toml"
    profile.write_text(PROFILE)
    reports = tmp_path / "reports"
    reports.mkdir()
    results = {
        "schema": 1, "started": "2026-01-01T00:00:00+00:00", "duration": 1.0, "argv": [],
        "subject": {"kind": "engine", "name": "fake", "version": "fake 1.0", "profile": str(profile),
                    "profile_sha256": sha256_of(profile.read_bytes()), "capabilities": ["volumes"], "deviations": {}},
        "suite": {"version": "0.1.0", "digest": files_digest(suite_files(tmp_path / "suites"))},
        "host": {"kernel": "Linux 6.1.0 #1 SMP", "machine": "x86_64", "python": "3.11.7"},
        "summary": {"passed": 1, "failed": 1},
        "checks": [
            {"id": "rt/test_a.py::test_a", "outcome": "passed", "reason": "", "spec": {"url": "", "text": ""}, "duration": 0.1},
            {"id": "rt/test_a.py::test_b", "outcome": "failed", "reason": "boom", "message": "boom",
             "spec": {"url": "", "text": ""}, "duration": 0.1},
        ],
    }
    (reports / f"engine-fake-{STAMP}.json").write_text(json.dumps(results))
    (reports / f"fake-{STAMP}.xml").write_text('<?xml version="1.0"?><testsuites/>\n')
    return tmp_path


@pytest.fixture
def keys(tmp_path: Path) -> dict:
    generate_keypair(tmp_path / "signer")
    generate_keypair(tmp_path / "other")
    return {"private": tmp_path / "signer", "public": tmp_path / "signer.pub", "other": tmp_path / "other.pub"}


def conformance(*args: str, suites: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONFORMANCE_SUITES": str(suites)}
    return subprocess.run([sys.executable, "-m", "conformance.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def bundle_of(run_dir: Path, keys: dict) -> Path:
    done = conformance("bundle", "--key", keys["private"], "--dir", run_dir / "reports", suites=run_dir / "suites",
                       cwd=run_dir)
    assert done.returncode == 0, done.stderr
    return run_dir / "reports" / f"bundle-engine-fake-{STAMP}.tar.gz"


def refusals(run_dir: Path, bundle: Path, public: Path) -> tuple[int, str]:
    done = conformance("verify", bundle, "--key", public, suites=run_dir / "suites", cwd=run_dir)
    return done.returncode, done.stderr


def rewrite(bundle: Path, **changes: bytes) -> None:
    members, problems = read_tar(bundle)
    assert problems == []
    write_tar({**members, **changes}, bundle)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_refuses_to_overwrite(tmp_path):
    public = generate_keypair(tmp_path / "k")
    assert public == tmp_path / "k.pub" and (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    load_private_key(tmp_path / "k"), load_public_key(public)
    with pytest.raises(ConformanceError, match="exists; not overwriting"):
        generate_keypair(tmp_path / "k")


def test_a_fresh_bundle_holds_everything_and_verifies(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    members, problems = read_tar(bundle)
    assert problems == [] and set(members) == {"results.json", "junit.xml", "report.html", "profile.toml",
                                               "environment.json", "suite.json", MANIFEST, SIGNATURE}
    assert members["profile.toml"].decode() == PROFILE
    environment = json.loads(members["environment.json"])
    assert environment["engine"]["version"] == "fake 1.0" and environment["kernel"] == "Linux 6.1.0 #1 SMP"
    suite = json.loads(members["suite.json"])
    assert suite["files"] == {"rt/__init__.py": sha256_of(b""),
                              "rt/test_a.py": sha256_of(b"def test_a(engine):\n    pass\n")}
    assert b"rt/test_a.py::test_b" in members["report.html"]
    done = conformance("verify", bundle, "--key", keys["public"], suites=run_dir / "suites", cwd=run_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:3] == ["  subject: engine:fake (fake 1.0)", "  kernel: Linux 6.1.0 #1 SMP"]


def test_an_edited_result_is_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    members, _ = read_tar(bundle)
    edited = members["results.json"].replace(b'"outcome": "failed"', b'"outcome": "passed"')
    assert edited != members["results.json"]
    rewrite(bundle, **{"results.json": edited})
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1 and "conformance: refused: results.json: sha256" in stderr and "edited after signing" in stderr


def test_an_edited_result_with_a_rewritten_manifest_is_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    members, _ = read_tar(bundle)
    edited = members["results.json"].replace(b'"outcome": "failed"', b'"outcome": "passed"')
    manifest = json.loads(members[MANIFEST])
    manifest["files"]["results.json"] = sha256_of(edited)
    rewrite(bundle, **{"results.json": edited, MANIFEST: json.dumps(manifest).encode()})
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1 and "signature of MANIFEST.json does not verify with this key" in stderr


def test_a_swapped_profile_is_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    rewrite(bundle, **{"profile.toml": PROFILE.replace('["volumes"]', '["volumes", "swarm"]').encode()})
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1 and "profile.toml: sha256" in stderr and "edited after signing" in stderr


def test_a_signed_bundle_with_another_profile_than_the_run_used_is_refused(run_dir, keys):
    """Even signed by the right key: the results record the profile's sha256."""
    bundle = bundle_of(run_dir, keys)
    members, _ = read_tar(bundle)
    members["profile.toml"] = b'name = "fake"\nargv = ["true"]\n'
    manifest = json.loads(members[MANIFEST])
    manifest["files"]["profile.toml"] = sha256_of(members["profile.toml"])
    members[MANIFEST] = json.dumps(manifest).encode()
    members[SIGNATURE] = base64.b64encode(load_private_key(keys["private"]).sign(members[MANIFEST]))
    problems = verify(members, load_public_key(keys["public"]), installed=suite_files(run_dir / "suites"))
    assert len(problems) == 1 and "profile.toml" in problems[0] and "is not the profile the run used" in problems[0]


def test_a_bundle_signed_with_another_key_is_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    status, stderr = refusals(run_dir, bundle, keys["other"])
    assert status == 1 and "signed with another key" in stderr


def test_suite_files_that_differ_from_the_installed_ones_are_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    (run_dir / "suites" / "rt" / "test_a.py").write_text("def test_a(engine):\n    assert True\n")
    (run_dir / "suites" / "rt" / "test_new.py").write_text("")
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1
    assert "the suite files differ from the installed suites" in stderr
    assert "changed: rt/test_a.py" in stderr and "only installed: rt/test_new.py" in stderr


def test_unlisted_and_non_regular_members_are_refused(run_dir, keys):
    bundle = bundle_of(run_dir, keys)
    rewrite(bundle, **{"extra.txt": b"not signed"})
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1 and "extra.txt: not in the signed manifest" in stderr
    members, _ = read_tar(bundle)
    with tarfile.open(bundle, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo("suite.json.link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    status, stderr = refusals(run_dir, bundle, keys["public"])
    assert status == 1 and "suite.json.link: not a regular file" in stderr


def test_not_a_bundle_is_exit_2(run_dir, keys):
    (run_dir / "junk.tar.gz").write_bytes(b"not a tarball")
    status, stderr = refusals(run_dir, run_dir / "junk.tar.gz", keys["public"])
    assert status == 2 and stderr.startswith("conformance: cannot read bundle") and "Traceback" not in stderr
    status, stderr = refusals(run_dir, run_dir / "junk.tar.gz", keys["private"])
    assert status == 2 and stderr.startswith("conformance: cannot read public key")


def test_bundle_refuses_a_profile_or_suites_that_are_not_what_the_run_used(run_dir, keys):
    results = run_dir / "reports" / f"engine-fake-{STAMP}.json"
    sources = Sources(results, run_dir / "reports" / f"fake-{STAMP}.xml", run_dir / "fake.toml")
    key = load_private_key(keys["private"])
    (run_dir / "other.toml").write_text('name = "fake"\nargv = ["false"]\n')
    with pytest.raises(ConformanceError, match="is not the profile the run used"):
        make_bundle(Sources(results, sources.junit, run_dir / "other.toml"), key, run_dir / "b.tar.gz",
                    suites_dir=run_dir / "suites")
    (run_dir / "suites" / "rt" / "test_a.py").write_text("# changed after the run\n")
    with pytest.raises(ConformanceError, match="changed since the run"):
        make_bundle(sources, key, run_dir / "b.tar.gz", suites_dir=run_dir / "suites")
    assert not (run_dir / "b.tar.gz").exists()
