"""One connection to shieldd with pipelined requests matched by id."""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any, Dict, Optional


class ConnectionLost(OSError):
    """The connection closed or failed before the answer came."""


class _Slot:
    __slots__ = ("event", "response", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.response: Optional[Dict[str, Any]] = None
        self.error: Optional[BaseException] = None


class Connection:
    """A Unix stream socket to shieldd. Requests from any thread are written
    under a lock; one reader thread hands each response line to the request
    with the same id, so threads pipeline on one connection."""

    def __init__(self, path: str, timeout: float) -> None:
        self.pid = os.getpid()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The timeout bounds connect, and sendall against a server that
        # stopped reading; the reader just goes round when recv times out.
        sock.settimeout(max(timeout, 0.05))
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending: Dict[int, _Slot] = {}
        self._closed = False
        self._why: Optional[BaseException] = None
        self._last_null_error = ""
        self._reader = threading.Thread(
            target=self._read_loop, name="shield-client-reader", daemon=True
        )
        self._reader.start()

    @property
    def alive(self) -> bool:
        """False once the connection failed or was closed (or after a fork)."""
        return not self._closed and self.pid == os.getpid()

    def request(self, req_id: int, body: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        """Send one request and wait for its response. Raises ``OSError``
        (``ConnectionLost``, ``BrokenPipeError``, ...) when the connection
        fails, ``TimeoutError`` when no answer comes in time."""
        line = json.dumps(dict(body, id=req_id), ensure_ascii=False, separators=(",", ":"))
        data = line.encode("utf-8") + b"\n"
        slot = _Slot()
        with self._plock:
            if self._closed:
                raise ConnectionLost(str(self._why or "connection closed"))
            self._pending[req_id] = slot
        try:
            with self._wlock:
                self._sock.sendall(data)
        except OSError as e:
            self._fail(e)
            raise
        if not slot.event.wait(timeout):
            with self._plock:
                self._pending.pop(req_id, None)
            raise TimeoutError(f"no answer from shieldd within {timeout:g} s")
        if slot.error is not None:
            raise slot.error
        assert slot.response is not None
        return slot.response

    def close(self) -> None:
        """Close the socket; requests in flight fail with ``ConnectionLost``."""
        self._fail(ConnectionLost("connection closed by the client"))

    def _fail(self, why: BaseException) -> None:
        with self._plock:
            if self._closed:
                return
            self._closed = True
            self._why = why
            pending, self._pending = self._pending, {}
        if self.pid == os.getpid():
            try:
                # shutdown wakes the reader thread blocked in recv. Not in a
                # forked child: the socket is shared with the parent.
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        for slot in pending.values():
            slot.error = ConnectionLost(str(why))
            slot.event.set()

    def _read_loop(self) -> None:
        buf = b""
        sock = self._sock
        try:
            while True:
                try:
                    chunk = sock.recv(1 << 16)
                except socket.timeout:
                    if self._closed:
                        return
                    continue
                if not chunk:
                    why = self._last_null_error or "shieldd closed the connection"
                    self._fail(ConnectionLost(why))
                    return
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1 :]
                    self._dispatch(line)
        except OSError as e:
            self._fail(ConnectionLost(str(e)))
        except BaseException as e:  # never leave waiters hanging
            self._fail(ConnectionLost(f"reader failed: {e!r}"))

    def _dispatch(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            resp = json.loads(line)
        except ValueError:
            return
        if not isinstance(resp, dict):
            return
        rid = resp.get("id")
        if not isinstance(rid, int):
            # An answer the server could not tie to a request (refused
            # peer, oversized line): kept as the reason if the line closes.
            err = resp.get("error")
            if isinstance(err, dict):
                self._last_null_error = f"{err.get('code')}: {err.get('message')}"
            return
        with self._plock:
            slot = self._pending.pop(rid, None)
        if slot is not None:
            slot.response = resp
            slot.event.set()
