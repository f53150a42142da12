"""blackbox_exporter's http facts as Samples: redirects, TLS, lengths, version, Last-Modified, address family.
The names and labels are blackbox's, so its dashboards and the drop-in /probe endpoint keep working."""

from __future__ import annotations

import ipaddress
from email.utils import parsedate_to_datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from probes.probers._http.certs import not_after
from probes.probers._http.client import HttpResponse
from probes.result import Sample

HELP = {
    "probe_http_redirects": "The number of redirects",
    "probe_http_ssl": "Indicates if SSL was used for the final redirect",
    "probe_http_content_length": "Length of http content response",
    "probe_http_uncompressed_body_length": "Length of uncompressed response body",
    "probe_http_version": "Returns the version of HTTP of the probe response",
    "probe_failed_due_to_regex": "Indicates if probe failed due to regex",
    "probe_http_last_modified_timestamp_seconds": "Returns the Last-Modified HTTP response header in unixtime",
    "probe_tls_version_info": "Returns the TLS version used or NaN when unknown",
    "probe_ssl_last_chain_expiry_timestamp_seconds": "Returns last SSL chain expiry in timestamp",
    "probe_ssl_last_chain_info": "Contains SSL leaf certificate information",
    "probe_ip_protocol": "Specifies whether probe ip protocol is IP4 or IP6",
    "probe_ip_addr_hash": "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
    "probe_dns_lookup_time_seconds": "Returns the time taken for probe dns lookup in seconds",
}


def _sample(name: str, value: float, labels: tuple[tuple[str, str], ...] = ()) -> Sample:
    return Sample(name, float(value), labels, HELP[name])


def response_samples(resp: HttpResponse, *, regex_failed: bool) -> list[Sample]:
    version = resp.http_version.removeprefix("HTTP/")
    samples = [
        _sample("probe_http_redirects", resp.redirects),
        _sample("probe_http_ssl", 1 if resp.tls_version is not None else 0),
        _sample("probe_http_content_length", resp.content_length),
        _sample("probe_http_uncompressed_body_length", len(resp.body)),
        _sample("probe_http_version", float(version) if version.replace(".", "", 1).isdigit() else 0.0),
        _sample("probe_failed_due_to_regex", 1 if regex_failed else 0),
    ]
    modified = last_modified(resp.headers.get("Last-Modified"))
    if modified is not None:
        samples.append(_sample("probe_http_last_modified_timestamp_seconds", modified))
    if resp.tls_version is not None and resp.cert_der is not None:
        samples.append(_sample("probe_tls_version_info", 1, (("version", resp.tls_version),)))
        # Python 3.11 cannot show the verified chain: the leaf's expiry stands for the chain's.
        samples.append(_sample("probe_ssl_last_chain_expiry_timestamp_seconds", not_after(resp.cert_der)))
        samples.append(_sample("probe_ssl_last_chain_info", 1, chain_info(resp.cert_der)))
    samples.extend(address_samples(resp.peer, resp.dns_seconds))
    return samples


def address_samples(peer: str | None, dns_seconds: float) -> list[Sample]:
    if peer is None:
        return []
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return []
    return [
        _sample("probe_ip_protocol", address.version),
        _sample("probe_ip_addr_hash", _fnv32a(address.packed)),
        _sample("probe_dns_lookup_time_seconds", dns_seconds),
    ]


def last_modified(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


@lru_cache(maxsize=256)
def chain_info(der: bytes) -> tuple[tuple[str, str], ...]:
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = ",".join(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ""
    return (("fingerprint_sha256", cert.fingerprint(hashes.SHA256()).hex()),
            ("subject", cert.subject.rfc4514_string()),
            ("issuer", cert.issuer.rfc4514_string()),
            ("subjectalternative", dns_names))


def _fnv32a(data: bytes) -> int:
    # blackbox's ipHash: FNV-1a, 32 bits, over the 4 or 16 address bytes.
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h

