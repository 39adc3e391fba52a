"""Python client of shieldd's scan API.

    from shield_client import Shield
    shield = Shield()                      # finds $SHIELD_SOCKET
    v = shield.scan_input(document)
    if v.blocked: ...
    text = v.text_or_redacted(document)

Integrations live in submodules that import their package lazily:
``shield_client.openai``, ``shield_client.anthropic``,
``shield_client.langchain``, ``shield_client.mcp``.
"""

from .client import Approver, Shield, ShieldStream, ShieldUnavailableWarning
from .errors import ApprovalRequired, Blocked, ProtocolError, ShieldError, ShieldUnavailable
from .types import (
    ALLOW,
    BLOCK,
    INBOUND,
    NEEDS_APPROVAL,
    OUTBOUND,
    REDACT,
    Finding,
    Verdict,
)

__all__ = [
    "ALLOW",
    "BLOCK",
    "INBOUND",
    "NEEDS_APPROVAL",
    "OUTBOUND",
    "REDACT",
    "ApprovalRequired",
    "Approver",
    "Blocked",
    "Finding",
    "ProtocolError",
    "Shield",
    "ShieldError",
    "ShieldStream",
    "ShieldUnavailable",
    "ShieldUnavailableWarning",
    "Verdict",
]

__version__ = "0.1.0"
