"""The one error type of ``refengine compose``: a one-line message, exit status 1
(docker compose's status for its own errors)."""

from __future__ import annotations

from ..errors import RefError


class ComposeError(RefError):
    """A bad Compose file, option or project state; reported as one line."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status
