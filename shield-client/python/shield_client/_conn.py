"""One connection to shieldd with pipelined requests matched by id."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from typing import Any, Dict, List, Optional

_monotonic = time.monotonic
# `raw_decode` skips `json.loads`'s encoding sniffing of bytes and its
# trailing-whitespace regex: a response line is UTF-8 JSON with nothing after.
_raw_decode = json.JSONDecoder().raw_decode

# Bumped in a forked child: a connection made before the fork belongs to the
# parent (the child shares its socket), so the child must open its own. A
# hook instead of `os.getpid()` on every request (a system call each time).
_forks: List[int] = [0]


def _after_fork_in_child() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _timeval(seconds: float) -> bytes:
    """``struct timeval`` for SO_RCVTIMEO/SO_SNDTIMEO; never zero, which
    would mean no timeout at all."""
    us = max(int(seconds * 1e6), 1)
    return struct.pack("@ll", us // 1_000_000, us % 1_000_000)


def _below(left: float, timeout: float) -> float:
    """A kernel timeout for ``left`` seconds to a deadline: never past it,
    and with room (half of a tenth of the call's timeout) so that the next
    calls, whose time left is a little more or less, keep it."""
    return left - timeout / 20 if left > timeout / 10 else left


class ConnectionLost(OSError):
    """The connection closed or failed before the answer came."""


class _Slot:
    __slots__ = ("event", "response", "error")

    def __init__(self) -> None:
        # Made only when the request has to wait for another thread's
        # reading: a lone caller never pays for an Event.
        self.event: Optional[threading.Event] = None
        self.response: Optional[Dict[str, Any]] = None
        self.error: Optional[BaseException] = None

    @property
    def answered(self) -> bool:
        # Fields, not the event: the event also signals a reading hand-off.
        return self.response is not None or self.error is not None


class Connection:
    """A Unix stream socket to shieldd, shared by threads.

    Requests are written under a lock. There is no reader thread: one
    waiting caller holds the read lock and reads for everyone, handing each
    answer to the request with the same id, until its own arrives; then it
    wakes a waiter to take over (leader and followers). One thread alone
    pays no thread hand-off, and many threads pipeline on one connection.

    The socket blocks, bounded by the kernel's SO_RCVTIMEO/SO_SNDTIMEO: a
    request is one ``send`` and one ``recv`` that sleeps until the answer
    comes. A Python socket timeout would cost a ``poll`` before each of
    them, and ``poll`` then ``recv`` one more system call than a sleeping
    ``recv`` (measured: 1.5 us of a 16 us bare round trip). The kernel
    timeouts never reach past a request's deadline, and are set again only
    when the time left to it is below them or more than a tenth of the
    timeout above: the calls of one ``Shield`` cost no ``setsockopt``."""

    def __init__(self, path: str, timeout: float) -> None:
        self._gen = _forks[0]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A Python timeout bounds connect only; then the kernel's do.
        sock.settimeout(max(timeout, 0.05))
        try:
            sock.connect(path)
            sock.settimeout(None)
            tv = _timeval(_below(timeout, timeout))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        # The kernel timeouts now set: the receive one changed by the reader
        # (read lock held), the send one by the writer (write lock held).
        self._rcvtimeo = self._sndtimeo = _below(timeout, timeout)
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending: Dict[int, _Slot] = {}
        self._buf = b""
        self._closed = False
        self._why: Optional[BaseException] = None
        self._last_null_error = ""

    @property
    def alive(self) -> bool:
        """False once the connection failed or was closed (or after a fork)."""
        return not self._closed and self._gen == _forks[0]

    def request(self, req_id: int, payload: bytes, timeout: float) -> Dict[str, Any]:
        """Send one request (``payload``: the request object as UTF-8 JSON,
        without its id) and wait for its response. Raises ``OSError``
        (``ConnectionLost``, ``BrokenPipeError``, ...) when the connection
        fails, ``TimeoutError`` when no answer comes in time."""
        deadline = _monotonic() + timeout
        if payload == b"{}":
            data = b'{"id":%d}\n' % req_id
        else:
            data = b'{"id":%d,%s\n' % (req_id, payload[1:])
        slot = _Slot()
        with self._plock:
            if self._closed:
                raise ConnectionLost(str(self._why or "connection closed"))
            self._pending[req_id] = slot
        with self._wlock:
            self._send(data, deadline, timeout)
        while slot.response is None and slot.error is None:
            left = deadline - _monotonic()
            if left <= 0:
                break
            if self._rlock.acquire(blocking=False):
                try:
                    self._read_until(slot, deadline, timeout)
                finally:
                    self._rlock.release()
                    self._promote()
                continue
            # Another thread is reading: it sets our event when our answer
            # comes, or when it stops reading and hands the reading to us.
            # The short wait covers a hand-off to a waiter that timed out.
            if slot.event is None:
                with self._plock:
                    slot.event = threading.Event()
                # Try the read lock again now that a hand-off can reach us.
                continue
            slot.event.wait(min(left, 0.05))
            slot.event.clear()
        if slot.error is not None:
            raise slot.error
        if slot.response is None:
            with self._plock:
                self._pending.pop(req_id, None)
            raise TimeoutError(f"no answer from shieldd within {timeout:g} s")
        return slot.response

    def _send(self, data: bytes, deadline: float, timeout: float) -> None:
        """Write all of ``data`` (write lock held) by ``deadline``. A line
        left half-written would garble the stream: any failure, the
        deadline included, fails the connection."""
        sock = self._sock
        sent = 0
        while True:
            left = deadline - _monotonic()
            if left <= 0:
                err = TimeoutError(f"shieldd did not take the request within {timeout:g} s")
                self._fail(ConnectionLost(str(err)))
                raise err
            try:
                if not self._sndtimeo <= left <= self._sndtimeo + timeout / 10:
                    self._sndtimeo = _below(left, timeout)
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self._sndtimeo)
                    )
                # Partial only when the server stopped reading (a line
                # bigger than the socket buffer, or a busy server).
                sent += sock.send(memoryview(data)[sent:] if sent else data)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                self._fail(e)
                raise
            if sent >= len(data):
                return

    def _promote(self) -> None:
        """Wake one waiting request so that it takes over the reading."""
        # Unlocked test: a request that registers after it tries the read
        # lock itself before it waits. A lone caller skips the lock here.
        if not self._pending:
            return
        with self._plock:
            for waiting in self._pending.values():
                if not waiting.answered and waiting.event is not None:
                    waiting.event.set()
                    return

    def _read_until(self, slot: _Slot, deadline: float, timeout: float) -> None:
        """Read and dispatch (read lock held) until ``slot`` is answered,
        the connection fails, or the deadline passes."""
        sock = self._sock
        while slot.response is None and slot.error is None:
            if self._closed:
                return
            left = deadline - _monotonic()
            if left <= 0:
                return
            try:
                if not self._rcvtimeo <= left <= self._rcvtimeo + timeout / 10:
                    self._rcvtimeo = _below(left, timeout)
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self._rcvtimeo)
                    )
                # Sleeps until the answer comes. Not a non-blocking attempt
                # first: the answer is almost never there yet when the
                # request has just gone out (measured: under 1 % of scans).
                chunk = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                continue  # the kernel timeout: look at the deadline again
            except OSError as e:
                self._fail(ConnectionLost(str(e)))
                return
            if not chunk:
                self._fail(ConnectionLost(self._last_null_error or "shieldd closed the connection"))
                return
            buf = self._buf + chunk if self._buf else chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                self._dispatch(buf[start:nl])
                start = nl + 1
            self._buf = buf[start:] if start < len(buf) else b""

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
        if self._gen == _forks[0]:
            try:
                # Not in a forked child: the socket is shared with the parent.
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        for slot in pending.values():
            slot.error = ConnectionLost(str(why))
            if slot.event is not None:
                slot.event.set()

    def _dispatch(self, line: bytes) -> None:
        try:
            text = line.decode("utf-8")
            resp, end = _raw_decode(text)
        except ValueError:
            # Not UTF-8, not JSON, or JSON after leading whitespace (which
            # shieldd does not send, but JSON allows).
            try:
                resp = json.loads(line)
            except ValueError:
                return
        else:
            if end != len(text) and not text[end:].isspace():
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
            # The field first: a waiter that makes its event after this
            # reads it before waiting.
            slot.response = resp
            if slot.event is not None:
                slot.event.set()
