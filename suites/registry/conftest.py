"""Shared helpers of the registry suite: where the documented behaviour is
written down, and small builders of unique content."""

from __future__ import annotations

import os
import random

from conformance.registry_client import describe  # noqa: F401  (re-exported for the checks)

SPEC = "https://github.com/opencontainers/distribution-spec/blob/main/spec.md"
PULL_MANIFESTS = f"{SPEC}#pulling-manifests"
PULL_BLOBS = f"{SPEC}#pulling-blobs"
EXISTS = f"{SPEC}#checking-if-content-exists-in-the-registry"
POST_PUT = f"{SPEC}#post-then-put"
SINGLE_POST = f"{SPEC}#single-post"
CHUNKED = f"{SPEC}#pushing-a-blob-in-chunks"
MOUNT = f"{SPEC}#mounting-a-blob-from-another-repository"
PUSH_MANIFESTS = f"{SPEC}#pushing-manifests"
PUSH_WITH_SUBJECT = f"{SPEC}#pushing-manifests-with-subject"
LIST_TAGS = f"{SPEC}#listing-tags"
REFERRERS = f"{SPEC}#listing-referrers"
DELETE_TAGS = f"{SPEC}#deleting-tags"
DELETE_MANIFESTS = f"{SPEC}#deleting-manifests"
DELETE_BLOBS = f"{SPEC}#deleting-blobs"
ERROR_CODES = f"{SPEC}#error-codes"
NAMES = f"{SPEC}#pulling-manifests"  # where the <name> and tag grammars are given
DETERMINING_SUPPORT = f"{SPEC}#determining-support"
LEGACY_HEADERS = f"{SPEC}#legacy-docker-support-http-headers"
CONTENT_NEGOTIATION = "https://github.com/opencontainers/distribution-spec/blob/main/content-negotiation.md"

DIST = "https://github.com/distribution/distribution/blob/release/2.8/docs/spec/api.md"
API_VERSION_CHECK = f"{DIST}#api-version-check"
FETCH_BLOB_PART = f"{DIST}#fetch-blob-part"
UPLOAD_PROGRESS = f"{DIST}#upload-progress"
CANCEL_UPLOAD = f"{DIST}#canceling-an-upload"
STREAMED = f"{DIST}#patch-blob-upload"
CATALOG = f"{DIST}#listing-repositories"
PAGINATION = f"{DIST}#pagination"
DIST_ERRORS = f"{DIST}#errors-2"
TOKEN_AUTH = "https://github.com/distribution/distribution/blob/release/2.8/docs/spec/auth/token.md"
TOKEN_SCOPE = "https://github.com/distribution/distribution/blob/release/2.8/docs/spec/auth/scope.md"
TOKEN_JWT = "https://github.com/distribution/distribution/blob/release/2.8/docs/spec/auth/jwt.md"
CONFIGURATION = "https://github.com/distribution/distribution/blob/release/2.8/docs/configuration.md"
HTPASSWD = f"{CONFIGURATION}#htpasswd"
TLS = f"{CONFIGURATION}#tls"
GC = "https://github.com/distribution/distribution/blob/release/2.8/docs/garbage-collection.md"
DOCKER_INSECURE = "https://docs.docker.com/engine/security/certificates/"
IMAGE_INDEX = "https://github.com/opencontainers/image-spec/blob/main/image-index.md"


def blob(size: int, seed: str = "") -> bytes:
    """``size`` bytes unique to ``seed`` (and to this process run)."""
    return random.Random(f"{seed}/{RUN_SALT}").randbytes(size)


RUN_SALT = os.urandom(8).hex()
