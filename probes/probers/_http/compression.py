"""`compression:` as blackbox_exporter applies it: the body is decoded with the configured algorithm whatever
the response says, and a body that is not encoded that way fails the probe. Without `compression:` the
body is taken as it comes (nothing is asked for and nothing decoded, like blackbox_exporter)."""

from __future__ import annotations

import zlib

import brotli

from probes.errors import ProbeFailed


def decode(body: bytes, algorithm: str | None, limit: int) -> bytes:
    """The decoded body, at most `limit` bytes (blackbox applies its size limit after decoding)."""
    if algorithm is None or algorithm == "identity":
        return body
    try:
        if algorithm == "br":
            out: bytes = brotli.decompress(body)
        else:
            # gzip: Go's gzip reader; deflate: Go's compress/flate, raw DEFLATE without a zlib header.
            wbits = 16 + zlib.MAX_WBITS if algorithm == "gzip" else -zlib.MAX_WBITS
            decoder = zlib.decompressobj(wbits)
            out = decoder.decompress(body, limit + 1)
            if len(out) <= limit and not decoder.eof:
                raise zlib.error("truncated stream")
    except (zlib.error, brotli.error) as exc:
        raise ProbeFailed("protocol", f"body is not {algorithm}-encoded: {exc}") from None
    if len(out) > limit:
        raise ProbeFailed("body_too_large", f"decoded body exceeds max_body_bytes ({limit})")
    return out
