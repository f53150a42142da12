"""Certificate facts for probe_ssl_earliest_cert_expiry and `expect.cert_expires_after`."""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509


@lru_cache(maxsize=256)
def not_after(der: bytes) -> float:
    """Unix time at which the certificate expires (cached: a server presents the same one each run)."""
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
