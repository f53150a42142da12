"""`--web.config.file`: exporter-toolkit's web configuration (the file every Prometheus exporter reads), so
the same file and the same Prometheus scrape config work for the agent, the proxy's control port and the
demo target:

    tls_server_config:
      cert_file: /etc/probe-agent/tls.crt
      key_file: /etc/probe-agent/tls.key
      client_ca_file: /etc/probe-agent/ca.crt      # optional: ask clients for certificates
      client_auth_type: RequireAndVerifyClientCert # or VerifyClientCertIfGiven, NoClientCert
    basic_auth_users:
      prometheus: $2y$10$...                       # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Relative paths are relative to the file itself. Errors are `FILE:LINE: field.path: message`, exit 2.
"""

from __future__ import annotations

import os
import ssl
from typing import Literal

from pydantic import Field, field_validator

from probes.asgi_server import WebSecurity
from probes.config import yamlfile
from probes.config.models import Strict
from probes.errors import ConfigError

ClientAuth = Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
                     "RequireAndVerifyClientCert"]


class TlsServerConfig(Strict):
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: ClientAuth = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] | None = None
    """Accepted for compatibility; Python's default (TLS 1.2 and up) is what is served."""


class WebConfig(Strict):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)
    http_server_config: dict[str, object] | None = None
    """Accepted for compatibility with exporter files (HTTP/2, extra headers); not used."""

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
                raise ValueError(f"user {user!r}: not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n' "
                                 "makes one)")
        return users


def load_web_config(path: str) -> WebSecurity:
    doc = yamlfile.read(path)
    config = yamlfile.validate(doc, WebConfig)
    base = os.path.dirname(os.path.abspath(path))
    users = {user: hashed.encode() for user, hashed in config.basic_auth_users.items()}
    tls = config.tls_server_config
    if tls is None:
        return WebSecurity(users=users)

    def resolve(name: str | None) -> str | None:
        return None if name is None else name if os.path.isabs(name) else os.path.join(base, name)

    cert, key, ca = resolve(tls.cert_file), resolve(tls.key_file), resolve(tls.client_ca_file)
    assert cert is not None and key is not None
    # Load once now: a wrong path or a key that does not match is a config error, not a server that fails
    # on its first connection.
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([doc.error(("tls_server_config", "cert_file"),
                                     f"cannot load certificate {cert} with key {key}: {exc}")]) from None
    needs_ca = tls.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
                                        "RequireAnyClientCert")
    if needs_ca and ca is None:
        raise ConfigError([doc.error(("tls_server_config", "client_auth_type"),
                                     f"{tls.client_auth_type} needs client_ca_file")])
    if ca is not None:
        try:
            context.load_verify_locations(ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError([doc.error(("tls_server_config", "client_ca_file"),
                                         f"cannot load {ca}: {exc}")]) from None
    # Python verifies every certificate it asks for; without verification, asking is pointless.
    return WebSecurity(cert_file=cert, key_file=key, client_ca_file=ca if needs_ca else None,
                       require_client_cert=tls.client_auth_type in ("RequireAndVerifyClientCert",
                                                                    "RequireAnyClientCert"),
                       users=users)



def web_security(args: object) -> WebSecurity | None:
    path = getattr(args, "web_config_file", None)
    return None if path is None else load_web_config(path)
