"""MCP integration: ``GuardedSession`` checks each ``call_tool`` of an
``mcp`` client session (``mcp.ClientSession`` or ``mcp.client.Client``)
against shieldd's tool policy before the request leaves.

Nothing of ``mcp`` is imported unless ``on_block="error_result"`` needs to
build a ``CallToolResult``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._toolcalls import refusal_text
from .client import Approver, Shield, _to_thread
from .errors import Blocked

__all__ = ["GuardedSession"]


class GuardedSession:
    """Wraps a session so ``call_tool(name, arguments)`` is checked first.
    A refused call raises ``Blocked`` (or ``ApprovalRequired`` /
    ``ShieldUnavailable``), or with ``on_block="error_result"`` returns an
    ``isError`` ``CallToolResult`` the model can read. Every other attribute
    is the wrapped session's."""

    def __init__(
        self,
        session: Any,
        shield: Shield,
        approver: Optional[Approver] = None,
        on_block: str = "raise",
        scan_results: bool = False,
    ) -> None:
        if on_block not in ("raise", "error_result"):
            raise ValueError("on_block must be 'raise' or 'error_result'")
        self.session = session
        self.shield = shield
        self.approver = approver
        self.on_block = on_block
        self.scan_results = scan_results

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    async def call_tool(
        self, name: str, arguments: Optional[Dict[str, Any]] = None, *args: Any, **kwargs: Any
    ) -> Any:
        """Check the call with shieldd, then forward it to the session."""
        try:
            await _to_thread(self.shield.authorize_tool, name, dict(arguments or {}), self.approver)
        except Blocked as e:
            if self.on_block == "raise":
                raise
            from mcp import types

            # By alias: mcp 1.x names the field isError, 2.x is_error.
            return types.CallToolResult.model_validate(
                {"content": [{"type": "text", "text": refusal_text(e.verdict)}], "isError": True}
            )
        result = await self.session.call_tool(name, arguments, *args, **kwargs)
        if self.scan_results:
            # Tool output is text the agent reads: an injection hidden in it
            # is as dangerous as one in a user message.
            for part in getattr(result, "content", None) or []:
                text = getattr(part, "text", None)
                if isinstance(text, str):
                    v = await _to_thread(self.shield.scan_input, text)
                    if v.blocked:
                        raise Blocked(v, f"result of tool {name!r}")
        return result
