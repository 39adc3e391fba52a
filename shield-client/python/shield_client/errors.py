"""Exceptions of the client."""

from __future__ import annotations

from typing import Optional

from .types import Verdict


class ShieldError(Exception):
    """Base class of everything this package raises."""


class Blocked(ShieldError):
    """A scan or tool check said no; ``verdict`` says why."""

    def __init__(self, verdict: Verdict, what: str = "") -> None:
        self.verdict = verdict
        self.what = what
        msg = f"blocked by shieldd: {verdict.summary()}"
        if what:
            msg = f"{what} {msg}"
        super().__init__(msg)


class ApprovalRequired(Blocked):
    """A tool call needs a person's approval and no approver said yes."""


class ShieldUnavailable(Blocked):
    """shieldd could not be asked (no socket, refused, timed out, or it
    answered with an error) and the client is fail-closed. It is a
    ``Blocked`` so that one ``except Blocked`` handles both."""

    def __init__(self, reason: str, verdict: Optional[Verdict] = None) -> None:
        self.reason = reason
        super().__init__(verdict or Verdict.unavailable_block(reason))
        self.args = (f"shieldd unavailable: {reason}",)

    def __str__(self) -> str:
        return f"shieldd unavailable: {self.reason}"


class ProtocolError(ShieldError):
    """shieldd answered a request with ``ok: false``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
