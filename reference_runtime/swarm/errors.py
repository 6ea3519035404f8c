"""The swarm layer's error types: :class:`SwarmError` and the few kinds callers
tell apart.

An RPC error travels as ``{"code": ..., "message": ...}``; :class:`Code` lists
the codes this package itself answers (gRPC's names, which swarmkit's errors
carry too), and handlers may add their own, e.g. ``NotLeader``.
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import RefError


class SwarmError(RefError):
    """A swarm operation failed; the message is fit for the user."""


class Code(StrEnum):
    """Error codes of the RPC layer; being strings, they compare equal to a peer's code."""

    INTERNAL = "Internal"  # a handler raised something other than RpcError
    UNAVAILABLE = "Unavailable"  # no connection, or none in time: try again or elsewhere
    UNIMPLEMENTED = "Unimplemented"  # no handler for the method
    INVALID_ARGUMENT = "InvalidArgument"  # a request of the wrong shape or content
    UNAUTHENTICATED = "Unauthenticated"  # the method needs a node certificate
    PERMISSION_DENIED = "PermissionDenied"  # the peer's role may not call it
    CANCELLED = "Cancelled"  # the caller gave up on the call
    NOT_LEADER = "NotLeader"  # a manager that is not the Raft leader


class RpcError(SwarmError):
    """An error answer of a remote call (or the failure to get any answer)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message

    def __reduce__(self):  # keep it picklable with its two arguments
        return type(self), (self.code, self.message)

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ProtocolError(SwarmError):
    """The peer broke the frame format (length, UTF-8, JSON or message shape)."""


class CertificateError(SwarmError):
    """A certificate, key or signing request that the swarm CA refuses."""
