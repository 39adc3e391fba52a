"""LangChain integration (``langchain-core``): a callback handler that
scans prompts, model outputs and tool inputs, and ``guard_tool`` that checks
each invocation of a tool against the tool policy before it runs.

Importing this module imports ``langchain_core`` (the core package does not).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from uuid import UUID

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.tools import BaseTool
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "shield_client.langchain needs langchain-core: pip install 'shield-client[langchain]'"
    ) from e

from .client import Approver, Shield, _to_thread
from .errors import Blocked, ShieldUnavailable
from .types import Verdict

__all__ = ["ShieldCallbackHandler", "GuardedTool", "guard_tool"]


def _raise_if_blocked(v: Verdict, what: str) -> None:
    if v.blocked:
        if v.unavailable:
            raise ShieldUnavailable(v.findings[0].detail, v)
        raise Blocked(v, what)


def _content_text(content: Any) -> str:
    """Text of a message's content (a str or a list of content parts)."""
    if isinstance(content, str):
        return content
    parts: List[str] = []
    if isinstance(content, list):
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, Mapping) and isinstance(p.get("text"), str):
                parts.append(p["text"])
    return "\n".join(parts)


class ShieldCallbackHandler(BaseCallbackHandler):
    """Scans what flows through a LangChain run and raises ``Blocked`` when
    shieldd blocks it: prompts and chat messages inbound (``on_llm_start``,
    ``on_chat_model_start``), generations outbound (``on_llm_end``), tool
    inputs through the tool policy (``on_tool_start``) and, optionally, tool
    outputs inbound (``on_tool_end``). Callbacks cannot rewrite text, so
    redact verdicts are only recorded in ``verdicts``; use ``guard_tool`` or
    ``Shield.protect`` where the text must change."""

    #: Make LangChain propagate our exceptions instead of logging them.
    raise_error: bool = True

    def __init__(
        self,
        shield: Shield,
        *,
        scan_prompts: bool = True,
        scan_outputs: bool = True,
        check_tools: bool = True,
        scan_tool_outputs: bool = False,
    ) -> None:
        super().__init__()
        self.shield = shield
        self.scan_prompts = scan_prompts
        self.scan_outputs = scan_outputs
        self.check_tools = check_tools
        self.scan_tool_outputs = scan_tool_outputs
        #: (what, verdict) for every check made, in order.
        self.verdicts: List[Tuple[str, Verdict]] = []

    def _scan(self, text: str, direction: str, what: str) -> None:
        if not text:
            return
        v = self.shield.scan(text, direction, raise_on_block=False)
        self.verdicts.append((what, v))
        _raise_if_blocked(v, what)

    def on_llm_start(
        self, serialized: Dict[str, Any], prompts: List[str], **kwargs: Any
    ) -> None:
        """Scan each prompt inbound."""
        if self.scan_prompts:
            for p in prompts:
                self._scan(p, "inbound", "prompt")

    def on_chat_model_start(
        self, serialized: Dict[str, Any], messages: List[List[Any]], **kwargs: Any
    ) -> None:
        """Scan each chat message inbound."""
        if self.scan_prompts:
            for batch in messages:
                for m in batch:
                    self._scan(_content_text(getattr(m, "content", m)), "inbound", "chat message")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        """Scan each generation outbound."""
        if not self.scan_outputs:
            return
        for gens in getattr(response, "generations", None) or []:
            for g in gens:
                text = getattr(g, "text", "") or ""
                msg = getattr(g, "message", None)
                if not text and msg is not None:
                    text = _content_text(getattr(msg, "content", ""))
                self._scan(text, "outbound", "model output")

    def on_tool_start(
        self,
        serialized: Dict[str, Any],
        input_str: str,
        *,
        run_id: Optional[UUID] = None,
        inputs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Check the tool call against the tool policy; ``needs_approval``
        is refused here (no person to ask inside a callback)."""
        if not self.check_tools:
            return
        name = str((serialized or {}).get("name") or kwargs.get("name") or "")
        params = dict(inputs) if isinstance(inputs, Mapping) else {"input": input_str}
        v = self.shield.check_tool(name, params, raise_on_block=False)
        self.verdicts.append((f"tool {name}", v))
        self.shield.enforce(name, params, v)

    def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        """Scan the tool's output inbound when ``scan_tool_outputs``."""
        if self.scan_tool_outputs:
            text = output if isinstance(output, str) else _content_text(getattr(output, "content", ""))
            self._scan(text, "inbound", "tool output")


def _params(tool: BaseTool, tool_input: Union[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The tool's input as the params of a ``check_tool``: a dict as it is,
    a string under the tool's single argument name (else ``input``)."""
    if isinstance(tool_input, Mapping):
        return dict(tool_input)
    try:
        args = list(tool.args.keys())
    except Exception:  # a schema LangChain cannot describe
        args = []
    return {args[0] if len(args) == 1 else "input": tool_input}


class GuardedTool(BaseTool):
    """A tool that asks shieldd (``check_tool(name, input)``) before each
    run of the tool it wraps. Blocked raises ``Blocked``; ``needs_approval``
    raises ``ApprovalRequired`` unless the approver says yes."""

    inner: BaseTool
    shield: Any
    approver: Optional[Any] = None

    model_config = {"arbitrary_types_allowed": True}

    def _check(self, tool_input: Union[str, Dict[str, Any]]) -> None:
        self.shield.authorize_tool(self.inner.name, _params(self.inner, tool_input), self.approver)

    def run(self, tool_input: Union[str, Dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        """Check, then run the wrapped tool."""
        self._check(tool_input)
        return self.inner.run(tool_input, *args, **kwargs)

    async def arun(self, tool_input: Union[str, Dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        """Check (off the event loop), then run the wrapped tool."""
        await _to_thread(self._check, tool_input)
        return await self.inner.arun(tool_input, *args, **kwargs)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        # Not reached: run() delegates to the wrapped tool's run().
        return self.inner._run(*args, **kwargs)


def guard_tool(tool: BaseTool, shield: Shield, approver: Optional[Approver] = None) -> GuardedTool:
    """Wrap ``tool`` (a ``BaseTool`` or an ``@tool`` function) so each
    invocation is checked with ``shield.check_tool(tool.name, input)``
    first. The wrapper keeps the name, description and argument schema,
    so it can be bound to a chat model in place of the original."""
    return GuardedTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        inner=tool,
        shield=shield,
        approver=approver,
    )


def guard_tools(tools: Sequence[BaseTool], shield: Shield, approver: Optional[Approver] = None) -> List[GuardedTool]:
    """``guard_tool`` for each of ``tools``."""
    return [guard_tool(t, shield, approver) for t in tools]
