"""Shared helpers of the SDK integrations."""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

from .types import BLOCK, Finding, Verdict


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj.key`` or ``obj[key]``: SDK objects and plain dicts alike."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def parse_arguments(raw: Any) -> Tuple[Optional[Dict[str, Any]], Optional[Verdict]]:
    """Tool arguments as a dict, or a local block verdict when they are not
    a JSON object (what cannot be checked must not run)."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, Mapping):
        return dict(raw), None
    if isinstance(raw, (str, bytes)):
        try:
            val = json.loads(raw)
        except ValueError as e:
            return None, invalid(f"tool arguments are not JSON: {e}")
        if isinstance(val, dict):
            return val, None
        return None, invalid("tool arguments are not a JSON object")
    return None, invalid(f"tool arguments of type {type(raw).__name__}")


def invalid(detail: str) -> Verdict:
    """A client-made block verdict for an uncheckable tool call."""
    return Verdict(
        action=BLOCK,
        blocked=True,
        findings=[Finding(kind="tool_policy", type="invalid_arguments", score=1.0, detail=detail)],
    )


def refusal_text(verdict: Verdict) -> str:
    """What to tell the model instead of the tool's result."""
    if verdict.action == "needs_approval":
        return "This tool call needs a person's approval and was not run."
    return f"This tool call was refused by policy ({verdict.summary()}) and was not run."
