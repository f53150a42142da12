"""Where secrets come from in agent.yaml: `${VAR}`, `${file:/path}` (read at load, so again on reload),
credential headers and `secret_headers`, Elasticsearch credentials; each is registered for redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.agent.config_file import load_config
from probes.errors import ConfigError
from probes.redaction import REDACTED, redact_text

CONFIG = """
agent: {region: "${REGION}"}
probes:
  - name: api
    type: http
    url: http://127.0.0.1:8000/health
    headers: {Authorization: "Bearer ${file:token.txt}", X-My-Token: literal-header-secret, X-Tenant: acme-tenant}
    secret_headers: [x-my-token]
"""


def test_file_secrets_are_read_at_load_and_again_on_every_load(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("from-the-file-1\n")
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG)
    config = load_config(str(path), env={"REGION": "region-zz-9"})
    assert config.probes[0].requests()[0].headers["Authorization"] == "Bearer from-the-file-1"
    (tmp_path / "token.txt").write_text("from-the-file-2")  # a rotated Kubernetes secret
    config = load_config(str(path), env={"REGION": "region-zz-9"})
    assert config.probes[0].requests()[0].headers["Authorization"] == "Bearer from-the-file-2"
    assert redact_text("sent from-the-file-1 then from-the-file-2") == f"sent {REDACTED} then {REDACTED}"
    assert redact_text("literal-header-secret") == REDACTED
    # Neither an ordinary header nor the agent's identity (a label everywhere) is a secret.
    assert redact_text("acme-tenant in region-zz-9") == "acme-tenant in region-zz-9"


def test_a_missing_secret_file_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={"REGION": "x"})
    [message] = caught.value.messages
    assert message.startswith(f"{path}:7: probes[0].headers.Authorization: cannot read secret file ")
    assert "token.txt: No such file or directory" in message


def test_elasticsearch_credentials_are_secrets(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("""
probes:
  - {name: es, type: elasticsearch, hosts: ["http://elastic:in-the-url-pw@127.0.0.1:9200"]}
sinks:
  elasticsearch: {hosts: ["http://127.0.0.1:9200"], api_key: sink-api-key-value}
""")
    load_config(str(path))
    assert redact_text("in-the-url-pw sink-api-key-value") == f"{REDACTED} {REDACTED}"


def test_a_config_error_quoting_a_url_does_not_show_its_password(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from probes.cli import main

    path = tmp_path / "agent.yaml"
    path.write_text("probes:\n  - {name: a, type: http, url: 'ftp://user:rejected-pw-991@host/x'}\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "rejected-pw-991" not in err
    assert f"{path}:2: probes[0].url: 'ftp://<redacted>@host/x' is not an http:// or https:// URL" in err
