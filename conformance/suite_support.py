"""What several suites share, in one place: the documentation addresses their
``spec`` markers cite, the label that marks what a suite builds and the
cleanup of images by that label, and image-ID normalisation.

Engine objects a check creates through :class:`conformance.engine.Engine` are
labelled with the run's label and swept by the engine fixture; images that a
``docker build`` leaves (intermediate and dangling ones included) carry
:data:`BUILD_LABEL` with a nonce instead, and :func:`remove_built_images`
removes them.
"""

from __future__ import annotations

DOCS = "https://docs.docker.com"
#: docker's CLI reference (``{CLI_DOCS}/container/run/``...).
CLI_DOCS = f"{DOCS}/reference/cli/docker"
ENGINE_DOCS = f"{DOCS}/engine"

#: The label a suite's Dockerfiles set (``LABEL io.conformance.build=<nonce>``).
BUILD_LABEL = "io.conformance.build"


def normal_id(image_id: str) -> str:
    """An image ID as ``sha256:<hex>``, however the engine printed it. Pure.

    >>> normal_id("abc"), normal_id("sha256:abc")
    ('sha256:abc', 'sha256:abc')
    """
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def remove_built_images(engine, nonce: str, *, attempts: int = 6) -> list[str]:
    """Remove every image labelled ``BUILD_LABEL=nonce`` (tagged, dangling, intermediate),
    children first: an image with children cannot go before them. Returns what is left."""
    remaining: list[str] = []
    for _ in range(attempts):
        listed = engine.cli("images", "-a", "-q", "--no-trunc", "--filter", f"label={BUILD_LABEL}={nonce}",
                            timeout=60)
        remaining = sorted(set(listed.stdout.split())) if listed.ok else []
        if not remaining:
            return []
        engine.cli("rmi", "-f", *remaining, timeout=120)
    return remaining
