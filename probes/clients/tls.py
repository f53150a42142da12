"""`tls:` settings as an SSL context: one place for every client (HTTP probes, Elasticsearch)."""

from __future__ import annotations

import ssl

from probes.config.models import TlsConfig

_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
             "TLS13": ssl.TLSVersion.TLSv1_3}


def build_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """Raises OSError / ssl.SSLError for unusable files: callers report them, never crash."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.min_version is not None:
        context.minimum_version = _VERSIONS[tls.min_version]
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
