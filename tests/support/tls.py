"""Certificates made at test time (trustme, built on cryptography's x509 builder) and an HTTPS server
context, for TLS probes against a real local server."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class ServerCert:
    ca_file: str
    """The issuing CA's certificate, for a probe's `tls.ca_file`."""
    cert_file: str
    key_file: str
    not_after: float
    """Unix time the leaf certificate expires: what probe_ssl_earliest_cert_expiry must report."""

    def server_context(self, *, client_ca: str | None = None) -> ssl.SSLContext:
        """A server-side context; with `client_ca`, clients must present a certificate it issued."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def issue(directory: Path, *names: str, ca: trustme.CA | None = None, valid_days: float = 365,
          prefix: str = "server") -> ServerCert:
    """A leaf certificate for `names` (default localhost and 127.0.0.1) that expires in `valid_days`."""
    ca = ca or trustme.CA()
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(*(names or ("localhost", "127.0.0.1")), not_before=now - dt.timedelta(hours=1),
                         not_after=now + dt.timedelta(days=valid_days))
    ca_file = directory / f"{prefix}-ca.pem"
    cert_file = directory / f"{prefix}-cert.pem"
    key_file = directory / f"{prefix}-key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    expiry = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc.timestamp()
    return ServerCert(str(ca_file), str(cert_file), str(key_file), expiry)


def der_expiring_in(days: float) -> bytes:
    """A DER leaf certificate expiring in `days`, as `getpeercert(binary_form=True)` returns one."""
    now = dt.datetime.now(dt.UTC)
    leaf = trustme.CA().issue_cert("localhost", not_before=now - dt.timedelta(hours=1),
                                   not_after=now + dt.timedelta(days=days))
    pem = leaf.cert_chain_pems[0].bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
