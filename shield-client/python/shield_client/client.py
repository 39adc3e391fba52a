"""The `Shield` client: scans, tool checks, streams and `@protect`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import os
import threading
import time
import warnings
from typing import (
    Any,
    Callable,
    Dict,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from ._conn import Connection
from ._json import encode, scan_payload
from .errors import ApprovalRequired, Blocked, ProtocolError, ShieldError, ShieldUnavailable
from .types import INBOUND, NEEDS_APPROVAL, OUTBOUND, Verdict

log = logging.getLogger("shield_client")

F = TypeVar("F", bound=Callable[..., Any])

#: Called for a tool call whose verdict is ``needs_approval``:
#: ``approver(tool_name, params, verdict) -> True`` lets it run.
Approver = Callable[[str, Mapping[str, Any], Verdict], bool]

#: Default largest request line shieldd accepts (wire.rs ``DEFAULT_MAX_LINE``).
DEFAULT_MAX_LINE = 1 << 20

#: What a blocked scan says it blocked, by direction.
_WHAT_TEXT = {INBOUND: f"{INBOUND} text", OUTBOUND: f"{OUTBOUND} text"}

#: The kwargs ``protect`` scans when no positional str argument is given.
_TEXT_KWARGS = ("text", "prompt", "message")


class ShieldUnavailableWarning(RuntimeWarning):
    """Warned when a fail-open client lets text through unscanned."""


class _Unavailable(Exception):
    """Internal: shieldd could not answer (reason in args[0])."""


class Shield:
    """A client of shieldd's scan API (SPEC.md section 4).

    ``socket_path`` defaults to ``$SHIELD_SOCKET`` (set by ``shieldd run``).
    One connection is kept and shared by all threads; a broken one is
    replaced once per request. ``fail_open=False`` (the default) turns an
    unreachable or failing shieldd into a blocked verdict; ``fail_open=True``
    turns it into ``allow`` with a ``ShieldUnavailableWarning``.
    ``raise_on_block=True`` makes every method raise ``Blocked`` (or its
    subclass ``ShieldUnavailable``) instead of returning a blocked verdict;
    each method can override it.
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        timeout: float = 5.0,
        fail_open: bool = False,
        raise_on_block: bool = False,
        approver: Optional[Approver] = None,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.socket_path = socket_path or os.environ.get("SHIELD_SOCKET") or ""
        self.session = os.environ.get("SHIELD_SESSION")
        self.timeout = float(timeout)
        self.fail_open = bool(fail_open)
        self.raise_on_block = bool(raise_on_block)
        self.approver = approver
        self.max_line = int(max_line)
        self._lock = threading.Lock()
        self._conn: Optional[Connection] = None
        self._ids = itertools.count(1)

    # -- plumbing -----------------------------------------------------------

    def __enter__(self) -> "Shield":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "fail-open" if self.fail_open else "fail-closed"
        return f"Shield(socket_path={self.socket_path!r}, {mode})"

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> Connection:
        # Without the lock while the connection is good: reading the
        # attribute is atomic, and a connection that breaks after this
        # check fails its request, which reconnects.
        c = self._conn
        if c is not None and c.alive:
            return c
        with self._lock:
            if self._conn is not None and self._conn.alive:
                return self._conn
            if not self.socket_path:
                raise _Unavailable("no socket: pass socket_path or set SHIELD_SOCKET")
            try:
                self._conn = Connection(self.socket_path, self.timeout)
            except OSError as e:
                raise _Unavailable(f"cannot connect to {self.socket_path}: {e}") from e
            return self._conn

    def _call(
        self, body: Dict[str, Any], retry: bool = True, conn: Optional[Connection] = None
    ) -> Tuple[Dict[str, Any], Connection]:
        """One request; returns the ``ok`` response and the connection used.
        Raises ``_Unavailable`` or ``ProtocolError``."""
        return self._call_payload(encode(body), retry, conn)

    def _call_payload(
        self, payload: bytes, retry: bool = True, conn: Optional[Connection] = None
    ) -> Tuple[Dict[str, Any], Connection]:
        """:meth:`_call` with the request object already encoded (once, here;
        the connection only splices the id in front)."""
        size = len(payload) + 24
        if size > self.max_line:
            raise ProtocolError(
                "too_large", f"request of {size} bytes exceeds shieldd's line limit"
            )
        deadline = time.monotonic() + self.timeout
        attempts = 2 if retry else 1
        busy_wait = 0.001
        while True:
            c = conn or self._connection()
            try:
                resp = c.request(next(self._ids), payload, max(deadline - time.monotonic(), 0.001))
            except TimeoutError as e:
                raise _Unavailable(str(e)) from e
            except OSError as e:
                attempts -= 1
                if conn is not None or attempts <= 0:
                    raise _Unavailable(f"connection to shieldd failed: {e}") from e
                log.debug("shieldd connection broke (%s); reconnecting once", e)
                continue
            if resp.get("ok"):
                return resp, c
            err = resp.get("error") or {}
            code = str(err.get("code", "internal"))
            msg = str(err.get("message", ""))
            if code == "busy" and time.monotonic() + busy_wait < deadline:
                time.sleep(busy_wait)
                busy_wait = min(busy_wait * 4, 0.05)
                continue
            raise ProtocolError(code, msg)

    def _decide(self, payload: bytes, raise_on_block: Optional[bool], what: str) -> Verdict:
        try:
            resp, _ = self._call_payload(payload)
            v = resp.get("verdict")
            if not isinstance(v, dict):
                raise ProtocolError("internal", "response carries no verdict")
            verdict = Verdict.from_dict(v)
        except (_Unavailable, ProtocolError) as e:
            verdict = self._on_unavailable(str(e), raise_on_block)
        return self._finish(verdict, raise_on_block, what)

    def _on_unavailable(self, reason: str, raise_on_block: Optional[bool]) -> Verdict:
        if self.fail_open:
            warnings.warn(
                f"shieldd unavailable ({reason}); fail-open: allowing",
                ShieldUnavailableWarning,
                stacklevel=4,
            )
            log.warning("shieldd unavailable (%s); fail-open: allowing", reason)
            return Verdict.allow()
        log.warning("shieldd unavailable (%s); fail-closed: blocking", reason)
        verdict = Verdict.unavailable_block(reason)
        if self._raises(raise_on_block):
            raise ShieldUnavailable(reason, verdict)
        return verdict

    def _raises(self, raise_on_block: Optional[bool]) -> bool:
        return self.raise_on_block if raise_on_block is None else raise_on_block

    def _finish(self, verdict: Verdict, raise_on_block: Optional[bool], what: str) -> Verdict:
        if verdict.blocked and self._raises(raise_on_block):
            if verdict.unavailable:
                raise ShieldUnavailable(verdict.findings[0].detail, verdict)
            raise Blocked(verdict, what)
        return verdict

    # -- the API ------------------------------------------------------------

    def scan(
        self, text: str, direction: str = INBOUND, *, raise_on_block: Optional[bool] = None
    ) -> Verdict:
        """Scan ``text`` flowing ``direction`` (``inbound``/``outbound``)."""
        # By equality, as the wire sees it: a str enum of the two counts.
        d = INBOUND if direction == INBOUND else OUTBOUND if direction == OUTBOUND else None
        if d is None:
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        return self._decide(scan_payload(str(text), d), raise_on_block, _WHAT_TEXT[d])

    def scan_input(self, text: str, *, raise_on_block: Optional[bool] = None) -> Verdict:
        """Scan text the agent reads (user messages, documents, tool outputs)."""
        return self.scan(text, INBOUND, raise_on_block=raise_on_block)

    def scan_output(self, text: str, *, raise_on_block: Optional[bool] = None) -> Verdict:
        """Scan text the agent writes (answers, tool arguments)."""
        return self.scan(text, OUTBOUND, raise_on_block=raise_on_block)

    def check_tool(
        self,
        name: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        raise_on_block: Optional[bool] = None,
    ) -> Verdict:
        """Check one tool call against the policy's tool rules. The verdict
        may be ``needs_approval``, which is not ``blocked``: see
        :meth:`authorize_tool` for the helper that handles it."""
        return self._decide(
            encode({"op": "check_tool", "tool": str(name), "params": dict(params or {})}),
            raise_on_block,
            f"tool call {name!r}",
        )

    def authorize_tool(
        self,
        name: str,
        params: Optional[Mapping[str, Any]] = None,
        approver: Optional[Approver] = None,
    ) -> Verdict:
        """Check a tool call and raise unless it may run now: ``Blocked``
        when blocked, ``ApprovalRequired`` when it needs approval and the
        approver (argument, else the Shield's) is missing or says no."""
        p = dict(params or {})
        v = self.check_tool(name, p, raise_on_block=False)
        return self.enforce(name, p, v, approver)

    def enforce(
        self,
        name: str,
        params: Mapping[str, Any],
        v: Verdict,
        approver: Optional[Approver] = None,
    ) -> Verdict:
        """Raise unless the tool call with verdict ``v`` may run now:
        ``ShieldUnavailable`` or ``Blocked`` when blocked,
        ``ApprovalRequired`` when it needs approval and the approver
        (argument, else the Shield's) is missing or says no. The one place
        every integration turns a verdict into go or stop."""
        if v.blocked:
            if v.unavailable:
                raise ShieldUnavailable(v.findings[0].detail, v)
            raise Blocked(v, f"tool call {name!r}")
        if v.action == NEEDS_APPROVAL:
            ok = approver or self.approver
            if ok is None or not ok(name, dict(params), v):
                raise ApprovalRequired(v, f"tool call {name!r}")
        return v

    def ping(self) -> float:
        """Round-trip time of a ``ping`` in seconds; raises
        ``ShieldUnavailable`` when shieldd does not answer."""
        t = time.perf_counter()
        try:
            self._call({"op": "ping"})
        except (_Unavailable, ProtocolError) as e:
            raise ShieldUnavailable(str(e)) from None
        return time.perf_counter() - t

    def stats(self) -> Dict[str, Any]:
        """shieldd's counters (connections, requests, bad_requests, busy,
        blocked); raises ``ShieldUnavailable`` when it does not answer."""
        try:
            resp, _ = self._call({"op": "stats"})
        except (_Unavailable, ProtocolError) as e:
            raise ShieldUnavailable(str(e)) from None
        s = resp.get("stats")
        return dict(s) if isinstance(s, dict) else {}

    def stream(
        self, direction: str = OUTBOUND, *, raise_on_block: Optional[bool] = None
    ) -> "ShieldStream":
        """A streaming scan for a token stream; use as a context manager:
        ``with shield.stream() as s: s.push(tok) ...; final = s.close()``."""
        if direction not in (INBOUND, OUTBOUND):
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        return ShieldStream(self, direction, raise_on_block)

    # -- decorators ---------------------------------------------------------

    @overload
    def protect(self, fn: F) -> F: ...

    @overload
    def protect(
        self, fn: None = None, *, scan_input: bool = True, scan_output: bool = True
    ) -> Callable[[F], F]: ...

    def protect(
        self,
        fn: Optional[F] = None,
        *,
        scan_input: bool = True,
        scan_output: bool = True,
    ) -> Union[F, Callable[[F], F]]:
        """Decorate a function that handles a request. Its first ``str``
        argument (else a ``text``/``prompt``/``message`` keyword) is scanned
        inbound first: blocked raises ``Blocked``, redacted passes the
        redacted text instead. A ``str`` result is scanned outbound: blocked
        raises, redacted returns the redacted text. Works on ``async def``."""

        def wrap(f: F) -> F:
            if inspect.iscoroutinefunction(f):

                @functools.wraps(f)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    if scan_input:
                        args, kwargs = await _to_thread(self._guard_args, f, args, kwargs)
                    out = await f(*args, **kwargs)
                    if scan_output and isinstance(out, str):
                        out = await _to_thread(self._guard_result, f, out)
                    return out

                return awrapper  # type: ignore[return-value]

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if scan_input:
                    args, kwargs = self._guard_args(f, args, kwargs)
                out = f(*args, **kwargs)
                if scan_output and isinstance(out, str):
                    out = self._guard_result(f, out)
                return out

            return wrapper  # type: ignore[return-value]

        return wrap(fn) if fn is not None else wrap

    def _guard_args(
        self, f: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
        name = getattr(f, "__qualname__", "function")
        for i, a in enumerate(args):
            if isinstance(a, str):
                v = self._checked(self.scan_input(a, raise_on_block=False), f"input of {name}")
                new = list(args)
                new[i] = v.text_or_redacted(a)
                return tuple(new), kwargs
        for k in _TEXT_KWARGS:
            a = kwargs.get(k)
            if isinstance(a, str):
                v = self._checked(self.scan_input(a, raise_on_block=False), f"input of {name}")
                return args, dict(kwargs, **{k: v.text_or_redacted(a)})
        return args, kwargs

    def _guard_result(self, f: Callable[..., Any], out: str) -> str:
        name = getattr(f, "__qualname__", "function")
        v = self._checked(self.scan_output(out, raise_on_block=False), f"output of {name}")
        return v.text_or_redacted(out)

    @staticmethod
    def _checked(v: Verdict, what: str) -> Verdict:
        if v.blocked:
            if v.unavailable:
                raise ShieldUnavailable(v.findings[0].detail, v)
            raise Blocked(v, what)
        return v

    def tool(
        self, name: Optional[str] = None, approver: Optional[Approver] = None
    ) -> Callable[[F], F]:
        """Decorate a tool function so each call is checked first with
        :meth:`authorize_tool` (its keyword arguments, and positional ones
        bound to their parameter names, are the params)."""

        def wrap(f: F) -> F:
            tool_name = name or f.__name__
            sig = inspect.signature(f)

            def params_of(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
                try:
                    return dict(sig.bind(*args, **kwargs).arguments)
                except TypeError:
                    return dict(kwargs)

            if inspect.iscoroutinefunction(f):

                @functools.wraps(f)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    p = params_of(args, kwargs)
                    await _to_thread(self.authorize_tool, tool_name, p, approver)
                    return await f(*args, **kwargs)

                return awrapper  # type: ignore[return-value]

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.authorize_tool(tool_name, params_of(args, kwargs), approver)
                return f(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap


class ShieldStream:
    """A streaming scan (``scan_stream`` open/chunk/close). Findings that
    span chunks are caught; each verdict covers the whole stream so far.
    Streaming verdicts carry no redacted text: the tokens already left."""

    def __init__(self, shield: Shield, direction: str, raise_on_block: Optional[bool]) -> None:
        self._shield = shield
        self.direction = direction
        self._raise = raise_on_block
        self._handle: Optional[int] = None
        self._conn: Optional[Connection] = None
        self._failed: Optional[str] = None
        self._closed = False
        #: The latest verdict (the final one after ``close``).
        self.verdict: Verdict = Verdict.allow()

    def __enter__(self) -> "ShieldStream":
        self._open()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._closed:
            try:
                self.close()
            except Blocked:
                if exc[0] is None:
                    raise

    def _open(self) -> None:
        if self._handle is not None or self._failed is not None:
            return
        try:
            resp, conn = self._shield._call(
                {"op": "scan_stream", "action": "open", "direction": self.direction}
            )
            h = resp.get("stream")
            if not isinstance(h, int):
                raise ProtocolError("internal", "open returned no stream handle")
            self._handle, self._conn = h, conn
        except (_Unavailable, ProtocolError) as e:
            self._failed = str(e)

    def _step(self, action: str, text: str) -> Verdict:
        if self._closed:
            raise ShieldError("stream already closed")
        self._open()
        if action == "close":
            self._closed = True
        if self._failed is None:
            try:
                # The handle lives on one connection: no reconnect here.
                resp, _ = self._shield._call(
                    {"op": "scan_stream", "action": action, "stream": self._handle, "text": text},
                    retry=False,
                    conn=self._conn,
                )
                v = resp.get("verdict")
                if not isinstance(v, dict):
                    raise ProtocolError("internal", "response carries no verdict")
                self.verdict = Verdict.from_dict(v)
            except (_Unavailable, ProtocolError) as e:
                self._failed = str(e)
        if self._failed is not None:
            self.verdict = self._shield._on_unavailable(self._failed, self._raise)
        return self._shield._finish(self.verdict, self._raise, f"{self.direction} stream")

    def push(self, chunk: str) -> Verdict:
        """Add a chunk; the verdict of the stream so far."""
        return self._step("chunk", str(chunk))

    def close(self, chunk: str = "") -> Verdict:
        """End the stream (with an optional last chunk); the final verdict."""
        return self._step("close", str(chunk))


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call off the event loop (asyncio.to_thread is 3.9+)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))
