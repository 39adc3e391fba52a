"""OpenAI SDK integration: check each tool call of a chat completion (or a
Responses API ``function_call`` item) before executing it.

Works on the ``openai`` package's objects (``ChatCompletion``,
``ChatCompletionMessage``, ``Response``) and on plain dicts of the same
shape; it never imports ``openai`` itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ._toolcalls import get, parse_arguments, refusal_text
from .client import Approver, Shield
from .types import Verdict

__all__ = [
    "check_tool_calls",
    "ensure_tool_calls_allowed",
    "iter_tool_calls",
    "tool_call_name_and_params",
    "refusal_message",
]


def iter_tool_calls(message: Any) -> List[Any]:
    """The tool calls of a ``ChatCompletion`` (every choice), a
    ``ChatCompletionMessage``, or a Responses API ``Response``
    (``function_call`` output items)."""
    choices = get(message, "choices")
    if choices is not None:
        out: List[Any] = []
        for c in choices:
            out.extend(iter_tool_calls(get(c, "message")))
        return out
    output = get(message, "output")
    if isinstance(output, list):
        return [item for item in output if get(item, "type") == "function_call"]
    return list(get(message, "tool_calls") or [])


def tool_call_name_and_params(tool_call: Any) -> Tuple[str, Optional[Dict[str, Any]], Optional[Verdict]]:
    """Name and parsed arguments of one tool call (chat ``function`` tool
    call or Responses ``function_call`` item); a local block verdict when
    the arguments are not a JSON object."""
    fn = get(tool_call, "function")
    src = fn if fn is not None else tool_call
    name = str(get(src, "name", "") or "")
    params, bad = parse_arguments(get(src, "arguments"))
    return name, params, bad


def check_tool_calls(shield: Shield, message: Any) -> List[Tuple[Any, Verdict]]:
    """Check every tool call of ``message``; ``(tool_call, verdict)`` pairs
    in order. Nothing is raised for blocked calls here."""
    out: List[Tuple[Any, Verdict]] = []
    for tc in iter_tool_calls(message):
        name, params, bad = tool_call_name_and_params(tc)
        v = bad if bad is not None else shield.check_tool(name, params, raise_on_block=False)
        out.append((tc, v))
    return out


def ensure_tool_calls_allowed(
    shield: Shield, message: Any, approver: Optional[Approver] = None
) -> List[Tuple[Any, Dict[str, Any]]]:
    """Check every tool call and raise on the first that may not run:
    ``Blocked`` (``ShieldUnavailable`` when shieldd could not be asked) or
    ``ApprovalRequired`` when approval is needed and the approver (argument,
    else ``shield.approver``) does not give it. Returns ``(tool_call,
    params)`` pairs ready to execute."""
    ready: List[Tuple[Any, Dict[str, Any]]] = []
    for tc, v in check_tool_calls(shield, message):
        name, params, _ = tool_call_name_and_params(tc)
        shield.enforce(name, params or {}, v, approver)
        ready.append((tc, params or {}))
    return ready


def refusal_message(tool_call: Any, verdict: Verdict) -> Dict[str, Any]:
    """A ``role: tool`` message to send back in place of a refused call's
    result, so the conversation stays well formed."""
    return {
        "role": "tool",
        "tool_call_id": str(get(tool_call, "id", "") or get(tool_call, "call_id", "") or ""),
        "content": refusal_text(verdict),
    }
