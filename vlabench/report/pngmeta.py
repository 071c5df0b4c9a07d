"""Read a PNG's text chunks (tEXt, zTXt, iTXt) and pixel size, without an imaging library.

The report's figures carry their title and caption as PNG text (figstyle.save); the HTML page
reads them back here.
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes):
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    i = len(SIGNATURE)
    while i + 8 <= len(data):
        (length,), kind = struct.unpack(">I", data[i:i + 4]), data[i + 4:i + 8]
        yield kind, data[i + 8:i + 8 + length]
        if kind == b"IEND":
            return
        i += 12 + length


def size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels."""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            return struct.unpack(">II", body[:8])
    raise ValueError("PNG without IHDR")


def text(data: bytes) -> dict[str, str]:
    """Keyword -> text of every text chunk."""
    out: dict[str, str] = {}
    for kind, body in _chunks(data):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        key, _, rest = body.partition(b"\0")
        if kind == b"tEXt":
            value = rest.decode("latin-1")
        elif kind == b"zTXt":
            value = zlib.decompress(rest[1:]).decode("latin-1")
        else:
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, raw = rest.partition(b"\0")
            value = (zlib.decompress(raw) if compressed else raw).decode("utf-8")
        out[key.decode("latin-1")] = value
    return out
