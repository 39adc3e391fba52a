"""Anthropic SDK integration: check each ``tool_use`` content block of a
``Message`` before executing it.

Works on the ``anthropic`` package's objects and on plain dicts of the same
shape; it never imports ``anthropic`` itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ._toolcalls import get, parse_arguments, refusal_text
from .client import Approver, Shield
from .types import Verdict

__all__ = [
    "check_tool_uses",
    "check_tool_calls",
    "ensure_tool_uses_allowed",
    "iter_tool_uses",
    "refusal_block",
]


def iter_tool_uses(message: Any) -> List[Any]:
    """The ``tool_use`` blocks of a ``Message`` (or of a content list)."""
    content = message if isinstance(message, list) else get(message, "content")
    if not isinstance(content, list):
        return []
    return [b for b in content if get(b, "type") == "tool_use"]


def check_tool_uses(shield: Shield, message: Any) -> List[Tuple[Any, Verdict]]:
    """Check every ``tool_use`` block; ``(block, verdict)`` pairs in order.
    Nothing is raised for blocked calls here."""
    out: List[Tuple[Any, Verdict]] = []
    for block in iter_tool_uses(message):
        params, bad = parse_arguments(get(block, "input"))
        name = str(get(block, "name", "") or "")
        v = bad if bad is not None else shield.check_tool(name, params, raise_on_block=False)
        out.append((block, v))
    return out


#: Same name as the OpenAI integration's.
check_tool_calls = check_tool_uses


def ensure_tool_uses_allowed(
    shield: Shield, message: Any, approver: Optional[Approver] = None
) -> List[Tuple[Any, Dict[str, Any]]]:
    """Check every ``tool_use`` block and raise on the first that may not
    run (``Blocked``, ``ShieldUnavailable`` or ``ApprovalRequired``).
    Returns ``(block, input)`` pairs ready to execute."""
    ready: List[Tuple[Any, Dict[str, Any]]] = []
    for block, v in check_tool_uses(shield, message):
        name = str(get(block, "name", "") or "")
        params, _ = parse_arguments(get(block, "input"))
        shield.enforce(name, params or {}, v, approver)
        ready.append((block, params or {}))
    return ready


def refusal_block(tool_use: Any, verdict: Verdict) -> Dict[str, Any]:
    """A ``tool_result`` content block (``is_error``) to send back in place
    of a refused call's result."""
    return {
        "type": "tool_result",
        "tool_use_id": str(get(tool_use, "id", "") or ""),
        "content": refusal_text(verdict),
        "is_error": True,
    }
