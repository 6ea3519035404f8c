"""The builder's error type (the build layer of reference_runtime.errors)."""

from ..errors import RefError


class BuildError(RefError):
    """A Dockerfile, context or step the builder cannot use; the message is one line
    and names the Dockerfile line where there is one. ``refengine build`` exits 1."""
