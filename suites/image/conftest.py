"""Shared helpers of the image suite: docs addresses, save/inspect wrappers,
and one layered image built per module for the read-only digest checks."""

from __future__ import annotations

import json
import secrets

import pytest

from conformance.suite_support import BUILD_LABEL, DOCS, normal_id, remove_built_images

from .archive import members

IMAGE_SPEC = "https://github.com/opencontainers/image-spec/blob/v1.1.0"
CONFIG_SPEC = f"{IMAGE_SPEC}/config.md"
LAYOUT_SPEC = f"{IMAGE_SPEC}/image-layout.md"
DESCRIPTOR_SPEC = f"{IMAGE_SPEC}/descriptor.md"
SAVE = f"{DOCS}/reference/cli/docker/image/save/"
LOAD = f"{DOCS}/reference/cli/docker/image/load/"
EXPORT = f"{DOCS}/reference/cli/docker/container/export/"
IMPORT = f"{DOCS}/reference/cli/docker/image/import/"
COMMIT = f"{DOCS}/reference/cli/docker/container/commit/"
TAG = f"{DOCS}/reference/cli/docker/image/tag/"

TIMEOUT = 300.0


def inspect_image(engine, ref: str) -> dict:
    result = engine.query("image", "inspect", ref, timeout=TIMEOUT)
    assert result.ok, f"{engine.name}: image inspect {ref} failed\n{result}"
    data = json.loads(result.stdout)
    return data[0] if isinstance(data, list) else data


def image_id(engine, ref: str) -> str:
    return normal_id(inspect_image(engine, ref)["Id"])


def diff_ids(engine, ref: str) -> list[str]:
    """What the engine exposes as the image's layers: inspect's RootFS.Layers."""
    return list(inspect_image(engine, ref)["RootFS"]["Layers"])


def saved(engine, ref: str) -> dict[str, bytes]:
    """The members of ``save REF``'s archive."""
    result = engine.query("save", ref, text=False, timeout=TIMEOUT)
    assert result.ok, f"{engine.name}: save {ref} failed: {result.stderr[-500:]!r}"
    return members(result.stdout)


def new_ref(engine, tag: str = "t") -> str:
    """A fresh reference, removed after the check."""
    return engine.track_image(f"localhost/conformance/{engine.new_name('img')}:{tag}")


@pytest.fixture(scope="module")
def layered(engine_session, test_image, tmp_path_factory):
    """An image of three layers (base, RUN, COPY), built once per module and
    removed with every image its build left."""
    engine = engine_session
    nonce = secrets.token_hex(6)
    ctx = tmp_path_factory.mktemp("layered")
    (ctx / "payload.txt").write_text(f"payload {nonce}\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {test_image.base}\nLABEL {BUILD_LABEL}={nonce}\n"
        f"RUN head -c 64 /dev/urandom > /run.bin\nCOPY payload.txt /payload.txt\n")
    ref = f"localhost/conformance/cft-{engine.run_id}-layered:{nonce}"
    result = engine.cli("build", "-t", ref, "--label", engine.label, "--force-rm", str(ctx), timeout=TIMEOUT)
    try:
        assert result.ok, f"{engine.name}: could not build the layered image\n{result}"
        yield ref
    finally:
        remove_built_images(engine, nonce, attempts=4)
