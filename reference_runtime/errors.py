"""The reference implementation's error types: one per layer.

Every layer raises its own subclass of :class:`RefError` with a one-line,
user-facing message; the CLIs map them to exit statuses in one place
(refengine: 125 for errors of the engine itself, like docker).
"""


class RefError(Exception):
    """Bad input or a failed operation, with a message fit for the user."""


class StoreError(RefError):
    """The image store rejected input (a ref, digest, manifest, tar) or lost an object."""


class ContainerError(RefError):
    """The runtime could not create, start, signal or remove a container."""


class RegistryError(RefError):
    """refregistry's configuration or storage is unusable."""
