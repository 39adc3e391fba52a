"""Request encoding: the generic path, and the scan request's fast one."""

from __future__ import annotations

import json
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Dict

# Made once: `json.dumps` with any non-default option builds a new encoder
# on every call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# The bytes a JSON string may not hold raw: control characters, quote and
# backslash. Bytes of multi-byte UTF-8 sequences are all >= 0x80, so a
# search of the encoded text finds exactly the characters to escape.
_MUST_ESCAPE = bytes(range(0x20)) + b'"\\'

_SCAN_HEAD = {
    "inbound": b'{"op":"scan","direction":"inbound","text":',
    "outbound": b'{"op":"scan","direction":"outbound","text":',
}


def encode(body: Dict[str, Any]) -> bytes:
    """One request object as compact UTF-8 JSON (non-ASCII kept as is)."""
    return _encode(body).encode("utf-8")


def json_string(text: str) -> bytes:
    """``text`` as a UTF-8 JSON string literal, quotes included; the same
    JSON as ``encode(text)``, faster for the text most scans carry. Raises
    ``UnicodeEncodeError`` for a lone surrogate, as ``encode`` does."""
    raw = text.encode("utf-8")
    # Deleting the bytes that need escaping is one C pass; when none go,
    # the text is its own literal and no escaping pass runs at all.
    if len(raw.translate(None, _MUST_ESCAPE)) == len(raw):
        return b'"' + raw + b'"'
    if text.isascii():
        # The ASCII escaper is about twice as fast, and on ASCII text its
        # output is the same JSON.
        return encode_basestring_ascii(text).encode("ascii")
    return encode_basestring(text).encode("utf-8")


def scan_payload(text: str, direction: str) -> bytes:
    """The ``scan`` request object (without id) for ``text`` flowing
    ``direction`` (``inbound`` or ``outbound``)."""
    return b"".join((_SCAN_HEAD[direction], json_string(text), b"}"))
