"""The wire types of the scan API, mirroring `shield-client/src/wire.rs`
(SPEC.md sections 4 and 5) field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

try:  # Python 3.8+ has Literal; kept as plain str at run time.
    from typing import Literal
except ImportError:  # pragma: no cover
    Literal = None  # type: ignore[assignment]

#: One of ``allow``, ``redact``, ``needs_approval``, ``block`` (wire.rs ``Action``).
Action = Literal["allow", "redact", "needs_approval", "block"]
#: One of ``inbound``, ``outbound`` (wire.rs ``Direction``).
Direction = Literal["inbound", "outbound"]
#: One of ``injection``, ``pii``, ``secret``, ``exfiltration``, ``tool_policy``.
FindingKind = Literal["injection", "pii", "secret", "exfiltration", "tool_policy"]

ALLOW = "allow"
REDACT = "redact"
NEEDS_APPROVAL = "needs_approval"
BLOCK = "block"
INBOUND = "inbound"
OUTBOUND = "outbound"

#: Finding type used by this client when shieldd could not be asked.
UNAVAILABLE_TYPE = "shield_unavailable"


@dataclass(frozen=True)
class Finding:
    """One thing the scanner or the tool policy found."""

    kind: str
    """Family: injection, pii, secret, exfiltration or tool_policy."""
    type: str
    """Specific type, e.g. ``direct_injection``, ``ssn``, ``credit_card``."""
    start: int = 0
    """Byte offset into the original UTF-8 text (inclusive)."""
    end: int = 0
    """Byte offset into the original UTF-8 text (exclusive)."""
    score: float = 0.0
    """Confidence in [0, 1]."""
    detail: str = ""
    """Human-readable explanation; never the found value itself."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Finding":
        """Build from the wire JSON object."""
        return cls(
            kind=str(d.get("kind", "")),
            type=str(d.get("type", "")),
            start=int(d.get("start", 0)),
            end=int(d.get("end", 0)),
            score=float(d.get("score", 0.0)),
            detail=str(d.get("detail", "") or ""),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The wire JSON object (``detail`` omitted when empty, as in wire.rs)."""
        d: Dict[str, Any] = {
            "kind": self.kind,
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }
        if self.detail:
            d["detail"] = self.detail
        return d


@dataclass(frozen=True)
class Verdict:
    """The answer to a scan or a tool-call check."""

    action: str
    """allow, redact, needs_approval or block."""
    blocked: bool
    """True when ``action`` is ``block``."""
    findings: List[Finding] = field(default_factory=list)
    """Everything found, in order of ``start``."""
    redacted: Optional[str] = None
    """The text with redactions applied, present when ``action`` is ``redact``."""
    latency_us: int = 0
    """Time shieldd spent deciding, in microseconds."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Verdict":
        """Build from the wire JSON object."""
        # Built on every answer: conversions only where the type is wrong.
        action = d.get("action", BLOCK)
        if type(action) is not str:
            action = str(action)
        findings = d.get("findings")
        redacted = d.get("redacted")
        latency = d.get("latency_us", 0)
        return cls(
            action,
            # Trust either flag: a verdict that says block is blocked.
            d.get("blocked") is True or action == BLOCK or bool(d.get("blocked", False)),
            [Finding.from_dict(f) for f in findings] if findings else [],
            redacted if isinstance(redacted, str) else None,
            latency if type(latency) is int else int(latency),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The wire JSON object (``redacted`` omitted when absent, as in wire.rs)."""
        d: Dict[str, Any] = {
            "action": self.action,
            "blocked": self.blocked,
            "findings": [f.to_dict() for f in self.findings],
            "latency_us": self.latency_us,
        }
        if self.redacted is not None:
            d["redacted"] = self.redacted
        return d

    @property
    def allowed(self) -> bool:
        """True when the text or call may be used as it is (``allow``)."""
        return self.action == ALLOW

    @property
    def needs_approval(self) -> bool:
        """True when a person must approve the tool call first."""
        return self.action == NEEDS_APPROVAL

    @property
    def unavailable(self) -> bool:
        """True when this verdict was made by the client because shieldd
        could not be asked (fail-closed)."""
        return any(f.type == UNAVAILABLE_TYPE for f in self.findings)

    def text_or_redacted(self, original: str) -> str:
        """The text to use: ``redacted`` when shieldd redacted it, else
        ``original``. It does not look at ``blocked``: check that first."""
        if self.action == REDACT and self.redacted is not None:
            return self.redacted
        return original

    def summary(self) -> str:
        """A short human-readable line, e.g. ``block [injection:direct_injection]``."""
        kinds = ", ".join(f"{f.kind}:{f.type}" for f in self.findings)
        return f"{self.action} [{kinds}]" if kinds else self.action

    @classmethod
    def allow(cls) -> "Verdict":
        """An ``allow`` verdict with no findings."""
        return cls(action=ALLOW, blocked=False)

    @classmethod
    def unavailable_block(cls, reason: str) -> "Verdict":
        """The fail-closed verdict: block, with one finding saying why."""
        return cls(
            action=BLOCK,
            blocked=True,
            findings=[
                Finding(
                    kind="tool_policy",
                    type=UNAVAILABLE_TYPE,
                    score=1.0,
                    detail=f"shieldd unavailable: {reason}",
                )
            ],
        )
