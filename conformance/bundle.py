"""A signed validation bundle: one run's results with what it takes to trust
them, as one tarball that ``conformance verify`` checks.

Layout (a gzip'd tar, flat)::

    results.json       the run's results (one subject)
    junit.xml          the run's JUnit XML
    report.html        the HTML matrix of the run
    profile.toml       the profile the run used (its sha256 is in results.json)
    environment.json   engine name, version and profile; kernel of the run's host
    suite.json         the suites' version and each suite file's sha256
    MANIFEST.json      sha256 of every file above, and the signing key's fingerprint
    MANIFEST.json.sig  Ed25519 signature of MANIFEST.json (base64)

Trust flows from the key: the signature covers the manifest, the manifest
covers every file, and ``verify`` also compares ``suite.json`` with the suites
installed where it runs, and the profile and suites with what the results
record the run used. A bundle is refused when any of that does not hold.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import SUITES_DIR, __version__
from .errors import ConformanceError
from .provenance import files_digest, host, sha256_of, suite_files
from .results import merge, parse_run

FORMAT = "conformance-bundle/1"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.json.sig"
CONTENTS = ("results.json", "junit.xml", "report.html", "profile.toml", "environment.json", "suite.json")


# Keys: Ed25519, PEM (PKCS#8 private, SubjectPublicKeyInfo public).

def generate_keypair(private_path: Path) -> Path:
    """Write a new private key to ``private_path`` (mode 0600) and its public
    key beside it as ``<name>.pub``; refuses to overwrite either."""
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise ConformanceError(f"{path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConformanceError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConformanceError(f"{path} is not an Ed25519 private key (make one with `conformance keygen`)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConformanceError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConformanceError(f"{path} is not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    return sha256_of(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


# Making a bundle.

@dataclass(frozen=True)
class Sources:
    """The files a bundle is made of, found from a results file."""

    results: Path
    junit: Path
    profile: Path


def find_sources(results: Path, junit: Path | None = None, profile: Path | None = None) -> Sources:
    """The JUnit XML written beside the results (same time stamp) and the
    profile the results name, unless given."""
    data = _read_results(results)
    if junit is None:
        stamp = results.stem.rsplit("-", 1)[-1]
        found = sorted(results.parent.glob(f"*-{stamp}.xml"))
        if len(found) != 1:
            raise ConformanceError(f"no single JUnit XML beside {results} with its stamp {stamp} "
                                   f"(found {len(found)}); name it with --junit")
        junit = found[0]
    if profile is None:
        named = data["subject"].get("profile") or ""
        if not named or not Path(named).is_file():
            raise ConformanceError(f"the profile the run used ({named or 'not recorded'}) is not there; "
                                   "name it with --profile")
        profile = Path(named)
    return Sources(results, junit, profile)


def make_bundle(sources: Sources, key: Ed25519PrivateKey, out: Path, *, suites_dir: Path = SUITES_DIR) -> Path:
    """Write the signed bundle. Refuses a profile or suites that differ from
    what the results record the run used (they would vouch for another run)."""
    from .report import render_html

    results_bytes = sources.results.read_bytes()
    data = _read_results(sources.results)
    run = parse_run(data, source=str(sources.results))
    profile_bytes = sources.profile.read_bytes()
    recorded = data["subject"].get("profile_sha256", "")
    if recorded and recorded != sha256_of(profile_bytes):
        raise ConformanceError(f"{sources.profile} is not the profile the run used (sha256 {sha256_of(profile_bytes)}; "
                               f"the results record {recorded})")
    files = suite_files(suites_dir)
    suite = {"version": __version__, "digest": files_digest(files), "files": files}
    ran_with = data.get("suite", {}).get("digest", "")
    if ran_with and ran_with != suite["digest"]:
        raise ConformanceError(f"the suites in {suites_dir} changed since the run (the results record {ran_with}, "
                               f"the suites are now {suite['digest']}); run again before bundling")
    environment = {
        "engine" if run.kind == "engine" else run.kind: {"name": run.name, "version": run.version,
                                                          "profile": data["subject"].get("profile", "")},
        "kernel": data.get("host", {}).get("kernel", ""),
        "run_host": data.get("host", {}),
        "bundled_on": host(),
        "conformance": __version__,
    }
    members = {
        "results.json": results_bytes,
        "junit.xml": sources.junit.read_bytes(),
        "report.html": render_html(merge([run])).encode(),
        "profile.toml": profile_bytes,
        "environment.json": _json(environment),
        "suite.json": _json(suite),
    }
    manifest = _json({
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "subject": run.column,
        "key": fingerprint(key.public_key()),
        "files": {name: sha256_of(content) for name, content in members.items()},
    })
    members[MANIFEST] = manifest
    members[SIGNATURE] = base64.b64encode(key.sign(manifest)) + b"\n"
    write_tar(members, out)
    return out


def write_tar(members: dict[str, bytes], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(content))


# Verifying a bundle.

def read_tar(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The regular files of a bundle by name, and what is wrong with its
    structure (links, paths outside it, duplicates). Nothing is extracted."""
    members: dict[str, bytes] = {}
    problems: list[str] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for info in tar.getmembers():
                if not info.isfile():
                    problems.append(f"{info.name}: not a regular file")
                elif info.name.startswith("/") or ".." in Path(info.name).parts or "/" in info.name:
                    problems.append(f"{info.name}: not a bundle file name")
                elif info.name in members:
                    problems.append(f"{info.name}: appears twice")
                else:
                    members[info.name] = tar.extractfile(info).read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ConformanceError(f"cannot read bundle {path}: {exc}") from None
    return members, problems


def verify(members: dict[str, bytes], key: Ed25519PublicKey, *, installed: dict[str, str]) -> list[str]:
    """Every reason to refuse a bundle (empty: it is intact, signed by
    ``key``, and made with the suites ``installed`` here)."""
    if MANIFEST not in members or SIGNATURE not in members:
        return [f"no {MANIFEST} or {SIGNATURE}: not a signed bundle"]
    try:
        key.verify(base64.b64decode(members[SIGNATURE].strip(), validate=True), members[MANIFEST])
    except (InvalidSignature, ValueError):
        return [f"the signature of {MANIFEST} does not verify with this key (key {fingerprint(key)}): "
                "signed with another key, or the manifest was edited"]
    try:
        manifest = json.loads(members[MANIFEST])
        listed: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return [f"{MANIFEST} is signed but unreadable"]
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"unknown bundle format {manifest.get('format')!r} (this is {FORMAT})")
    for name in CONTENTS:
        if name not in listed:
            problems.append(f"{name}: not in the manifest")
    for name, digest in sorted(listed.items()):
        if name not in members:
            problems.append(f"{name}: listed in the manifest but missing")
        elif sha256_of(members[name]) != digest:
            problems.append(f"{name}: sha256 {sha256_of(members[name])} differs from the signed manifest's {digest} "
                            "(edited after signing)")
    for name in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        problems.append(f"{name}: not in the signed manifest")
    if problems:
        return problems
    return _consistency(members, installed)


def _consistency(members: dict[str, bytes], installed: dict[str, str]) -> list[str]:
    """What the signed files say must agree with each other and with the
    suites installed here."""
    problems = []
    try:
        results = json.loads(members["results.json"])
        suite = json.loads(members["suite.json"])
        bundled: dict[str, str] = suite["files"]
        parse_run(results, source="results.json")
    except (ValueError, KeyError, TypeError, ConformanceError) as exc:
        return [f"unreadable results.json or suite.json: {exc}"]
    recorded = results.get("subject", {}).get("profile_sha256", "")
    if recorded and recorded != sha256_of(members["profile.toml"]):
        problems.append(f"profile.toml (sha256 {sha256_of(members['profile.toml'])}) is not the profile the run "
                        f"used ({recorded})")
    ran_with = results.get("suite", {}).get("digest", "")
    if ran_with and ran_with != files_digest(bundled):
        problems.append(f"suite.json ({files_digest(bundled)}) is not the suites the run used ({ran_with})")
    changed = sorted(p for p in bundled.keys() & installed.keys() if bundled[p] != installed[p])
    missing = sorted(bundled.keys() - installed.keys())
    extra = sorted(installed.keys() - bundled.keys())
    if changed or missing or extra:
        parts = [f"{label}: {', '.join(paths[:10])}{' ...' if len(paths) > 10 else ''}"
                 for label, paths in (("changed", changed), ("not installed", missing), ("only installed", extra))
                 if paths]
        problems.append(f"the suite files differ from the installed suites (version {suite.get('version')} in the "
                        f"bundle, {__version__} installed); " + "; ".join(parts))
    return problems


def summary(members: dict[str, bytes]) -> list[str]:
    """What a verified bundle vouches for, for people."""
    results = json.loads(members["results.json"])
    environment = json.loads(members["environment.json"])
    suite = json.loads(members["suite.json"])
    manifest = json.loads(members[MANIFEST])
    subject = results["subject"]
    counts = ", ".join(f"{n} {o}" for o, n in sorted(results.get("summary", {}).items()))
    return [
        f"subject: {subject['kind']}:{subject['name']} ({subject.get('version', '')})",
        f"kernel: {environment.get('kernel') or 'not recorded'}",
        f"suites: version {suite['version']}, {len(suite['files'])} files, {suite['digest']}",
        f"run started: {results.get('started', '')}; checks: {counts}",
        f"signed by key {manifest['key']} on {manifest['created']}",
    ]


def _read_results(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConformanceError(f"cannot read results file {path}: {exc}") from None
    parse_run(data, source=str(path))
    return data


def _json(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
